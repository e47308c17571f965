"""Metric histories sampled for charts: the run page's chart and the experiment page's
curves read these index seeks (the API's ``get-history-bulk-interval`` samples rows as
MLflow does instead: ``metric_buckets``).

A run's step range [lo, hi] is cut at the targets ``t_i = lo + span * i //
(max_points - 1)`` (i = 0..max_points-1, span = hi - lo) into intervals
(t_(i-1), t_i]; each interval gives the last point logged at its highest step,
found by one backward index seek on (run, key, step, timestamp, id). So the first
and last step are always there, a range of at most ``max_points`` steps comes
whole, one step shows the value last logged at it, and the cost does not grow
with the history's length: 100 runs of 100,000 points each cost what 100 runs of
1,000 do.

On PostgreSQL the seeks read the index only: ``ix_glml_metrics_run_key_step_cover``
carries ``value`` and ``is_nan`` (migration 0008), so a seek touches no table page
(as long as autovacuum keeps the visibility map current). On SQLite the table row
is one more B-tree step, cheap next to the seek (measured: a covering index saved
nothing there, so SQLite keeps the narrower index and its cheaper writes).
"""
from __future__ import annotations

import json
from operator import itemgetter
from typing import NamedTuple, Optional, Sequence

from sqlalchemy.orm import Session

from ..models import Metric
from .common import without_jit

__all__ = ["SampledPoint", "sample_steps", "sample_steps_many", "sampled_rows"]

_TABLE = Metric.__tablename__
# Seeks per statement (SQLite); 100 runs x 2,500 points fit in 25.
_SEEKS_PER_STATEMENT = 10_000
_STEP = itemgetter(2)


class SampledPoint(NamedTuple):
    """A sampled row: (id, step, timestamp, value, is_nan), the history queries' columns."""

    id: int
    step: int
    timestamp: int
    value: Optional[float]
    is_nan: bool


def sample_steps(session: Session, run_pk: int, key: str, start_step: Optional[int], end_step: Optional[int],
                 max_points: int) -> list[SampledPoint]:
    """About ``max_points`` points of one run spread evenly over its step range."""
    return sample_steps_many(session, [run_pk], key, start_step, end_step, max_points)[run_pk]


def sample_steps_many(
    session: Session, run_pks: Sequence[int], key: str, start_step: Optional[int], end_step: Optional[int],
    max_points: int,
) -> dict[int, list[SampledPoint]]:
    """``sample_steps`` for many runs at once, in a handful of statements whatever
    the number of runs: ``{run pk: [SampledPoint in step order]}``."""
    return {pk: [SampledPoint(row[1], row[2], row[3], row[4], bool(row[5])) for row in rows]
            for pk, rows in sampled_rows(session, run_pks, key, start_step, end_step, max_points).items()}


def sampled_rows(
    session: Session, run_pks: Sequence[int], key: str, start_step: Optional[int], end_step: Optional[int],
    max_points: int,
) -> dict[int, list[tuple]]:
    """The driver's rows ``(run pk, id, step, timestamp, value, is_nan)`` of the samples,
    per run in step order (``is_nan`` may be 0/1): for callers that turn 10,000 of
    them into JSON and need no named tuple per point."""
    run_pks = list(dict.fromkeys(int(pk) for pk in run_pks))
    result: dict[int, list[tuple]] = {pk: [] for pk in run_pks}
    if not run_pks:
        return result
    max_points = max(2, max_points)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = _sampled_rows_pg(conn, run_pks, key, start_step, end_step, max_points)
    else:
        rows = _sampled_rows_sqlite(conn, run_pks, key, start_step, end_step, max_points)
    for row in rows:
        result[row[0]].append(row)
    for points in result.values():
        points.sort(key=_STEP)  # the intervals are disjoint: one point per step
    return result


# --------------------------------------------------------------------------- SQLite
def _intervals(lo: int, hi: int, max_points: int) -> list[tuple[int, int]]:
    """The non-empty (lowest, highest) step intervals, both inclusive, of a range."""
    span = hi - lo
    if span == 0:
        return [(lo, hi)]
    intervals, low = [], lo
    for i in range(max_points):
        target = lo + (span * i) // (max_points - 1)
        if target >= low:
            intervals.append((low, target))
            low = target + 1
    return intervals


def _sampled_rows_sqlite(conn, run_pks, key, start_step, end_step, max_points) -> list:
    """The step bounds in one statement; the intervals, made here, travel to the
    seeks as JSON in a few more (SQLite has no generate_series of its own, and its
    integers turn into floats on overflow, where Python's stay exact)."""
    bounds = _step_bounds_sqlite(conn, run_pks, key, start_step, end_step)
    seeks: list[list[int]] = []
    for pk in run_pks:
        lo, hi = bounds.get(pk, (None, None))
        if lo is not None:
            seeks.extend([pk, low, high] for low, high in _intervals(lo, hi, max_points))
    rows: list = []
    for i in range(0, len(seeks), _SEEKS_PER_STATEMENT):
        params = (json.dumps(seeks[i : i + _SEEKS_PER_STATEMENT]), key)
        rows.extend(conn.exec_driver_sql(_SEEKS_SQLITE, params).fetchall())
    return rows


# The seeks travel as one JSON document, so the statement text never changes (the
# driver reuses its prepared form); thousands of separate parameters cost more than
# the seeks. No LATERAL in SQLite: it runs the correlated subquery once per seek,
# then a rowid lookup. No ORDER BY: sorting 10,000 rows in SQLite's temporary B-tree
# cost more than sorting each run's rows here.
_SEEKS_SQLITE = (
    "SELECT s.run_id, m.id, m.step, m.timestamp, m.value, m.is_nan FROM (SELECT json_extract(j.value, '$[0]') AS run_id,"
    " json_extract(j.value, '$[1]') AS low, json_extract(j.value, '$[2]') AS high FROM json_each(?) AS j) AS s"
    f" JOIN {_TABLE} m ON m.id = (SELECT m2.id FROM {_TABLE} m2 WHERE m2.run_id = s.run_id AND m2.key = ?"
    " AND m2.step >= s.low AND m2.step <= s.high ORDER BY m2.step DESC, m2.timestamp DESC, m2.id DESC LIMIT 1)"
)


def _step_conditions(mark: str, start_step: Optional[int], end_step: Optional[int]) -> tuple[str, list]:
    cond, params = "", []
    if start_step is not None:
        cond += f" AND m.step >= {mark}"
        params.append(start_step)
    if end_step is not None:
        cond += f" AND m.step <= {mark}"
        params.append(end_step)
    return cond, params


def _step_bounds_sqlite(
    conn, run_pks: Sequence[int], key: str, start_step: Optional[int], end_step: Optional[int]
) -> dict[int, tuple[Optional[int], Optional[int]]]:
    """(lowest, highest) step of ``key`` within [start, end] for each run: a lone
    MIN() and a lone MAX() per run, each one index seek (SQLite scans when it is
    asked for both in one aggregate). PostgreSQL does the same inside _SAMPLE_PG."""
    cond, cond_params = _step_conditions("?", start_step, end_step)
    where = f"FROM {_TABLE} m WHERE m.run_id = r.run_id AND m.key = ?{cond}"
    # The run ids travel as one JSON document (see _SEEKS_SQLITE).
    sql = (f"SELECT r.run_id, (SELECT MIN(m.step) {where}), (SELECT MAX(m.step) {where})"
           " FROM (SELECT j.value AS run_id FROM json_each(?) AS j) AS r")
    params = (key, *cond_params, key, *cond_params, json.dumps([int(pk) for pk in run_pks]))
    return {int(pk): (None, None) if lo is None else (int(lo), int(hi))
            for pk, lo, hi in conn.exec_driver_sql(sql, params).fetchall()}


# --------------------------------------------------------------------------- PostgreSQL
def _sampled_rows_pg(conn, run_pks, key, start_step, end_step, max_points) -> list:
    """Bounds, intervals and seeks in one statement (sending 10,000 intervals as
    arrays cost more to encode than the seeks)."""
    cond = ""
    params = {"key": key, "runs": run_pks, "div": max(max_points - 1, 1)}
    if start_step is not None:
        cond += " AND m.step >= %(start)s"
        params["start"] = start_step
    if end_step is not None:
        cond += " AND m.step <= %(end)s"
        params["end"] = end_step
    without_jit(conn)
    return conn.exec_driver_sql(_SAMPLE_PG.format(cond=cond), params).fetchall()


# _intervals() in SQL. t_i in bigint arithmetic when span * (max_points - 1) fits in
# a bigint (any real history), else in numeric (steps near the int64 limits); numeric
# for every interval cost more than the 10,000 seeks' own time. Both CTEs over the
# runs are materialised: inlined, their subqueries and numeric expressions ran again
# for every interval. The divisor is cast to bigint so that "/" divides integers
# whatever type the driver gives the parameter. Each interval is one backward index-only seek (all ORDER BY
# columns descending: the index read backwards, no sort).
_SAMPLE_PG = (
    "WITH b AS MATERIALIZED (SELECT r.run_id,"
    f" (SELECT MIN(m.step) FROM {_TABLE} m WHERE m.run_id = r.run_id AND m.key = %(key)s{{cond}}) AS lo,"
    f" (SELECT MAX(m.step) FROM {_TABLE} m WHERE m.run_id = r.run_id AND m.key = %(key)s{{cond}}) AS hi"
    " FROM unnest(%(runs)s::bigint[]) AS r(run_id)),"
    " r AS MATERIALIZED (SELECT run_id, lo, hi, hi::numeric - lo::numeric AS span,"
    " CASE WHEN (hi::numeric - lo::numeric) * %(div)s::bigint <= 9223372036854775807 THEN hi - lo END AS exact"
    " FROM b WHERE lo IS NOT NULL),"
    " t AS (SELECT r.run_id,"
    " CASE WHEN r.exact IS NOT NULL THEN r.lo + r.exact * i / %(div)s::bigint"
    " ELSE (r.lo::numeric + div(r.span * i, %(div)s::bigint))::bigint END AS target,"
    " CASE WHEN i = 0 THEN r.lo WHEN r.exact IS NOT NULL THEN r.lo + r.exact * (i - 1) / %(div)s::bigint + 1"
    " ELSE (r.lo::numeric + div(r.span * (i - 1), %(div)s::bigint) + 1)::bigint END AS low"
    " FROM r CROSS JOIN LATERAL generate_series(0, CASE WHEN r.hi = r.lo THEN 0 ELSE %(div)s::bigint END) AS i)"
    " SELECT t.run_id, m.id, m.step, m.timestamp, m.value, m.is_nan FROM t"
    f" CROSS JOIN LATERAL (SELECT m2.id, m2.step, m2.timestamp, m2.value, m2.is_nan FROM {_TABLE} m2"
    " WHERE m2.run_id = t.run_id AND m2.key = %(key)s AND m2.step >= t.low AND m2.step <= t.target"
    " ORDER BY m2.step DESC, m2.timestamp DESC, m2.id DESC LIMIT 1) AS m"
    " WHERE t.low <= t.target"
)
