"""An OTLP span in protobuf's JSON mapping (field names as in the .proto), as
``MessageToDict(span, preserving_proto_field_name=True)`` gives it, written out field by field:
protobuf's generic converter looks every field up by reflection, which was a fifth of the
cost of storing a span. tests/test_otlp_json.py holds the two to the same output. A leaf.
"""
from __future__ import annotations

import math
from base64 import b64encode
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

_KIND_NAMES = {v.number: v.name for v in Span.SpanKind.DESCRIPTOR.values}
_CODE_NAMES = {v.number: v.name for v in Status.StatusCode.DESCRIPTOR.values}


def _b64(value: bytes) -> str:
    return b64encode(value).decode("ascii")


def _double(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def any_value(value: Any) -> dict:
    kind = value.WhichOneof("value")
    if kind is None:
        return {}
    if kind == "string_value":
        return {"string_value": value.string_value}
    if kind == "int_value":
        return {"int_value": str(value.int_value)}
    if kind == "bool_value":
        return {"bool_value": value.bool_value}
    if kind == "double_value":
        return {"double_value": _double(value.double_value)}
    if kind == "array_value":
        values = value.array_value.values
        return {"array_value": {"values": [any_value(v) for v in values]} if len(values) else {}}
    if kind == "kvlist_value":
        values = value.kvlist_value.values
        return {"kvlist_value": {"values": key_values(values)} if len(values) else {}}
    if kind == "bytes_value":
        return {"bytes_value": _b64(value.bytes_value)}
    return {kind: getattr(value, kind)}  # string_value_strindex: an int32


def key_values(items: Any) -> list:
    out = []
    for kv in items:
        item: dict = {}
        if kv.key:
            item["key"] = kv.key
        if kv.HasField("value"):
            item["value"] = any_value(kv.value)
        if kv.key_strindex:
            item["key_strindex"] = kv.key_strindex
        out.append(item)
    return out


def _put_attributes(out: dict, message: Any) -> None:
    if len(message.attributes):
        out["attributes"] = key_values(message.attributes)
    if message.dropped_attributes_count:
        out["dropped_attributes_count"] = message.dropped_attributes_count


def _event(event: Any) -> dict:
    out: dict = {}
    if event.time_unix_nano:
        out["time_unix_nano"] = str(event.time_unix_nano)
    if event.name:
        out["name"] = event.name
    _put_attributes(out, event)
    return out


def _link(link: Any) -> dict:
    out: dict = {}
    for name in ("trace_id", "span_id"):
        if getattr(link, name):
            out[name] = _b64(getattr(link, name))
    if link.trace_state:
        out["trace_state"] = link.trace_state
    _put_attributes(out, link)
    if link.flags:
        out["flags"] = link.flags
    return out


def span_dict(span: Any) -> dict:
    """The span as protobuf's JSON mapping (a dict to ``json.dumps``)."""
    out: dict = {}
    if span.trace_id:
        out["trace_id"] = _b64(span.trace_id)
    if span.span_id:
        out["span_id"] = _b64(span.span_id)
    if span.trace_state:
        out["trace_state"] = span.trace_state
    if span.parent_span_id:
        out["parent_span_id"] = _b64(span.parent_span_id)
    if span.name:
        out["name"] = span.name
    if span.kind:
        out["kind"] = _KIND_NAMES.get(span.kind, span.kind)
    if span.start_time_unix_nano:
        out["start_time_unix_nano"] = str(span.start_time_unix_nano)
    if span.end_time_unix_nano:
        out["end_time_unix_nano"] = str(span.end_time_unix_nano)
    _put_attributes(out, span)
    if len(span.events):
        out["events"] = [_event(e) for e in span.events]
    if span.dropped_events_count:
        out["dropped_events_count"] = span.dropped_events_count
    if len(span.links):
        out["links"] = [_link(k) for k in span.links]
    if span.dropped_links_count:
        out["dropped_links_count"] = span.dropped_links_count
    if span.HasField("status"):
        status: dict = {}
        if span.status.message:
            status["message"] = span.status.message
        if span.status.code:
            status["code"] = _CODE_NAMES.get(span.status.code, span.status.code)
        out["status"] = status
    if span.flags:
        out["flags"] = span.flags
    return out
