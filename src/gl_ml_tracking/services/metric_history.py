"""Metric history: paged, streamed, and sampled for charts. Never loads a
whole history into memory: every read walks the (run, key, step, timestamp,
id) index with keyset conditions."""
from __future__ import annotations

import json
from typing import Any, Iterator, NamedTuple, Optional, Sequence

from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Metric, Run
from ..search.tokens import decode_token, encode_token
from . import validation as v
from .common import without_jit

MAX_HISTORY_PAGE = 25_000
STREAM_CHUNK = 20_000  # rows per query when streaming a whole history (~2 MB of rows)
MAX_BULK_RUNS = 100
MAX_BULK_POINTS = 2_500
# History pages are keyset pages but not read through ``search.keyset.Pager``: they run
# driver-level SQL (see _history_rows), so only their tokens come from the shared codec.
TOKEN_KIND = "metric-history"

class _Point(NamedTuple):
    """A history row: (id, step, timestamp, value, is_nan), the history queries' columns."""

    id: int
    step: int
    timestamp: int
    value: Optional[float]
    is_nan: bool


_TABLE = Metric.__tablename__


def _history_sql(dialect: str, with_cursor: bool) -> str:
    """A page of the history in (step, timestamp, id) order, after the cursor."""
    mark = "%s" if dialect == "postgresql" else "?"
    sql = f"SELECT id, step, timestamp, value, is_nan FROM {_TABLE} WHERE run_id = {mark} AND key = {mark}"
    if with_cursor:
        # The leading "step >= cursor step" lets both databases start the index range
        # scan at the cursor; with the OR alone they scan the run's history from its
        # first point on every page (quadratic over a long history).
        sql += f" AND step >= {mark} AND (step > {mark} OR timestamp > {mark} OR (timestamp = {mark} AND id > {mark}))"
    return sql + f" ORDER BY step, timestamp, id LIMIT {mark}"


def _history_rows(session: Session, run_pk: int, key: str, cursor: Optional[list], limit: int) -> list[tuple]:
    """Rows straight from the driver: building SQLAlchemy rows cost more than the
    query for a 25,000-point page."""
    conn = session.connection()
    params: list[Any] = [run_pk, key]
    if cursor:
        step, timestamp, pk = cursor
        params += [step, step, timestamp, timestamp, pk]
    params.append(limit)
    result = conn.exec_driver_sql(_history_sql(conn.dialect.name, bool(cursor)), tuple(params))
    try:
        # The driver's rows as they come (is_nan may be 0/1): a million points are
        # read per call, and a named tuple per row cost a tenth of the time.
        return result.cursor.fetchall()
    finally:
        result.close()


def history_page(
    session: Session, run: Run, key: str, max_results: Any = None, page_token: Optional[str] = None
) -> tuple[list[tuple], Optional[str]]:
    """One page of (id, step, timestamp, value, is_nan) rows and the next token."""
    limit = v.parse_int(max_results, "max_results", default=MAX_HISTORY_PAGE)
    if limit is None or limit < 1 or limit > MAX_HISTORY_PAGE:
        raise InvalidParameter(f"max_results must be between 1 and {MAX_HISTORY_PAGE}.")
    cursor = decode_token(page_token, TOKEN_KIND) if page_token else None
    if cursor is not None and not (
        isinstance(cursor, list) and len(cursor) == 3 and all(type(x) is int and -(2**63) <= x < 2**63 for x in cursor)
    ):  # our tokens hold three 64-bit integers (step, timestamp, id); anything else is forged
        raise InvalidParameter("Invalid page token.")
    rows = _history_rows(session, run.id, key, cursor, limit + 1)
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        token = encode_token(_cursor_after(rows[-1]), TOKEN_KIND)
    return rows, token


def _cursor_after(row: tuple) -> list[int]:
    """The keyset cursor (step, timestamp, id) after a (id, step, timestamp, ...) row."""
    return [row[1], row[2], row[0]]


def iter_history_chunks(session: Session, run_pk: int, key: str) -> Iterator[list]:
    """Every point, as lists of at most ``STREAM_CHUNK`` rows."""
    cursor = None
    while True:
        rows = _history_rows(session, run_pk, key, cursor, STREAM_CHUNK)
        yield rows
        if len(rows) < STREAM_CHUNK:
            return
        cursor = _cursor_after(rows[-1])


def sample_steps(session: Session, run_pk: int, key: str, start_step: Optional[int], end_step: Optional[int], max_points: int) -> list[tuple]:
    """About ``max_points`` points spread evenly over the step range, always
    including the first and last step: one index seek per point, so the cost
    does not grow with the history's length."""
    return sample_steps_many(session, [run_pk], key, start_step, end_step, max_points)[run_pk]


# Seeks per statement (SQLite); 100 runs x 2,500 points fit in 25.
_SEEKS_PER_STATEMENT = 10_000


def sample_steps_many(
    session: Session, run_pks: Sequence[int], key: str, start_step: Optional[int], end_step: Optional[int],
    max_points: int,
) -> dict[int, list[tuple]]:
    """``sample_steps`` for many runs at once, in a handful of statements whatever
    the number of runs.

    A run's step range [lo, hi] is cut at the targets ``t_i = lo + span * i //
    (max_points - 1)`` (i = 0..max_points-1, span = hi - lo) into intervals
    (t_(i-1), t_i]; each interval gives the last point logged at its highest step,
    found by one backward index seek on (run, key, step, timestamp, id). So the
    first and last step are always there, a range of at most ``max_points`` steps
    comes whole, and one step shows the value last logged at it."""
    run_pks = list(dict.fromkeys(int(pk) for pk in run_pks))
    max_points = max(2, max_points)
    result: dict[int, list[tuple]] = {pk: [] for pk in run_pks}
    if not run_pks:
        return result
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = _sampled_rows_pg(conn, run_pks, key, start_step, end_step, max_points)
    else:
        rows = _sampled_rows_sqlite(conn, run_pks, key, start_step, end_step, max_points)
    for pk, metric_pk, step, timestamp, value, is_nan in rows:
        result[pk].append(_Point(metric_pk, step, timestamp, value, bool(is_nan)))
    for points in result.values():
        points.sort(key=_step_of)  # the intervals are disjoint: one point per step
    return result


def _step_of(point: "_Point") -> int:
    return point[1]


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
    seeks as JSON in a few more (SQLite has no generate_series of its own)."""
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
# then a rowid lookup.
_SEEKS_SQLITE = (
    "SELECT s.run_id, m.id, m.step, m.timestamp, m.value, m.is_nan FROM (SELECT json_extract(j.value, '$[0]') AS run_id,"
    " json_extract(j.value, '$[1]') AS low, json_extract(j.value, '$[2]') AS high FROM json_each(?) AS j) AS s"
    f" JOIN {_TABLE} m ON m.id = (SELECT m2.id FROM {_TABLE} m2 WHERE m2.run_id = s.run_id AND m2.key = ?"
    " AND m2.step >= s.low AND m2.step <= s.high ORDER BY m2.step DESC, m2.timestamp DESC, m2.id DESC LIMIT 1)"
)


def _sampled_rows_pg(conn, run_pks, key, start_step, end_step, max_points) -> list:
    """PostgreSQL: bounds, intervals and seeks in one statement (sending 32,000
    intervals as arrays cost more to encode than the seeks)."""
    cond, cond_params = _step_conditions("%s", start_step, end_step)
    divisor = max(max_points - 1, 1)
    params = (key, *cond_params, key, *cond_params, run_pks, divisor, divisor, max_points - 1, key)
    without_jit(conn)
    return conn.exec_driver_sql(_SAMPLE_PG.format(cond=cond), params).fetchall()


# _intervals() in SQL: t_i in exact arithmetic (numeric: span * i may pass bigint),
# the interval (t_(i-1), t_i] kept when not empty. One backward index seek each
# (all ORDER BY columns descending: the index read backwards, no sort).
_SAMPLE_PG = (
    "WITH r AS MATERIALIZED (SELECT r.run_id,"
    f" (SELECT MIN(m.step) FROM {_TABLE} m WHERE m.run_id = r.run_id AND m.key = %s{{cond}}) AS lo,"
    f" (SELECT MAX(m.step) FROM {_TABLE} m WHERE m.run_id = r.run_id AND m.key = %s{{cond}}) AS hi"
    " FROM unnest(%s::bigint[]) AS r(run_id)),"
    " t AS (SELECT r.run_id, i, r.lo::numeric + div((r.hi::numeric - r.lo::numeric) * i, %s) AS target,"
    " CASE WHEN i = 0 THEN r.lo::numeric ELSE r.lo::numeric + div((r.hi::numeric - r.lo::numeric) * (i - 1), %s) + 1 END AS low"
    " FROM r CROSS JOIN LATERAL generate_series(0, CASE WHEN r.hi = r.lo THEN 0 ELSE %s END) AS i"
    " WHERE r.lo IS NOT NULL)"
    " SELECT t.run_id, m.id, m.step, m.timestamp, m.value, m.is_nan FROM t"
    f" CROSS JOIN LATERAL (SELECT m2.id, m2.step, m2.timestamp, m2.value, m2.is_nan FROM {_TABLE} m2"
    " WHERE m2.run_id = t.run_id AND m2.key = %s AND m2.step >= t.low::bigint AND m2.step <= t.target::bigint"
    " ORDER BY m2.step DESC, m2.timestamp DESC, m2.id DESC LIMIT 1) AS m"
    " WHERE t.low <= t.target"
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


def interval_args(start_step: Any, end_step: Any, max_results: Any, n_runs: int) -> tuple:
    """``(start, end, limit)`` of a bulk-interval request, checked as MLflow's handler does,
    before any run is looked up."""
    if n_runs > MAX_BULK_RUNS:
        raise InvalidParameter(f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids. "
                               f"Received {n_runs} run_ids.")
    limit = v.parse_int(max_results, "max_results", default=MAX_BULK_POINTS)
    if limit is None or not 1 <= limit <= MAX_BULK_POINTS:
        raise InvalidParameter(f"max_results must be between 1 and {MAX_BULK_POINTS}.")
    start = v.parse_int(start_step, "start_step")
    end = v.parse_int(end_step, "end_step")
    if (start is None) != (end is None):
        raise InvalidParameter("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and start > end:
        raise InvalidParameter(f"end_step must be greater than start_step. Found start_step={start} and end_step={end}.")
    return start, end, limit


def bulk_interval(
    session: Session, runs: Sequence[Run], key: str, start_step: Any, end_step: Any, max_results: Any
) -> list[tuple[Run, tuple]]:
    start, end, limit = interval_args(start_step, end_step, max_results, len(runs))
    sampled = sample_steps_many(session, [run.id for run in runs], key, start, end, limit)
    return [(run, row) for run in runs for row in sampled[run.id]]
