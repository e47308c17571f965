"""``traces/metrics``: MLflow 3.17.2's ``query_trace_metrics`` over a project's
experiments, in its three views:

* TRACES: trace_count (COUNT; by trace_name, trace_status), session_count (COUNT),
  latency (AVG MIN MAX PERCENTILE; by trace_name) and the token counts input_tokens,
  output_tokens, total_tokens, cache_read_input_tokens, cache_creation_input_tokens
  (SUM AVG MIN MAX PERCENTILE; by trace_name);
* SPANS: span_count (COUNT; by span_name, span_type, span_status, span_model_name,
  span_model_provider), latency (AVG MIN MAX PERCENTILE; by span_name, span_status),
  input_cost, output_cost, total_cost (SUM AVG MIN MAX PERCENTILE; by the model
  dimensions);
* ASSESSMENTS: assessment_count (COUNT; by assessment_name, assessment_value) and
  assessment_value (AVG MIN MAX PERCENTILE; by assessment_name).

With ``time_interval_seconds`` (which needs ``start_time_ms`` and ``end_time_ms``,
both inclusive) the points are also grouped by ``time_bucket`` (ISO 8601, UTC).
``filters`` follow :mod:`.trace_metrics_filters`. Points are ordered by time bucket
and dimensions; a point whose aggregations are all empty is left out. The rows come
from :mod:`.trace_metrics_rows`.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Experiment, Trace
from ..search.sql import Dialect
from . import lookups
from . import trace_metrics_rows as rows
from .trace_metrics_filters import conditions

AGGREGATIONS = ("COUNT", "SUM", "AVG", "PERCENTILE", "MIN", "MAX")
_STATS = ("SUM", "AVG", "MIN", "MAX", "PERCENTILE")
_SPREAD = ("AVG", "MIN", "MAX", "PERCENTILE")
_TOKENS = ("input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_MODEL_DIMS = ("span_model_name", "span_model_provider")
# view -> metric -> (aggregations, dimensions)
CONFIGS = {
    "TRACES": {"trace_count": (("COUNT",), ("trace_name", "trace_status")), "session_count": (("COUNT",), ()),
               "latency": (_SPREAD, ("trace_name",)), **{t: (_STATS, ("trace_name",)) for t in _TOKENS}},
    "SPANS": {"span_count": (("COUNT",), ("span_name", "span_type", "span_status", *_MODEL_DIMS)),
              "latency": (_SPREAD, ("span_name", "span_status")),
              **{c: (_STATS, _MODEL_DIMS) for c in ("input_cost", "output_cost", "total_cost")}},
    "ASSESSMENTS": {"assessment_count": (("COUNT",), ("assessment_name", "assessment_value")),
                    "assessment_value": (_SPREAD, ("assessment_name",))},
}
_VIEW_NUMBERS = {"1": "TRACES", "2": "SPANS", "3": "ASSESSMENTS"}
_ROWS = {"TRACES": rows.trace_rows, "SPANS": rows.span_rows, "ASSESSMENTS": rows.assessment_rows}
TIME_BUCKET = "time_bucket"
MAX_RESULTS = 1000


def _aggregations(items: Any, allowed: tuple) -> list[tuple[str, Optional[float]]]:
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
    if invalid := sorted({k for k, _ in out} - set(allowed)):
        raise InvalidParameter(f"Found invalid aggregation_type(s): {invalid}. "
                               f"Supported aggregation types: {sorted(allowed)}")
    return out


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _aggregate(kind: str, pct: Optional[float], values: list, distinct: bool) -> Optional[float]:
    if kind == "COUNT":
        return float(len(set(values)) if distinct else len(values))
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


def _int_arg(args: dict, name: str) -> Optional[int]:
    value = args.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"Invalid value {value!r} for parameter '{name}': expected an integer.") from None


def _sort_key(key: tuple) -> tuple:
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in key)


def query(session: Session, project_id: str, args: dict) -> list[dict]:
    view = str(args.get("view_type") or "TRACES").upper()
    view = _VIEW_NUMBERS.get(view, view)
    if view not in CONFIGS:
        raise InvalidParameter(f"view_type must be one of {list(CONFIGS)}, got '{view}'")
    metric = args.get("metric_name")
    if metric not in CONFIGS[view]:
        raise InvalidParameter(f"metric_name must be one of {list(CONFIGS[view])}, got '{metric}'")
    allowed_aggs, allowed_dims = CONFIGS[view][metric]
    aggregations = _aggregations(args.get("aggregations"), allowed_aggs)
    dimensions = list(args.get("dimensions") or [])
    if invalid := sorted(set(dimensions) - set(allowed_dims)):
        raise InvalidParameter(f"Found invalid dimension(s): {invalid}. Supported dimensions: {sorted(allowed_dims)}")
    interval = _int_arg(args, "time_interval_seconds")
    start, end = _int_arg(args, "start_time_ms"), _int_arg(args, "end_time_ms")
    if interval is not None and interval <= 0:
        raise InvalidParameter("time_interval_seconds must be positive.")
    if interval and (start is None or end is None):
        raise InvalidParameter("start_time_ms and end_time_ms are required if time_interval_seconds is set")
    limit = _int_arg(args, "max_results") or MAX_RESULTS
    iids = [lookups.parse_experiment_iid(e) for e in args.get("experiment_ids") or []]
    if not iids:
        raise InvalidParameter("Missing value for required parameter 'experiment_ids'.")
    conds = conditions(args.get("filters"), view, Dialect(session, Trace))
    base = (select().select_from(Trace).join(Experiment, Experiment.id == Trace.experiment_id)
            .where(Trace.project_id == project_id, Experiment.iid.in_(iids)))
    groups: dict[tuple, list] = defaultdict(list)
    step = interval * 1000 if interval else None
    for ts, dims, value in _ROWS[view](session, base, metric, dimensions, conds, start, end):
        if value is None or any(d is None for d in dims):
            continue
        groups[((ts // step * step,) if step else ()) + dims].append(value)
    names = ([TIME_BUCKET] if step else []) + dimensions
    points = []
    for key in sorted(groups, key=_sort_key):
        values = {}
        for kind, pct in aggregations:
            value = _aggregate(kind, pct, groups[key], distinct=metric == "session_count")
            if value is not None:
                values[f"P{pct}" if kind == "PERCENTILE" else kind] = value
        if not values:
            continue
        dims = dict(zip(names, key))
        if step:
            dims[TIME_BUCKET] = dt.datetime.fromtimestamp(dims[TIME_BUCKET] / 1000, tz=dt.timezone.utc).isoformat()
        points.append({"metric_name": metric, "dimensions": {k: str(v) for k, v in dims.items()}, "values": values})
        if len(points) >= limit:
            break
    return points
