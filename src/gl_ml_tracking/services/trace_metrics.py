"""``traces/metrics``: aggregates over an experiment's traces, as MLflow 3's
``query_trace_metrics`` (the TRACES view): ``trace_count``, ``latency`` (ms) and token
counts, by ``trace_name`` / ``trace_status`` and by time bucket (``time_bucket``, ISO
8601), with COUNT, SUM, AVG, MIN, MAX and percentiles; ``filters`` are trace filters."""
from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Experiment, Trace, TraceMetadata
from . import lookups
from . import trace_values as tv
from .trace_search import filter_condition

METRICS = ("trace_count", "latency", "input_tokens", "output_tokens", "total_tokens")
DIMENSIONS = {"trace_name": Trace.name, "trace_status": Trace.state}
AGGREGATIONS = ("COUNT", "SUM", "AVG", "PERCENTILE", "MIN", "MAX")
TIME_BUCKET = "time_bucket"


def _aggregations(items: Any) -> list[tuple[str, Optional[float]]]:
    out = []
    for item in items or []:
        kind = str((item or {}).get("aggregation_type", "")).upper()
        if kind.isdigit():
            kind = AGGREGATIONS[int(kind) - 1] if 0 < int(kind) <= len(AGGREGATIONS) else kind
        if kind not in AGGREGATIONS:
            raise InvalidParameter(f"Invalid aggregation type {kind!r}: expected one of {', '.join(AGGREGATIONS)}.")
        pct = item.get("percentile_value")
        if kind == "PERCENTILE" and (not isinstance(pct, (int, float)) or not 0 <= pct <= 100):
            raise InvalidParameter("A PERCENTILE aggregation needs a percentile_value between 0 and 100.")
        out.append((kind, float(pct) if kind == "PERCENTILE" else None))
    if not out:
        raise InvalidParameter("Missing value for required parameter 'aggregations'.")
    return out


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _aggregate(kind: str, pct: Optional[float], values: list[float]) -> Optional[float]:
    if kind == "COUNT":
        return float(len(values))
    if not values:
        return None
    if kind == "SUM":
        return float(sum(values))
    if kind == "AVG":
        return sum(values) / len(values)
    if kind == "MIN":
        return float(min(values))
    if kind == "MAX":
        return float(max(values))
    return _percentile(values, pct)


def query(session: Session, project_id: str, args: dict) -> list[dict]:
    view = str(args.get("view_type") or "TRACES").upper()
    if view not in ("TRACES", "1"):
        raise InvalidParameter(f"Trace metrics of the {view} view are not supported; use TRACES.")
    metric = args.get("metric_name")
    if metric not in METRICS:
        raise InvalidParameter(f"Invalid metric_name {metric!r} for TRACES: expected one of {', '.join(METRICS)}.")
    aggregations = _aggregations(args.get("aggregations"))
    dimensions = list(args.get("dimensions") or [])
    for d in dimensions:
        if d not in DIMENSIONS:
            raise InvalidParameter(f"Invalid dimension {d!r}: expected one of {', '.join(DIMENSIONS)}.")
    interval = args.get("time_interval_seconds")
    if interval is not None and int(interval) <= 0:
        raise InvalidParameter("time_interval_seconds must be positive.")
    iids = [lookups.parse_experiment_iid(e) for e in args.get("experiment_ids") or []]
    if not iids:
        raise InvalidParameter("Missing value for required parameter 'experiment_ids'.")
    stmt = (select(Trace.id, Trace.request_time, Trace.execution_duration, *[DIMENSIONS[d] for d in dimensions])
            .join(Experiment, Experiment.id == Trace.experiment_id)
            .where(Trace.project_id == project_id, Experiment.iid.in_(iids)))
    for f in args.get("filters") or []:
        cond = filter_condition(session, f)
        if cond is not None:
            stmt = stmt.where(cond)
    if args.get("start_time_ms") is not None:
        stmt = stmt.where(Trace.request_time >= int(args["start_time_ms"]))
    if args.get("end_time_ms") is not None:
        stmt = stmt.where(Trace.request_time < int(args["end_time_ms"]))
    rows = session.execute(stmt).all()
    tokens = _token_usage(session, [r[0] for r in rows]) if metric.endswith("_tokens") else {}
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        key = tuple(row[3:])
        if any(k is None for k in key):
            continue
        if interval:
            step = int(interval) * 1000
            key = (row[1] // step * step,) + key
        if metric == "latency":
            if row[2] is not None:
                groups[key].append(float(row[2]))
            else:
                groups.setdefault(key, [])
        elif metric == "trace_count":
            groups[key].append(1.0)
        elif row[0] in tokens and metric in tokens[row[0]]:
            groups[key].append(float(tokens[row[0]][metric]))
    names = ([TIME_BUCKET] if interval else []) + dimensions
    points = []
    for key in sorted(groups, key=_group_order):
        values = {}
        for kind, pct in aggregations:
            value = _aggregate(kind, pct, groups[key])
            if value is not None:
                values[f"P{pct}" if kind == "PERCENTILE" else kind] = value
        if not values:
            continue
        dims = dict(zip(names, key))
        if interval:
            dims[TIME_BUCKET] = dt.datetime.fromtimestamp(dims[TIME_BUCKET] / 1000, tz=dt.timezone.utc).isoformat()
        points.append({"metric_name": metric, "dimensions": {k: str(v) for k, v in dims.items()}, "values": values})
    limit = int(args.get("max_results") or 1000)
    return points[:limit]


def _group_order(key: tuple) -> tuple:
    """Time buckets by time, dimension values as strings (MLflow orders by its GROUP BY columns:
    ``ERROR`` before ``OK``; zero-padding every value as text had put ``OK`` first)."""
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, "" if v is None else str(v)) for v in key)


def _token_usage(session: Session, pks: list[int]) -> dict[int, dict]:
    out = {}
    for start in range(0, len(pks), 1000):
        for pk, raw in session.execute(select(TraceMetadata.trace_pk, TraceMetadata.value).where(
                TraceMetadata.trace_pk.in_(pks[start:start + 1000]), TraceMetadata.key == tv.TOKEN_USAGE_METADATA)):
            try:
                usage = json.loads(raw or "")
            except ValueError:
                continue
            if isinstance(usage, dict):
                out[pk] = usage
    return out
