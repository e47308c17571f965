"""Data of the experiment page's charts: per-step curves of one metric for many
runs at once, and the runs' parameters and latest metrics for the scatter and
parallel-coordinates views.

Curves are downsampled on the server with the same index seeks as the API's
``get-history-bulk-interval`` (``metric_sampling``): at most
``points`` points per run, first and last step always included, in a handful of
statements whatever the number of runs, and a cost that does not grow with the
history's length. A history of at most ``points`` steps comes back whole.

JSON cannot hold NaN or infinities: values are numbers or ``null``, and each
curve counts the points it could not draw (``nan``, ``inf``) so the page can say so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Run
from . import validation as v
from .metric_sampling import sampled_rows
from .run_data import load_run_data
from .ui_queries import runs_by_iids

MAX_RUNS = 100
MAX_VALUE_RUNS = 1000  # runs of a scatter or parallel-coordinates view
DEFAULT_POINTS = 400
MAX_POINTS = 1000
MIN_POINTS = 10
# Index seeks of one answer, shared by its runs: 10 runs get up to 1,000 points each,
# 100 runs 100 each (100 overlapping lines of 100 points on a 600-pixel chart lose
# nothing one can see; zooming asks again for the narrower range).
SEEK_BUDGET = 10_000
_INF = math.inf


@dataclass(frozen=True)
class CurveArgs:
    key: str
    iids: list[int]
    points: int
    start: Optional[int]
    end: Optional[int]


def parse_iids(raw: Sequence[str], limit: int = MAX_RUNS) -> list[int]:
    """Run IIDs from ``runs=1,2`` / ``runs=1&runs=2`` arguments, in order, without repeats."""
    iids: list[int] = []
    for chunk in raw:
        for part in str(chunk).split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdecimal() or len(part) > 18:  # isdecimal, not isdigit: int("²") fails
                raise InvalidParameter(f"Invalid run IID {part[:40]!r}.")
            iid = int(part)
            if iid not in iids:
                iids.append(iid)
    if len(iids) > limit:
        raise InvalidParameter(f"At most {limit} runs can be charted at once.")
    return iids


def _bound(value: Any, name: str) -> Optional[int]:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be a number.") from None
    if math.isnan(number) or abs(number) > 2**62:
        raise InvalidParameter(f"{name} is out of range.")
    return math.floor(number) if name == "start" else math.ceil(number)


def parse_curve_args(key: Any, runs: Sequence[str], points: Any, start: Any, end: Any) -> CurveArgs:
    key = v.validate_key("Metric", key) if key else None
    if not key:
        raise InvalidParameter("Missing value for required parameter 'key'.")
    try:
        n = int(points) if points not in (None, "") else DEFAULT_POINTS
    except (TypeError, ValueError):
        raise InvalidParameter("points must be an integer.") from None
    lo, hi = _bound(start, "start"), _bound(end, "end")
    if lo is not None and hi is not None and lo > hi:
        raise InvalidParameter("start must not be greater than end.")
    return CurveArgs(key, parse_iids(runs), max(MIN_POINTS, min(MAX_POINTS, n)), lo, hi)


def _number(value: Optional[float]) -> Optional[float]:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return float(value)


def curves(session: Session, project_id: str, experiment_pk: int, args: CurveArgs) -> dict:
    """``{"key", "points", "runs": [{"iid", "name", "points": [[step, value]...], "nan", "inf"}]}``
    for the runs of ``args.iids`` in this experiment (others are left out), in the order asked;
    ``points`` is the most any curve got (``args.points``, less when many runs share the budget)."""
    runs: list[Run] = runs_by_iids(session, project_id, args.iids, experiment_pk)
    by_iid = {run.iid: run for run in runs}
    ordered = [by_iid[i] for i in args.iids if i in by_iid]
    per_run = max(MIN_POINTS, min(args.points, SEEK_BUDGET // max(1, len(ordered))))
    sampled = sampled_rows(session, [r.id for r in ordered], args.key, args.start, args.end, per_run)
    out = []
    for run in ordered:
        rows = sampled[run.id]
        # 10,000 points per answer: one comprehension over the driver's rows (NaN is
        # stored as NULL with is_nan; the comparisons leave out NULL, NaN and ±inf).
        points = [[row[2], row[4]] for row in rows if not row[5] and row[4] is not None and -_INF < row[4] < _INF]
        inf = 0
        if len(points) < len(rows):
            inf = sum(1 for row in rows if not row[5] and row[4] is not None and math.isinf(row[4]))
        out.append({"iid": run.iid, "name": run.name or f"Run {run.iid}", "points": points,
                    "nan": len(rows) - len(points) - inf, "inf": inf})
    return {"key": args.key, "points": per_run, "runs": out}


def run_values(session: Session, project_id: str, experiment_pk: int, iids: Sequence[int]) -> dict:
    """Params and latest metric values of runs (scatter, parallel coordinates):
    ``{"params": [keys], "metrics": [keys], "runs": [{"iid", "name", "params": {}, "metrics": {}}]}``;
    a NaN or infinite latest value is ``null``."""
    runs = runs_by_iids(session, project_id, list(iids), experiment_pk)
    by_iid = {run.iid: run for run in runs}
    ordered = [by_iid[i] for i in iids if i in by_iid]
    data = load_run_data(session, [r.id for r in ordered], tags=False, inputs=False, outputs=False)
    param_keys: set[str] = set()
    metric_keys: set[str] = set()
    out = []
    for run in ordered:
        params = dict(data[run.id].params)
        metrics = {m[0]: (None if m[2] else _number(m[1])) for m in data[run.id].metrics}
        param_keys.update(params)
        metric_keys.update(metrics)
        out.append({"iid": run.iid, "name": run.name or f"Run {run.iid}", "params": params, "metrics": metrics})
    return {"params": sorted(param_keys), "metrics": sorted(metric_keys), "runs": out}
