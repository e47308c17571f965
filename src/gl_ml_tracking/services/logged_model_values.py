"""What a logged model's fields may hold: its status, name, params and tags, and the
optional strings of its requests; shared by the model's use cases and its search."""
from __future__ import annotations

from typing import Any, Optional

from ..errors import InvalidParameter
from . import validation as v

__all__ = [
    "STATUSES",
    "STATUS_PREFIX",
    "status_name",
    "parse_status",
    "validate_name",
    "validated_params",
    "validated_tags",
    "optional_str",
]

# Stored without the proto prefix; the API speaks ``LOGGED_MODEL_<status>``.
STATUSES = ("PENDING", "READY", "UPLOAD_FAILED")
STATUS_PREFIX = "LOGGED_MODEL_"
_STATUS_NUMBERS = {1: "PENDING", 2: "READY", 3: "UPLOAD_FAILED"}
_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")


def status_name(status: str) -> str:
    return STATUS_PREFIX + status


def parse_status(value: Any) -> str:
    """``LOGGED_MODEL_READY``, ``READY`` or the proto number 2 -> ``READY``."""
    if isinstance(value, int) and not isinstance(value, bool) and value in _STATUS_NUMBERS:
        return _STATUS_NUMBERS[value]
    if isinstance(value, str):
        text = value.strip().upper()
        if text.isdecimal() and int(text) in _STATUS_NUMBERS:  # not isdigit: int("²") fails
            return _STATUS_NUMBERS[int(text)]
        if text.startswith(STATUS_PREFIX):
            text = text[len(STATUS_PREFIX):]
        if text in STATUSES:
            return text
    raise InvalidParameter(
        f"Invalid logged model status {value!r}: expected one of "
        + ", ".join(status_name(s) for s in STATUSES)
    )


def validate_name(name: Any) -> Optional[str]:
    """A logged model's name (None when not given: the caller picks one)."""
    if name is None or name == "":
        return None
    if not isinstance(name, str) or any(c in name for c in _BAD_NAME_CHARS) or "\x00" in name:
        raise InvalidParameter(
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string "
            f"and cannot contain the following characters: {_BAD_NAME_CHARS}"
        )
    if len(name) > 500:
        raise InvalidParameter("Logged model name exceeds the maximum length of 500 characters.")
    return name


def _pairs(raw: Any, what: str) -> list[tuple[Any, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise InvalidParameter(f"'{what}' must be a list of {{key, value}} objects.")
    return [(item.get("key"), item.get("value")) for item in raw]


def validated_params(raw: Any) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in _pairs(raw, "params"):
        key = v.validate_key("Param", key)
        value = v.validate_value("Param", value, v.MAX_PARAM_VAL_LENGTH)
        if key in params and params[key] != value:
            raise InvalidParameter(f"Duplicate parameter keys have been submitted: '{key}' with different values.")
        params[key] = value
    return params


def validated_tags(raw: Any) -> dict[str, Optional[str]]:
    return {
        v.validate_key("Tag", key): v.validate_value("Tag", value, v.MAX_TAG_VAL_LENGTH, required=False)
        for key, value in _pairs(raw, "tags")
    }


def optional_str(value: Any, name: str, max_length: int) -> Optional[str]:
    """A string argument that may be absent (None or empty -> None)."""
    if value is None or value == "":
        return None
    return v.require_str(value, name, max_length=max_length)
