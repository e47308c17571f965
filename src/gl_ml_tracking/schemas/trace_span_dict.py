"""A stored span (OTLP protobuf JSON) as MLflow's ``Span.to_dict()``: the shape of a
trace's ``traces.json``, which MLflow's UI handler ``get-trace-artifact`` answers."""
from __future__ import annotations

import json
from typing import Iterable, Iterator, Optional

from ..services.trace_view import attribute_map


def _nanos(value) -> Optional[int]:
    return int(value) if value not in (None, "") else None


def _encoded(items) -> dict:
    # MLflow keeps span attributes JSON-encoded; the OTLP span carries them decoded.
    return {k: json.dumps(v, ensure_ascii=False) for k, v in attribute_map(items).items()}


def span_dict(payload: str) -> dict:
    span = json.loads(payload)
    status = span.get("status") or {}
    return {
        "trace_id": span.get("trace_id"),
        "span_id": span.get("span_id"),
        "parent_span_id": span.get("parent_span_id") or None,
        "name": span.get("name"),
        "start_time_unix_nano": _nanos(span.get("start_time_unix_nano")),
        "end_time_unix_nano": _nanos(span.get("end_time_unix_nano")),
        "events": [{"name": e.get("name"), "time_unix_nano": _nanos(e.get("time_unix_nano")),
                    "attributes": attribute_map(e.get("attributes"))} for e in span.get("events") or []],
        "status": {"code": status.get("code") or "STATUS_CODE_UNSET", "message": status.get("message") or ""},
        "attributes": _encoded(span.get("attributes")),
        "links": [{"trace_id": link.get("trace_id"), "span_id": link.get("span_id"),
                   "attributes": attribute_map(link.get("attributes"))} for link in span.get("links") or []],
    }


def traces_json(payloads: Iterable[str]) -> Iterator[bytes]:
    """The trace's spans as ``{"spans": [...]}`` JSON, span by span."""
    yield b'{"spans":['
    for i, payload in enumerate(payloads):
        yield (b"," if i else b"") + json.dumps(span_dict(payload)).encode()
    yield b"]}"
