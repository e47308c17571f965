"""What the trace pages show: the span tree in display order with its timeline
(offset and width of each bar), each span's inputs, outputs, attributes and events as
readable JSON, exceptions picked out, token usage from the trace metadata."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..models import Span
from . import trace_values as tv

_HIDDEN_ATTRIBUTES = {tv.REQUEST_ID_ATTRIBUTE, tv.SPAN_TYPE_ATTRIBUTE, tv.SPAN_INPUTS_ATTRIBUTE,
                      tv.SPAN_OUTPUTS_ATTRIBUTE, "mlflow.spanFunctionName"}
MAX_SHOWN_CHARS = 100_000  # per value on the page


@dataclass
class SpanView:
    span_id: str
    parent_id: Optional[str]
    name: str
    span_type: str
    status: str
    depth: int
    start_ms: float  # from the trace's start
    duration_ms: Optional[float]
    offset_pct: float
    width_pct: float
    inputs: Optional[str] = None
    outputs: Optional[str] = None
    attributes: list = field(default_factory=list)  # (key, pretty value)
    events: list = field(default_factory=list)  # (name, pretty attributes, is_exception)
    status_message: str = ""

    @property
    def has_exception(self) -> bool:
        return self.status == "ERROR" or any(e[2] for e in self.events)


def _any_value(value: Any) -> Any:
    """An OTLP AnyValue in protobuf JSON, as a Python value."""
    if not isinstance(value, dict) or not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind in ("int_value", "intValue"):
        return int(inner)
    if kind in ("array_value", "arrayValue"):
        return [_any_value(v) for v in (inner or {}).get("values", [])]
    if kind in ("kvlist_value", "kvlistValue"):
        return {kv.get("key"): _any_value(kv.get("value")) for kv in (inner or {}).get("values", [])}
    return inner


def pretty(value: Any) -> str:
    """A span attribute (MLflow stores them JSON-encoded) as indented JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value[:MAX_SHOWN_CHARS]
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "\n… (cut)"


def attribute_map(items: Sequence[dict]) -> dict:
    """OTLP key/values in protobuf JSON as a dict of Python values."""
    return {a.get("key"): _any_value(a.get("value")) for a in items or [] if isinstance(a, dict)}


def span_order(spans: Sequence[Any]) -> list[tuple[Any, int]]:
    """The spans (index rows: no payload) depth first, children in start order, each with
    its depth. Cheap tuples: only the rows a page shows become :class:`SpanView`."""
    children: dict[Optional[str], list[Any]] = {}
    ids = {s.span_id for s in spans}
    for s in spans:
        children.setdefault(s.parent_span_id if s.parent_span_id in ids else None, []).append(s)
    for kids in children.values():
        kids.sort(key=lambda k: (k.start_ns, k.span_id), reverse=True)  # popped from the end
    out: list[tuple[Any, int]] = []
    stack = [(s, 0) for s in children.get(None, [])]
    while stack:
        s, depth = stack.pop()
        out.append((s, depth))
        kids = children.get(s.span_id)
        if kids:
            stack += [(k, depth + 1) for k in kids]
    return out


def span_tree(spans: Sequence[Any], start: int = 0, count: Optional[int] = None) -> tuple[int, list[SpanView]]:
    """How many spans the trace has, and the rows ``start .. start + count`` of its tree
    (:func:`span_order`) with their timeline bars, on the whole trace's time scale."""
    if not spans:
        return 0, []
    begin = min(s.start_ns for s in spans)
    total = max(max((s.end_ns or s.start_ns) for s in spans) - begin, 1)
    order = span_order(spans)
    views = []
    for s, depth in order[start:None if count is None else start + count]:
        views.append(SpanView(
            span_id=s.span_id, parent_id=s.parent_span_id, name=s.name or "", span_type=s.span_type or "UNKNOWN",
            status=s.status or "UNSET", depth=depth, start_ms=(s.start_ns - begin) / 1e6,
            duration_ms=(s.end_ns - s.start_ns) / 1e6 if s.end_ns else None,
            offset_pct=round(100.0 * (s.start_ns - begin) / total, 3),
            width_pct=max(round(100.0 * ((s.end_ns or s.start_ns) - s.start_ns) / total, 3), 0.3),
        ))
    return len(order), views


def span_detail(s: Span) -> SpanView:
    """One span with its inputs, outputs, attributes and events (from its payload)."""
    payload = json.loads(s.payload)
    attrs = attribute_map(payload.get("attributes", []))
    view = SpanView(
        span_id=s.span_id, parent_id=s.parent_span_id, name=s.name or "", span_type=s.span_type or "UNKNOWN",
        status=s.status or "UNSET", depth=0, start_ms=0.0,
        duration_ms=(s.end_ns - s.start_ns) / 1e6 if s.end_ns else None, offset_pct=0.0, width_pct=0.0,
        status_message=(payload.get("status") or {}).get("message", ""),
    )
    if tv.SPAN_INPUTS_ATTRIBUTE in attrs:
        view.inputs = pretty(attrs[tv.SPAN_INPUTS_ATTRIBUTE])
    if tv.SPAN_OUTPUTS_ATTRIBUTE in attrs:
        view.outputs = pretty(attrs[tv.SPAN_OUTPUTS_ATTRIBUTE])
    view.attributes = [(k, pretty(v)) for k, v in sorted(attrs.items()) if k not in _HIDDEN_ATTRIBUTES]
    for event in payload.get("events", []) or []:
        name = event.get("name", "")
        view.events.append((name, pretty(attribute_map(event.get("attributes", [])) or {}), name == "exception"))
    return view


def token_usage(metadata: dict) -> Optional[dict]:
    raw = metadata.get(tv.TOKEN_USAGE_METADATA)
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    return usage if isinstance(usage, dict) else None


def assessment_value(a: Any) -> str:
    """An assessment's value as short text (its error's code when it failed)."""
    try:
        body = json.loads(a.value) if a.value else {}
    except ValueError:
        return ""
    if isinstance(body, dict):
        if "value" in body:
            value = body["value"]
            return value if isinstance(value, str) else json.dumps(value)
        if "serialized_value" in body:
            return str((body["serialized_value"] or {}).get("value", ""))
        if "error" in body:
            return "error: " + str((body["error"] or {}).get("error_code", ""))
    return ""
