"""Request arguments loaded through the request schemas.

One declaration, two uses: the marshmallow schemas each route declares
(``schemas.tracking``, ``schemas.registry``, ...) document the API (the OpenAPI document is built from them) and, through
``loader_for``, validate and convert what a request sends. Marshmallow's own
``Schema.load`` would do the same job about ten times slower (a 1,000-metric
``log_batch`` would pay for it on every call), so each schema is compiled
once into plain closures that walk its fields: the rules are still only the
schema's (field types, ``required``, ``OneOf`` choices); nothing is written
twice.

What a field accepts follows protobuf's JSON mapping as the MLflow client and
MLflow's own server use it:

* ``Integer``: a number without a fraction or a decimal string, within int64;
* ``Float``: a number, a decimal string, or ``NaN``/``Infinity``/``-Infinity``;
* ``Boolean``: true/false, or ``"true"``/``"false"`` (query strings);
* ``String``: a string. A field marked ``numbers_as_text`` (tag and param
  values, experiment ids, version numbers: see ``common.text``) also takes a
  number as its text: clients that send ``"value": 1`` for a tag, or an
  experiment id as a number, worked before and keep working;
* an enum (``String`` with ``OneOf``): a string or an integer. Its name is not
  checked here: protobuf's JSON also takes the enum's number, and the services'
  parsers (run status, view type, logged model status) have always taken those
  and other spellings (``"finished"``, ``"READY"``) with their own messages, for
  the UI as for the API;
* ``List``: a list, or a single value (a query string with one ``?x=``);
* ``Nested``: an object, loaded by its own schema.

An empty string for a number or boolean (``?max_results=``) counts as absent,
as it did before the schemas validated.
Arguments no field declares are kept as they are (MLflow ignores them too).
The arguments' dict (the request's own, freshly parsed) is converted in place.
Errors are ``InvalidParameter`` (MLflow's INVALID_PARAMETER_VALUE, 400) with
MLflow's wording.
"""
from __future__ import annotations

import math
import json
import re
from typing import Any, Callable, Optional

from marshmallow import Schema, fields
from marshmallow.validate import OneOf

from ..errors import InvalidParameter

Loader = Callable[[Any, str], Any]  # (value, parameter path) -> converted value

_DECIMAL = re.compile(r"-?\d{1,20}")
_FLOAT_WORDS = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf, "-inf": -math.inf}
_INT64 = (-(2**63), 2**63)
_BOOLEAN_WORDS = {"true": True, "false": False}
_HINT = "See the API docs for more information about request parameters."


def missing(path: str) -> InvalidParameter:
    return InvalidParameter(f"Missing value for required parameter '{path}'. {_HINT}")


def invalid(value: Any, path: str) -> InvalidParameter:
    """MLflow's wording (``invalid_value`` of mlflow/utils/validation.py): the value as
    compact JSON, cut past 1000 characters so a huge value is not echoed back whole."""
    try:
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        shown = repr(value)
    if len(shown) > 1000:
        shown = shown[:997] + "..."
    return InvalidParameter(
        f"Invalid value {shown} for parameter '{path}' supplied:  "
        f"Hint: Value was of type '{type(value).__name__}'. {_HINT}"
    )


# --------------------------------------------------------------------------- scalars
def load_integer(value: Any, path: str) -> int:
    if isinstance(value, bool):
        raise invalid(value, path)
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        result = int(value)
    else:
        raise invalid(value, path)
    if not _INT64[0] <= result < _INT64[1]:
        raise invalid(value, path)
    return result


def load_float(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise invalid(value, path)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        word = _FLOAT_WORDS.get(value.strip().lower())
        if word is not None:
            return word
        try:
            return float(value)
        except ValueError:
            pass
    raise invalid(value, path)


def load_boolean(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS:
        return _BOOLEAN_WORDS[value.strip().lower()]
    raise invalid(value, path)


def load_string(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    raise invalid(value, path)


def load_text(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise invalid(value, path)


def load_enum(value: Any, path: str) -> Any:
    # Names and numbers pass; which ones are valid is the service's call (see above).
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise invalid(value, path)


def load_any(value: Any, _path: str) -> Any:
    return value


# --------------------------------------------------------------------------- compiling
def _list_of(load_item: Loader) -> Loader:
    def load_list(value: Any, path: str) -> list:
        if not isinstance(value, list):
            value = [value]
        return [load_item(item, path) for item in value]

    return load_list


def _list_of_objects(load_object: Loader) -> Loader:
    # Objects are converted in place: no new list (a batch has up to 1,000 of them).
    def load_list(value: Any, path: str) -> list:
        if type(value) is not list:
            value = [value]
        for item in value:
            load_object(item, path)
        return value

    return load_list


# Values of these exact types need no conversion: the loop skips the call (a
# 1,000-metric batch has 4,000 such values).
_ALREADY = {load_integer: (int,), load_float: (float,), load_string: (str,), load_text: (str,),
           load_boolean: (bool,), load_enum: (str,)}
# Loaders for which "" means absent.
_BLANK_IS_ABSENT = (load_integer, load_float, load_boolean)


def _field_loader(field: fields.Field) -> tuple[Loader, tuple]:
    """The field's loader and the exact types it passes through unchanged."""
    if isinstance(field, fields.Nested):
        nested = field.nested
        load = _object_loader(nested() if isinstance(nested, type) else nested)
    elif isinstance(field, fields.List):
        inner = _field_loader(field.inner)[0]
        load = _list_of_objects(inner) if isinstance(field.inner, fields.Nested) else _list_of(inner)
    elif isinstance(field, fields.Boolean):
        load = load_boolean
    elif isinstance(field, fields.Integer):
        load = load_integer
    elif isinstance(field, fields.Float):
        load = load_float
    elif isinstance(field, fields.String):
        load = load_text if field.metadata.get("numbers_as_text") else load_string
    else:
        load = load_any
    if load is load_string and any(isinstance(v, OneOf) for v in field.validators):
        load = load_enum
    return load, _ALREADY.get(load, ())


def _object_loader(schema: Schema) -> Loader:
    """A function made for this schema: one ``if`` per field, no loop. Generated
    source (from the schema's own fields, names passed as constants) runs about
    twice as fast as a loop over the fields, and a batch runs it per item."""
    plan = [(field.data_key or name, field.required, *_field_loader(field)) for name, field in schema.fields.items()]
    names: dict[str, Any] = {"invalid": invalid, "missing": missing}
    lines = ["def load_object(value, path):",
             "    if type(value) is not dict:",
             "        raise invalid(value, path)",
             "    prefix = path + '.' if path else ''"]
    for index, (key, required, load, unchanged) in enumerate(plan):
        names[f"key{index}"], names[f"load{index}"] = key, load
        names[f"types{index}"], names[f"type{index}"] = unchanged, (unchanged or (None,))[0]
        absent = f"raise missing(prefix + key{index})" if required else "pass"
        lines += [f"    item = value.get(key{index})",
                  "    if item is None:",
                  f"        {absent}",
                  # "is not" for a single type: about a third faster than "not in" a tuple
                  f"    elif type(item) is not type{index}:" if len(unchanged) == 1 else
                  f"    elif type(item) not in types{index}:"]
        if load in _BLANK_IS_ABSENT:  # checked only off the fast path: numbers are not ""
            lines += ["        if item == '':",
                      f"            del value[key{index}]",
                      f"            {absent}",
                      "        else:",
                      f"            value[key{index}] = load{index}(item, prefix + key{index})"]
        else:
            lines.append(f"        value[key{index}] = load{index}(item, prefix + key{index})")
        if load is load_integer:  # an int skips the call above: its range is checked here
            lines += ["    elif not -9223372036854775808 <= item < 9223372036854775808:",
                      f"        raise invalid(item, prefix + key{index})"]
    lines.append("    return value")
    exec("\n".join(lines), names)  # noqa: S102 - source built above from field names passed as values
    return names["load_object"]


_LOADERS: dict[type, Callable[[dict], dict]] = {}


def loader_for(schema_class: Optional[type[Schema]]) -> Callable[[dict], dict]:
    """The compiled loader of ``schema_class`` (built once per class): it takes
    a request's arguments and returns them validated and converted."""
    if schema_class is None:
        return dict
    loader = _LOADERS.get(schema_class)
    if loader is None:
        load_object = _object_loader(schema_class())

        def loader(args: dict) -> dict:
            return load_object(args, "")

        _LOADERS[schema_class] = loader
    return loader
