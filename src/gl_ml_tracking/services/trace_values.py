"""Values of MLflow 3 traces as the client sends and reads them: the tag and
metadata keys, the trace states, protobuf's JSON timestamps and durations,
previews. A leaf of the trace services."""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Optional

from ..errors import InvalidParameter
from ..models.traces import SOURCE_RUN_KEY

TRACE_NAME_TAG = "mlflow.traceName"
LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"  # JSON list of {"name", "version"}
SPANS_LOCATION_TAG = "mlflow.trace.spansLocation"
ARTIFACT_LOCATION_TAG = "mlflow.artifactLocation"
TRACKING_STORE = "TRACKING_STORE"
SOURCE_RUN_METADATA = SOURCE_RUN_KEY  # indexed on PostgreSQL (models.traces)
TOKEN_USAGE_METADATA = "mlflow.trace.tokenUsage"
INPUTS_METADATA = "mlflow.traceInputs"
OUTPUTS_METADATA = "mlflow.traceOutputs"
REQUEST_ID_ATTRIBUTE = "mlflow.traceRequestId"
SPAN_TYPE_ATTRIBUTE = "mlflow.spanType"
SPAN_INPUTS_ATTRIBUTE = "mlflow.spanInputs"
SPAN_OUTPUTS_ATTRIBUTE = "mlflow.spanOutputs"

STATES = ("STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS")
# The v2 API's statuses, as its TraceInfo names them.
V2_STATUS_TO_STATE = {"TRACE_STATUS_UNSPECIFIED": "STATE_UNSPECIFIED", "OK": "OK", "ERROR": "ERROR",
                      "IN_PROGRESS": "IN_PROGRESS"}
STATE_NUMBERS = dict(enumerate(STATES))
PREVIEW_CHARS = 1000
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 8000

_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
_DURATION = re.compile(r"(-?\d{1,12})(\.\d{1,9})?s")


def trace_id_from_otel(trace_id: bytes) -> str:
    """MLflow's id of an OTel trace: ``tr-`` and the 32 hex digits."""
    return "tr-" + trace_id.hex()


def validate_trace_id(trace_id: Any) -> str:
    if not isinstance(trace_id, str) or not trace_id or len(trace_id) > 64:
        raise InvalidParameter(f"Invalid trace ID {trace_id!r}.")
    return trace_id


def parse_state(value: Any) -> str:
    if value is None or value == "":
        return "STATE_UNSPECIFIED"
    if isinstance(value, int) and not isinstance(value, bool) and value in STATE_NUMBERS:
        return STATE_NUMBERS[value]
    if isinstance(value, str):
        upper = value.upper()
        if upper in STATES:
            return upper
        if upper in V2_STATUS_TO_STATE:
            return V2_STATUS_TO_STATE[upper]
    raise InvalidParameter(f"Invalid trace state {value!r}: expected one of {', '.join(STATES)}.")


def timestamp_to_ms(value: Any, name: str) -> Optional[int]:
    """Protobuf's JSON Timestamp (``2026-12-03T03:00:00.123Z``) or epoch milliseconds, as ms."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        m = _TIMESTAMP.fullmatch(value.strip())
        if m:
            base = dt.datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
            frac = m.group(2) or ".0"
            return int(base.timestamp()) * 1000 + int((frac[1:] + "000")[:3])
    raise InvalidParameter(f"Invalid value {value!r} for '{name}': expected an RFC 3339 timestamp.")


def duration_to_ms(value: Any, name: str) -> Optional[int]:
    """Protobuf's JSON Duration (``1.250s``) or milliseconds, as ms."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        m = _DURATION.fullmatch(value.strip())
        if m:
            frac = m.group(2) or ".0"
            ms = abs(int(m.group(1))) * 1000 + int((frac[1:] + "000")[:3])
            return -ms if m.group(1).startswith("-") else ms
    raise InvalidParameter(f"Invalid value {value!r} for '{name}': expected a duration such as '1.5s'.")


def ms_to_timestamp(ms: int) -> str:
    seconds, millis = divmod(int(ms), 1000)
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def ms_to_duration(ms: int) -> str:
    seconds, millis = divmod(int(ms), 1000)
    return f"{seconds}.{millis:03d}s"


def preview(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    return value if len(value) <= PREVIEW_CHARS else value[:PREVIEW_CHARS - 3] + "..."


def string_map(value: Any, name: str) -> dict[str, str]:
    """A protobuf map<string, string> from its JSON (an object) or a list of {key, value}."""
    if value is None:
        return {}
    if isinstance(value, list):
        pairs = [(item.get("key"), item.get("value")) for item in value if isinstance(item, dict)]
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise InvalidParameter(f"Invalid value for '{name}': expected an object of strings.")
    out = {}
    for key, val in pairs:
        if not isinstance(key, str) or not key or len(key) > MAX_TAG_KEY:
            raise InvalidParameter(f"Invalid key {key!r} in '{name}'.")
        if val is not None and not isinstance(val, str):
            val = json.dumps(val)
        out[key] = val
    return out


def json_text(value: Any) -> Optional[str]:
    """A span attribute's JSON-encoded string, decoded (None when absent)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else value
    return json.dumps(value)


def decoded_attribute(value: Any) -> Any:
    """A span attribute as MLflow keeps it (JSON text) decoded to its value; text that is
    not JSON stays as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
