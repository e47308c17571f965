"""The spans of an uploaded ``traces.json`` in the shape the database keeps them: each span
as the OTLP span in protobuf's JSON mapping (what ``traces/get`` answers and the trace pages
read), plus its index fields (id, parent, name, type, status, times).

``traces.json`` is MLflow's ``TraceData.to_dict()``: ``{"spans": [...]}``, each span either
MLflow 3's dict (ids base64 of the OTel bytes, attributes JSON-encoded, status code names
like ``STATUS_CODE_OK``; MLflow 3.5 wrote ids as hex) or MLflow 2's (``context`` with
``0x`` hex ids, ``status_code``). A leaf: nothing here touches the database.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Optional

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan, Status

from ..errors import BadRequest
from . import trace_values as tv

_STATUS = {"STATUS_CODE_OK": Status.STATUS_CODE_OK, "OK": Status.STATUS_CODE_OK,
           "STATUS_CODE_ERROR": Status.STATUS_CODE_ERROR, "ERROR": Status.STATUS_CODE_ERROR}
_STATUS_NAMES = {Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR"}
_MAX_DEPTH = 64  # nesting kept as OTLP values; deeper parts are kept as JSON text
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


@dataclass
class FileSpan:
    """A span read from ``traces.json``: the attributes of a span row (``models.Span``)."""

    span_id: str
    parent_span_id: Optional[str]
    name: str
    span_type: Optional[str]
    status: str
    start_ns: int
    end_ns: Optional[int]
    payload: str


def _id_bytes(value: Any, size: int) -> Optional[bytes]:
    """An id written as base64 (MLflow 3), hex (3.5), ``0x`` hex (MLflow 2) or ``tr-`` hex."""
    if not isinstance(value, str) or not value:
        return None
    text = value.removeprefix("tr-").removeprefix("0x")
    if len(text) == 2 * size:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def _set_value(target: Any, value: Any, depth: int = 0) -> None:
    """``value`` into an OTLP AnyValue (as the client's exporter types it; None stays unset)."""
    if value is None:
        return
    if depth > _MAX_DEPTH:
        target.string_value = json.dumps(value, default=str)
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, (list, tuple)):
        target.array_value.SetInParent()
        for item in value:
            _set_value(target.array_value.values.add(), item, depth + 1)
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            kv = target.kvlist_value.values.add()
            kv.key = str(key)
            _set_value(kv.value, item, depth + 1)
    else:
        target.string_value = str(value)


def _add_attributes(repeated: Any, attributes: Any, encoded: bool) -> None:
    for key, value in (attributes or {}).items() if isinstance(attributes, dict) else ():
        kv = repeated.add()
        kv.key = str(key)
        _set_value(kv.value, tv.decoded_attribute(value) if encoded else value)


def _nanos(value: Any) -> int:
    try:
        return max(int(value), 0) if value not in (None, "") else 0
    except (TypeError, ValueError):
        return 0


def _build(span: dict, trace_id: bytes) -> OtlpSpan:
    """One ``traces.json`` span (either schema) as an OTLP span."""
    v2 = "context" in span
    context = (span.get("context") or {}) if v2 else span
    out = OtlpSpan()
    out.trace_id = _id_bytes(context.get("trace_id"), 16) or trace_id
    span_id = _id_bytes(context.get("span_id"), 8)
    if span_id is None:
        raise BadRequest("A span of the trace's traces.json has no valid span_id.")
    out.span_id = span_id
    parent = _id_bytes(span.get("parent_id" if v2 else "parent_span_id"), 8)
    if parent is not None:
        out.parent_span_id = parent
    out.name = "" if span.get("name") is None else str(span["name"])
    out.start_time_unix_nano = _nanos(span.get("start_time" if v2 else "start_time_unix_nano"))
    out.end_time_unix_nano = _nanos(span.get("end_time" if v2 else "end_time_unix_nano"))
    status = {"code": span.get("status_code"), "message": span.get("status_message")} if v2 else (span.get("status") or {})
    if isinstance(status, dict):
        out.status.code = _STATUS.get(str(status.get("code") or ""), Status.STATUS_CODE_UNSET)
        if status.get("message"):
            out.status.message = str(status["message"])
    _add_attributes(out.attributes, span.get("attributes"), encoded=True)
    for event in span.get("events") or []:
        if isinstance(event, dict):
            e = out.events.add()
            e.name = str(event.get("name") or "")
            e.time_unix_nano = _nanos(event.get("timestamp" if v2 else "time_unix_nano"))
            _add_attributes(e.attributes, event.get("attributes"), encoded=False)
    for link in span.get("links") or []:
        if isinstance(link, dict):
            linked_trace, linked_span = _id_bytes(link.get("trace_id"), 16), _id_bytes(link.get("span_id"), 8)
            if linked_trace and linked_span:
                proto_link = out.links.add()
                proto_link.trace_id, proto_link.span_id = linked_trace, linked_span
                _add_attributes(proto_link.attributes, link.get("attributes"), encoded=False)
    return out


def _span_type(span: OtlpSpan) -> Optional[str]:
    for kv in span.attributes:
        if kv.key == tv.SPAN_TYPE_ATTRIBUTE and kv.value.WhichOneof("value") == "string_value":
            return kv.value.string_value[:64] or None
    return None


def parse(text: bytes, trace_id: str) -> list[FileSpan]:
    """The spans of a ``traces.json``, in start order; BadRequest if it is not one."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"The trace's traces.json is not valid JSON: {str(exc)[:200]}") from None
    spans = data.get("spans") if isinstance(data, dict) else None
    if not isinstance(spans, list):
        raise BadRequest("The trace's traces.json has no list of spans.")
    fallback_id = _id_bytes(trace_id, 16) or bytes(16)
    out = []
    for raw in spans:
        if not isinstance(raw, dict):
            raise BadRequest("A span of the trace's traces.json is not an object.")
        span = _build(raw, fallback_id)
        out.append(FileSpan(
            span_id=span.span_id.hex(), parent_span_id=span.parent_span_id.hex() or None, name=span.name[:500],
            span_type=_span_type(span), status=_STATUS_NAMES.get(span.status.code, "UNSET"),
            start_ns=int(span.start_time_unix_nano), end_ns=int(span.end_time_unix_nano) or None,
            payload=json.dumps(MessageToDict(span, preserving_proto_field_name=True), separators=(",", ":")),
        ))
    out.sort(key=lambda s: (s.start_ns, s.span_id))
    return out
