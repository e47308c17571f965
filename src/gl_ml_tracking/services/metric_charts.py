"""Chart data for one metric of one run: the history cut into at most
``MAX_BUCKETS`` equal x-ranges, each summarised as min, max and last.

Why this shape: a chart is a few hundred pixels wide, so more points than
buckets add nothing a reader can see, while min and max keep spikes visible
(plain sampling hides them) and "last" gives the line to follow. The output is
bounded whatever the history's length; zooming asks again for a narrower
range, so detail comes back where the reader looks.

Two ways to fill the buckets, chosen by how many points the requested range
holds (counted with an index-only scan that stops at ``EXACT_LIMIT + 1``):

* **exact** (at most ``EXACT_LIMIT`` points): one ``GROUP BY`` in SQL over the
  range of the (run, key, step) index gives every bucket's true min, max and
  count; one index seek per bucket fetches its last point. Cost grows with the
  points in the range, which is capped.
* **sampled** (more points, spread over enough steps): evenly spaced index
  seeks (``metric_sampling.sample_steps``, at most ``MAX_SAMPLES``) summarised
  per bucket.
  The cost does not depend on the history's length, so a 1,000,000-point metric
  draws as fast as a small one; the answer says ``"sampled": true`` and min/max
  are those of the samples, so the page tells the reader to zoom in, where the
  range soon holds few enough points for exact buckets. (A huge history crammed
  into a few steps, e.g. everything logged at step 0, is summarised exactly:
  correct, but linear in its length.)

Exact min/max over a whole million-point range would need a pre-aggregated
rollup table maintained on write; see the UI report.

"Last" follows MLflow's notion of the latest value: in each bucket, the point
with the highest step, ties broken by the latest timestamp (then the latest
row). NaN points are stored as NULL and counted, not drawn.

Time on the x-axis: training logs time and step together, so the time range of
a large history is located in step space (timestamps of sampled steps), then
filtered by timestamp; everything reads the (run, key, step) index.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from sqlalchemy import BigInteger, case, func, literal, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Metric
from .metric_sampling import sample_steps

MAX_BUCKETS = 1000
DEFAULT_BUCKETS = 400
EXACT_LIMIT = 20_000  # points in range summarised exactly in SQL (~30-60 ms)
MAX_SAMPLES = 3_000  # index seeks for a sampled answer
LOCATE_SAMPLES = 1_000  # seeks to find a time window's steps
_SEEK_CHUNK = 400  # step values per IN (...) when fetching "last" rows


@dataclass(frozen=True)
class Bucket:
    x: int  # x of the bucket's last point (step or timestamp ms)
    x_min: int
    x_max: int
    last: Optional[float]
    min: Optional[float]
    max: Optional[float]
    count: int
    nan_count: int


def _finite(value: Optional[float]) -> Optional[float]:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return float(value)


def parse_chart_args(x: Any, buckets: Any, start: Any, end: Any) -> tuple[str, int, Optional[int], Optional[int]]:
    """Validate the query arguments of the chart endpoint."""
    x = (x or "step").lower()
    if x not in ("step", "time"):
        raise InvalidParameter("x must be 'step' or 'time'.")
    try:
        n = int(buckets) if buckets not in (None, "") else DEFAULT_BUCKETS
    except (TypeError, ValueError):
        raise InvalidParameter("buckets must be an integer.")
    n = max(2, min(MAX_BUCKETS, n))

    def bound(value: Any, name: str) -> Optional[int]:
        if value in (None, ""):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidParameter(f"{name} must be a number.")
        if math.isnan(number) or abs(number) > 2**62:
            raise InvalidParameter(f"{name} is out of range.")
        return math.floor(number) if name == "start" else math.ceil(number)

    lo, hi = bound(start, "start"), bound(end, "end")
    if lo is not None and hi is not None and lo > hi:
        raise InvalidParameter("start must not be greater than end.")
    return x, n, lo, hi


# --------------------------------------------------------------------------- reads
def _where(run_pk: int, key: str) -> tuple:
    return (Metric.run_id == run_pk, Metric.key == key)


def step_range(session: Session, run_pk: int, key: str) -> Optional[tuple[int, int]]:
    # Two queries on purpose: SQLite turns a lone min() or max() into one index
    # seek, but scans the whole index for both in one SELECT.
    lo = session.scalar(select(func.min(Metric.step)).where(*_where(run_pk, key)))
    if lo is None:
        return None
    hi = session.scalar(select(func.max(Metric.step)).where(*_where(run_pk, key)))
    return int(lo), int(hi)


def _count_upto(session: Session, run_pk: int, key: str, step_lo: int, step_hi: int, cap: int) -> int:
    """Points with step in [step_lo, step_hi], counting no further than ``cap``
    (an index-only scan of at most ``cap`` entries)."""
    inner = (select(literal(1).label("one")).where(*_where(run_pk, key), Metric.step >= step_lo, Metric.step <= step_hi)
             .limit(cap).subquery())
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def _time_range(session: Session, run_pk: int, key: str, step_lo: int, step_hi: int) -> Optional[tuple[int, int]]:
    lo, hi = session.execute(
        select(func.min(Metric.timestamp), func.max(Metric.timestamp))
        .where(*_where(run_pk, key), Metric.step >= step_lo, Metric.step <= step_hi)
    ).one()
    return None if lo is None else (int(lo), int(hi))


def _sample(session: Session, run_pk: int, key: str, step_lo: int, step_hi: int, count: int) -> list:
    """About ``count`` points spread evenly over [step_lo, step_hi], first and
    last included: the same index seeks as the API's bulk-interval sampling."""
    return sample_steps(session, run_pk, key, step_lo, step_hi, count)


def _locate_time_window(samples: Sequence, start: Optional[int], end: Optional[int],
                        steps: tuple[int, int]) -> tuple[int, int]:
    """The step range that holds times [start, end], from sampled (step, time)
    rows in step order (logging order: time grows with step)."""
    times = [r.timestamp for r in samples]
    step_lo, step_hi = steps
    if start is not None:
        i = bisect.bisect_left(times, start)
        step_lo = samples[i - 1].step if i > 0 else steps[0]
    if end is not None:
        j = bisect.bisect_right(times, end)
        step_hi = samples[j].step if j < len(samples) else steps[1]
    return step_lo, max(step_lo, step_hi)


# --------------------------------------------------------------------------- summaries
def chart_buckets(
    session: Session,
    run_pk: int,
    key: str,
    *,
    x: str = "step",
    buckets: int = DEFAULT_BUCKETS,
    start: Optional[int] = None,
    end: Optional[int] = None,
) -> dict:
    """``{"key", "x", "range": [lo, hi], "full_range": [lo, hi], "bucket_width",
    "sampled", "points": [Bucket...]}`` for ``run_pk``'s metric ``key``."""
    buckets = max(2, min(MAX_BUCKETS, int(buckets)))
    result: dict = {"key": key, "x": x, "full_range": None, "range": None, "bucket_width": None,
                    "sampled": False, "points": []}
    steps = step_range(session, run_pk, key)
    if steps is None:
        return result
    if x == "step":
        result["full_range"] = list(steps)
        lo = steps[0] if start is None else max(steps[0], start)
        hi = steps[1] if end is None else min(steps[1], end)
        step_lo, step_hi = lo, hi
    else:
        large = (steps[1] - steps[0] + 1 >= LOCATE_SAMPLES
                 and _count_upto(session, run_pk, key, steps[0], steps[1], EXACT_LIMIT + 1) > EXACT_LIMIT)
        if large:
            located = _sample(session, run_pk, key, steps[0], steps[1], LOCATE_SAMPLES)
            full = (min(r.timestamp for r in located), max(r.timestamp for r in located))
            step_lo, step_hi = _locate_time_window(located, start, end, steps)
        else:
            full = _time_range(session, run_pk, key, steps[0], steps[1])
            step_lo, step_hi = steps
        result["full_range"] = list(full)
        lo = full[0] if start is None else max(full[0], start)
        hi = full[1] if end is None else min(full[1], end)
    result["range"] = [lo, hi]
    if lo > hi or step_lo > step_hi:
        return result
    width = max(1, -(-(hi - lo + 1) // buckets))
    result["bucket_width"] = width
    samples = min(MAX_SAMPLES, buckets * 2)
    few_steps = step_hi - step_lo + 1 < samples  # sampling in step space would see too little
    if few_steps or _count_upto(session, run_pk, key, step_lo, step_hi, EXACT_LIMIT + 1) <= EXACT_LIMIT:
        result["points"] = _exact(session, run_pk, key, x, lo, hi, width, step_lo, step_hi)
    else:
        result["sampled"] = True
        result["points"] = _summarise(_sample(session, run_pk, key, step_lo, step_hi, samples), x, lo, hi, width)
    return result


def _exact(session: Session, run_pk: int, key: str, x: str, lo: int, hi: int, width: int,
           step_lo: int, step_hi: int) -> list[Bucket]:
    column = Metric.step if x == "step" else Metric.timestamp
    # "//" is integer division in SQLAlchemy 2 ("/" would be true division).
    bucket_expr = ((column - literal(lo, BigInteger)) // literal(width, BigInteger)).label("b")
    in_range = (*_where(run_pk, key), Metric.step >= step_lo, Metric.step <= step_hi, column >= lo, column <= hi)
    rows = session.execute(
        select(
            bucket_expr,
            func.min(Metric.value),
            func.max(Metric.value),
            func.count(),
            func.max(Metric.step),
            func.min(column),
            func.max(column),
            func.sum(case((Metric.is_nan.is_(True), 1), else_=0)),
        )
        .where(*in_range)
        .group_by(bucket_expr)
        .order_by(bucket_expr)
    ).all()
    last_rows = _last_points(session, run_pk, key, [int(r[4]) for r in rows], column, lo, hi)
    points = []
    for _b, vmin, vmax, count, last_step, x_min, x_max, nans in rows:
        x_min, x_max = int(x_min), int(x_max)
        # The bucket's last point: its highest step, latest time within the bucket.
        candidates = [r for r in last_rows.get(int(last_step), ()) if x_min <= r[1] <= x_max]
        last = max(candidates, key=lambda r: (r[2], r[3])) if candidates else None
        last_x = (int(last_step) if x == "step" else int(last[1])) if last is not None else x_max
        points.append(Bucket(
            x=last_x, x_min=x_min, x_max=x_max,
            last=_finite(last[0]) if last is not None and not last[4] else None,
            min=_finite(vmin), max=_finite(vmax), count=int(count), nan_count=int(nans or 0),
        ))
    return points


def _last_points(session: Session, run_pk: int, key: str, steps: list[int], column: Any, lo: int, hi: int) -> dict:
    """Rows (value, x, timestamp, id, is_nan) at the given steps, grouped by step:
    one index seek per step on (run_id, key, step)."""
    found: dict[int, list[tuple]] = {}
    unique = sorted(set(steps))
    for i in range(0, len(unique), _SEEK_CHUNK):
        chunk = unique[i : i + _SEEK_CHUNK]
        query = select(Metric.step, Metric.value, column, Metric.timestamp, Metric.id, Metric.is_nan).where(
            *_where(run_pk, key), Metric.step.in_(chunk), column >= lo, column <= hi
        )
        for step, value, x_value, timestamp, pk, is_nan in session.execute(query):
            found.setdefault(int(step), []).append((value, int(x_value), int(timestamp), int(pk), bool(is_nan)))
    return found


def _summarise(rows: Sequence, x: str, lo: int, hi: int, width: int) -> list[Bucket]:
    """Buckets from sampled rows (already one per step, in step order)."""
    grouped: dict[int, list] = {}
    for r in rows:
        xv = int(r.step if x == "step" else r.timestamp)
        if lo <= xv <= hi:
            grouped.setdefault((xv - lo) // width, []).append((xv, r))
    points = []
    for b in sorted(grouped):
        members = grouped[b]
        values = [r.value for _x, r in members if not r.is_nan and r.value is not None]
        last_x, last = max(members, key=lambda m: (m[1].step, m[1].timestamp, m[1].id))
        points.append(Bucket(
            x=last_x, x_min=min(m[0] for m in members), x_max=max(m[0] for m in members),
            last=None if last.is_nan else _finite(last.value),
            min=_finite(min(values)) if values else None, max=_finite(max(values)) if values else None,
            count=len(members), nan_count=sum(1 for _x, r in members if r.is_nan),
        ))
    return points


def buckets_json(data: dict) -> dict:
    """The chart endpoint's JSON: points as compact arrays
    ``[x, last, min, max, count, nan_count, x_min, x_max]``."""
    return {
        "key": data["key"],
        "x": data["x"],
        "range": data["range"],
        "full_range": data["full_range"],
        "bucket_width": data["bucket_width"],
        "sampled": data["sampled"],
        "columns": ["x", "last", "min", "max", "count", "nan_count", "x_min", "x_max"],
        "points": [[p.x, p.last, p.min, p.max, p.count, p.nan_count, p.x_min, p.x_max] for p in data["points"]],
    }
