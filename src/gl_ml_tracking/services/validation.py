"""MLflow's validation rules and limits (mlflow/utils/validation.py), as
errors our API maps to INVALID_PARAMETER_VALUE."""
from __future__ import annotations

import posixpath
import re
from typing import Any

from ..errors import InvalidParameter

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20_000
MAX_REGISTRY_TAG_VAL_LENGTH = 100_000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_LOG_REQUEST_SIZE = 1_000_000
MAX_MODEL_NAME_LENGTH = 256

# Letters, digits, underscores, dashes, periods, spaces, slashes and colons, as MLflow allows.
_VALID_KEY = re.compile(r"^[/\w.\- :]*\Z")



def validate_key(kind: str, key: Any) -> str:
    if key is None or key == "":
        raise InvalidParameter(f"Missing value for required parameter 'key' of {kind}.")
    if not isinstance(key, str):
        raise InvalidParameter(f"{kind} key must be a string, got {type(key).__name__}.")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        # MLflow names the field: 'key' for tags, 'Param key', 'Metric name'.
        field = {"Param": "Param key", "Metric": "Metric name"}.get(kind, "key")
        raise InvalidParameter(exceeds_maximum_length(field, MAX_ENTITY_KEY_LENGTH))
    if not _VALID_KEY.match(key):
        raise InvalidParameter(
            f"Invalid {kind.lower()} name: '{key}'. Names may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)."
        )
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise InvalidParameter(
            f"Invalid {kind.lower()} name: '{key}'. Names may be treated as files in certain cases, and must "
            f"not resolve to other names when treated as such. This name would resolve to '{norm}'"
        )
    return key


def exceeds_maximum_length(field: str, limit: int) -> str:
    return f"'{field}' exceeds the maximum length of {limit} characters"


def validate_value(kind: str, value: Any, limit: int, required: bool = True, truncate: bool = False) -> str | None:
    """A tag, param or description value. Past ``limit`` characters it is cut to the limit
    when ``truncate`` (MLflow does so for run tags and params) and refused otherwise."""
    if value is None:
        if required:
            raise InvalidParameter(f"Missing value for required parameter 'value' of {kind}.")
        return None
    if not isinstance(value, str):
        # The client sends strings; other JSON scalars are accepted as their text.
        if isinstance(value, (int, float, bool)):
            value = str(value)
        else:
            raise InvalidParameter(f"{kind} value must be a string.")
    if len(value) > limit:
        if not truncate:
            raise InvalidParameter(exceeds_maximum_length("value" if kind == "Tag" else f"{kind} value", limit))
        value = value[:limit]
    if "\x00" in value:
        raise InvalidParameter(f"{kind} value must not contain NUL characters.")
    return value


def parse_int(value: Any, name: str, default: int | None = None, required: bool = False) -> int | None:
    if value is None or value == "":
        if required:
            raise InvalidParameter(f"Missing value for required parameter '{name}'.")
        return default
    if isinstance(value, bool):
        raise InvalidParameter(f"Invalid value for '{name}': expected an integer.")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value.strip()):
        result = int(value)
    else:
        raise InvalidParameter(f"Invalid value '{value}' for parameter '{name}': expected an integer.")
    if not -(2**63) <= result < 2**63:
        raise InvalidParameter(f"Invalid value for '{name}': out of the 64-bit range.")
    return result


def require_str(value: Any, name: str, max_length: int | None = None) -> str:
    if value is None or value == "":
        raise InvalidParameter(f"Missing value for required parameter '{name}'.")
    if not isinstance(value, str):
        raise InvalidParameter(f"Invalid value for parameter '{name}': expected a string.")
    if max_length and len(value) > max_length:
        raise InvalidParameter(f"'{name}' exceeds the maximum length of {max_length} characters.")
    if "\x00" in value:
        raise InvalidParameter(f"'{name}' must not contain NUL characters.")
    return value


def validate_experiment_name(name: Any) -> str:
    if name is None or name == "":
        raise InvalidParameter("Invalid experiment name: ''")
    if not isinstance(name, str):
        raise InvalidParameter(f"Invalid experiment name: {name!r}. Expects a string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameter(f"'name' exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters")
    if "\x00" in name:
        raise InvalidParameter("Experiment names must not contain NUL characters.")
    return name


def validate_batch_limits(n_metrics: int, n_params: int, n_tags: int) -> None:
    for what, count, limit in (
        ("metrics", n_metrics, MAX_METRICS_PER_BATCH),
        ("params", n_params, MAX_PARAMS_TAGS_PER_BATCH),
        ("tags", n_tags, MAX_PARAMS_TAGS_PER_BATCH),
        ("metrics, params, and tags", n_metrics + n_params + n_tags, MAX_ENTITIES_PER_BATCH),
    ):
        if count > limit:
            raise InvalidParameter(
                f"A batch logging request can contain at most {limit} {what}. Got {count} {what}. "
                "Please split up the batch into smaller batches."
            )
