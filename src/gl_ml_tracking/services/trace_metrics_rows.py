"""The rows a trace metrics query aggregates, one generator per view (MLflow 3.17.2's
``query_trace_metrics``): each row is ``(timestamp_ms, dimension values, value)``.

* TRACES: a trace's start, ``trace_name`` / ``trace_status``; the value is 1
  (trace_count), the session id (session_count), the duration in ms (latency) or a
  token count from the trace's token usage metadata.
* SPANS: the span's start, ``span_name`` / ``span_type`` / ``span_status`` /
  ``span_model_name`` / ``span_model_provider`` (the span's ``mlflow.llm.model`` and
  ``mlflow.llm.provider`` attributes); the value is 1 (span_count), the duration in
  whole ms (latency) or a cost from the ``mlflow.llm.cost`` attribute.
* ASSESSMENTS (valid ones): the trace's start, ``assessment_name`` /
  ``assessment_value`` (the value's JSON text); the value is 1 (assessment_count) or
  the number MLflow aggregates (assessment_value: finite numbers, booleans and
  yes/no as 1/0).

Rows are streamed from the database in batches; span payloads are read only when a
model dimension or a cost needs them.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterator, Optional

from sqlalchemy import and_, select, true

from ..models import Assessment, Span, Trace, TraceMetadata
from . import trace_values as tv

__all__ = ["trace_rows", "span_rows", "assessment_rows", "TRACE_DIMENSIONS", "SPAN_DIMENSIONS",
           "ASSESSMENT_DIMENSIONS"]

SESSION_METADATA = "mlflow.trace.session"
MODEL_ATTRIBUTE, PROVIDER_ATTRIBUTE, COST_ATTRIBUTE = "mlflow.llm.model", "mlflow.llm.provider", "mlflow.llm.cost"
MODEL_DIMENSION_MAX = 500
_BATCH = 1000
TRACE_DIMENSIONS = {"trace_name": Trace.name, "trace_status": Trace.state}
SPAN_DIMENSIONS = {"span_name": Span.name, "span_type": Span.span_type, "span_status": Span.status}
ASSESSMENT_DIMENSIONS = ("assessment_name", "assessment_value")
_COSTS = ("input_cost", "output_cost", "total_cost")


def _finite(value: Any) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _stream(session, stmt):
    return session.execute(stmt.execution_options(yield_per=_BATCH))


# --------------------------------------------------------------------------- traces
def _metadata(session, pks: list[int], key: str) -> dict[int, str]:
    return dict(session.execute(select(TraceMetadata.trace_pk, TraceMetadata.value).where(
        TraceMetadata.trace_pk.in_(pks), TraceMetadata.key == key)).all())


def _trace_value(metric: str, pk: int, duration: Optional[int], extra: dict) -> Any:
    if metric == "trace_count":
        return 1
    if metric == "latency":
        return duration
    if metric == "session_count":
        return extra.get(pk)
    try:
        usage = json.loads(extra.get(pk) or "")
    except ValueError:
        return None
    return _finite(usage.get(metric)) if isinstance(usage, dict) else None


def trace_rows(session, stmt, metric: str, dims: list[str], conds: list, start, end) -> Iterator[tuple]:
    stmt = stmt.add_columns(Trace.id, Trace.request_time, Trace.execution_duration,
                            *[TRACE_DIMENSIONS[d] for d in dims]).where(*conds)
    if start is not None:
        stmt = stmt.where(Trace.request_time >= start)
    if end is not None:
        stmt = stmt.where(Trace.request_time <= end)
    key = SESSION_METADATA if metric == "session_count" else tv.TOKEN_USAGE_METADATA
    batch: list = []
    for row in _stream(session, stmt):
        batch.append(row)
        if len(batch) >= _BATCH:
            yield from _trace_batch(session, batch, metric, key)
            batch = []
    yield from _trace_batch(session, batch, metric, key)


def _trace_batch(session, batch: list, metric: str, key: str) -> Iterator[tuple]:
    if not batch:
        return
    extra = _metadata(session, [r[0] for r in batch], key) if metric not in ("trace_count", "latency") else {}
    for row in batch:
        yield row[1], tuple(row[3:]), _trace_value(metric, row[0], row[2], extra)


# --------------------------------------------------------------------------- spans
def _any_value(value: dict) -> Any:
    """A span attribute's value from the stored OTLP JSON (``{"string_value": ...}``)."""
    for kind, raw in value.items():
        if kind == "kvlist_value":
            return {kv.get("key"): _any_value(kv.get("value") or {}) for kv in raw.get("values", [])}
        if kind == "array_value":
            return [_any_value(v) for v in raw.get("values", [])]
        if kind == "int_value":
            return int(raw)
        return raw
    return None


def _span_attributes(payload: str, keys: tuple) -> dict:
    try:
        span = json.loads(payload)
    except ValueError:
        return {}
    return {a.get("key"): _any_value(a.get("value") or {}) for a in span.get("attributes", []) if a.get("key") in keys}


def _model(value: Any) -> Optional[str]:
    value = tv.decoded_attribute(value)
    return value[:MODEL_DIMENSION_MAX] if isinstance(value, str) else None


def span_rows(session, stmt, metric: str, dims: list[str], conds: list, start, end) -> Iterator[tuple]:
    need_payload = metric in _COSTS or any(d not in SPAN_DIMENSIONS for d in dims)
    stmt = (stmt.join(Span, Span.trace_pk == Trace.id)
            .add_columns(Span.start_ns, Span.end_ns, Span.payload if need_payload else Span.span_id,
                         *[SPAN_DIMENSIONS.get(d, Span.span_id) for d in dims]).where(*conds))
    if metric in _COSTS:  # costs are placed in time by the span, the others by the trace
        if start is not None:
            stmt = stmt.where(Span.start_ns >= start * 1_000_000)
        if end is not None:
            stmt = stmt.where(Span.start_ns < (end + 1) * 1_000_000)
    else:
        if start is not None:
            stmt = stmt.where(Trace.request_time >= start)
        if end is not None:
            stmt = stmt.where(Trace.request_time <= end)
    for start_ns, end_ns, payload, *dim_values in _stream(session, stmt):
        attrs = _span_attributes(payload, (MODEL_ATTRIBUTE, PROVIDER_ATTRIBUTE, COST_ATTRIBUTE)) if need_payload else {}
        values = tuple(_model(attrs.get(MODEL_ATTRIBUTE)) if d == "span_model_name"
                       else _model(attrs.get(PROVIDER_ATTRIBUTE)) if d == "span_model_provider" else v
                       for d, v in zip(dims, dim_values))
        if metric == "span_count":
            value: Any = 1
        elif metric == "latency":
            value = None if end_ns is None else (end_ns - start_ns) // 1_000_000
        else:
            cost = tv.decoded_attribute(attrs.get(COST_ATTRIBUTE))
            value = _finite(cost.get(metric)) if isinstance(cost, dict) else None
        yield start_ns // 1_000_000, values, value


# --------------------------------------------------------------------------- assessments
def _aggregate_value(value: Any) -> Optional[float]:
    """The number MLflow aggregates for an assessment value (None: not aggregated)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return _finite(value)
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return 1.0 if value.strip().lower() == "yes" else 0.0
    return None


def assessment_rows(session, stmt, metric: str, dims: list[str], conds: list, start, end) -> Iterator[tuple]:
    stmt = (stmt.join(Assessment, and_(Assessment.trace_pk == Trace.id, Assessment.valid == true()))
            .add_columns(Trace.request_time, Assessment.name, Assessment.value).where(*conds))
    if start is not None:
        stmt = stmt.where(Trace.request_time >= start)
    if end is not None:
        stmt = stmt.where(Trace.request_time <= end)
    for ts, name, raw in _stream(session, stmt):
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        inner = body.get("value") if isinstance(body, dict) else None
        shown = {"assessment_name": name, "assessment_value": json.dumps(inner)}
        value = 1 if metric == "assessment_count" else _aggregate_value(inner)
        yield ts, tuple(shown[d] for d in dims), value
