"""Metric history: paged, streamed, and sampled for charts. Never loads a
whole history into memory: every read walks the (run, key, step, timestamp,
id) index with keyset conditions."""
from __future__ import annotations

import json
from typing import Any, Iterator, NamedTuple, Optional, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Metric, Run
from . import validation as v
from .tokens import decode_token, encode_token

MAX_HISTORY_PAGE = 25_000
STREAM_CHUNK = 5_000
MAX_BULK_RUNS = 100
MAX_BULK_POINTS = 2_500

_COLUMNS = (Metric.id, Metric.step, Metric.timestamp, Metric.value, Metric.is_nan)


class _Point(NamedTuple):
    """A sampled history row: the same fields, in the same order, as a ``_COLUMNS`` row."""

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


def _history_rows(session: Session, run_pk: int, key: str, cursor: Optional[list], limit: int) -> list[_Point]:
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
        raw = result.cursor.fetchall()
    finally:
        result.close()
    return [_Point(pk, step, ts, value, bool(is_nan)) for pk, step, ts, value, is_nan in raw]


def history_page(
    session: Session, run: Run, key: str, max_results: Any = None, page_token: Optional[str] = None
) -> tuple[list[tuple], Optional[str]]:
    """One page of (id, step, timestamp, value, is_nan) rows and the next token."""
    limit = v.parse_int(max_results, "max_results", default=MAX_HISTORY_PAGE)
    if limit is None or limit < 1 or limit > MAX_HISTORY_PAGE:
        raise InvalidParameter(f"max_results must be between 1 and {MAX_HISTORY_PAGE}.")
    cursor = decode_token(page_token)
    if cursor is not None and not (
        isinstance(cursor, list) and len(cursor) == 3 and all(type(x) is int and -(2**63) <= x < 2**63 for x in cursor)
    ):  # our tokens hold three 64-bit integers (step, timestamp, id); anything else is forged
        raise InvalidParameter("Invalid page token.")
    rows = _history_rows(session, run.id, key, cursor, limit + 1)
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        token = encode_token([last.step, last.timestamp, last.id])
    return rows, token


def iter_history(session: Session, run_pk: int, key: str) -> Iterator[tuple]:
    """Every point, in bounded chunks (for old clients that do not page)."""
    for rows in iter_history_chunks(session, run_pk, key):
        yield from rows


def iter_history_chunks(session: Session, run_pk: int, key: str) -> Iterator[list]:
    """Every point, as lists of at most ``STREAM_CHUNK`` rows."""
    cursor = None
    while True:
        rows = _history_rows(session, run_pk, key, cursor, STREAM_CHUNK)
        yield rows
        if len(rows) < STREAM_CHUNK:
            return
        last = rows[-1]
        cursor = [last.step, last.timestamp, last.id]


def sample_steps(session: Session, run_pk: int, key: str, start_step: Optional[int], end_step: Optional[int], max_points: int) -> list[tuple]:
    """About ``max_points`` points spread evenly over the step range, always
    including the first and last step: one index seek per point, so the cost
    does not grow with the history's length."""
    return sample_steps_many(session, [run_pk], key, start_step, end_step, max_points)[run_pk]


# Seeks (run, target step, highest step) per statement; 100 runs x 2,500 points fit in 25.
_SEEKS_PER_STATEMENT = 10_000


def sample_steps_many(
    session: Session, run_pks: Sequence[int], key: str, start_step: Optional[int], end_step: Optional[int],
    max_points: int,
) -> dict[int, list[tuple]]:
    """``sample_steps`` for many runs at once, in a handful of statements whatever
    the number of runs: the bounds of every run in one, the seeks of every run in
    a few (each seek an index seek on (run, key, step) returning its row)."""
    run_pks = list(dict.fromkeys(run_pks))
    result: dict[int, list[tuple]] = {pk: [] for pk in run_pks}
    if not run_pks:
        return result
    bounds = _step_bounds(session, run_pks, key, start_step, end_step)
    seeks: list[tuple[int, int, int]] = []
    for pk in run_pks:
        lo, hi = bounds.get(pk, (None, None))
        if lo is None:
            continue
        if hi - lo + 1 <= max_points:
            query = (
                select(*_COLUMNS)
                .where(Metric.run_id == pk, Metric.key == key, Metric.step >= lo, Metric.step <= hi)
                .order_by(Metric.step, Metric.timestamp, Metric.id)
                .limit(max_points * 4)
            )
            result[pk] = _one_per_step(session.execute(query).all())
            continue
        span = hi - lo
        for target in sorted({lo + (span * i) // (max_points - 1) for i in range(max_points)}):
            seeks.append((pk, target, hi))
    if not seeks:
        return result
    sampled: dict[int, dict[int, _Point]] = {}  # run -> {row id: point}
    conn = session.connection()
    for i in range(0, len(seeks), _SEEKS_PER_STATEMENT):
        chunk = seeks[i : i + _SEEKS_PER_STATEMENT]
        sql, params = _seek_statement(conn.dialect.name, chunk, key)
        for pk, metric_pk, step, timestamp, value, is_nan in conn.exec_driver_sql(sql, params).fetchall():
            points = sampled.setdefault(pk, {})
            if metric_pk not in points:
                points[metric_pk] = _Point(metric_pk, step, timestamp, value, bool(is_nan))
    for pk, points in sampled.items():
        result[pk] = _one_per_step(sorted(points.values(), key=_point_order))
    return result


# For each seek (run, target step, highest step): the last row logged at the first
# step at or after the target, as the chart shows it; one index seek on (run, key,
# step) each. The seeks travel as one array (PostgreSQL) or one JSON document
# (SQLite), so the statement text never changes: the drivers reuse its prepared
# form, where literal VALUES lists made a new statement (and cache entry) per call,
# and thousands of separate parameters cost more than the seeks.
_SEEK = (
    f" FROM {_TABLE} m2 WHERE m2.run_id = s.run_id AND m2.key = {{mark}}"
    " AND m2.step >= s.target AND m2.step <= s.hi ORDER BY m2.step, m2.timestamp DESC, m2.id DESC LIMIT 1"
)
# PostgreSQL seeks in two steps, each in the index's own order: the first step at or
# after the target (ORDER BY step), then that step's last row (ORDER BY timestamp DESC,
# id DESC: a backward scan). With the mixed-direction ORDER BY of _SEEK in one step, it
# read and sorted every row from the target to the end of the history for each seek
# (110 ms per seek on a 250,000-point history; 0.1 ms in two steps).
_SEEKS_PG = (
    "SELECT s.run_id, m.id, m.step, m.timestamp, m.value, m.is_nan"
    " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS s(run_id, target, hi)"
    # LATERAL: one seek per row (a join on a correlated subquery is planned as a hash join).
    f" CROSS JOIN LATERAL (SELECT m1.step FROM {_TABLE} m1 WHERE m1.run_id = s.run_id AND m1.key = %s"
    " AND m1.step >= s.target AND m1.step <= s.hi ORDER BY m1.step LIMIT 1) AS f"
    " CROSS JOIN LATERAL (SELECT m2.id, m2.step, m2.timestamp, m2.value, m2.is_nan"
    f" FROM {_TABLE} m2 WHERE m2.run_id = s.run_id AND m2.key = %s AND m2.step = f.step"
    " ORDER BY m2.timestamp DESC, m2.id DESC LIMIT 1) AS m"
)
_SEEKS_SQLITE = (
    "SELECT s.run_id, m.id, m.step, m.timestamp, m.value, m.is_nan FROM (SELECT json_extract(j.value, '$[0]') AS run_id,"
    " json_extract(j.value, '$[1]') AS target, json_extract(j.value, '$[2]') AS hi FROM json_each(?) AS j) AS s"
    # No LATERAL in SQLite: it runs the correlated subquery once per row, then a rowid lookup.
    f" JOIN {_TABLE} m ON m.id = (SELECT m2.id" + _SEEK.format(mark="?") + ")"
)


def _seek_statement(dialect: str, seeks: Sequence[tuple[int, int, int]], key: str) -> tuple[str, tuple]:
    if dialect == "postgresql":
        runs, targets, his = (list(column) for column in zip(*seeks))
        return _SEEKS_PG, (runs, targets, his, key, key)
    return _SEEKS_SQLITE, (json.dumps([list(seek) for seek in seeks]), key)


def _point_order(point: "_Point") -> tuple:
    return (point[1], point[2], point[0])  # step, timestamp, id


def _step_bounds(
    session: Session, run_pks: Sequence[int], key: str, start_step: Optional[int], end_step: Optional[int]
) -> dict[int, tuple[Optional[int], Optional[int]]]:
    """(lowest, highest) step of ``key`` within [start, end] for each run: a lone
    MIN() and a lone MAX() per run, each one index seek (SQLite scans when it is
    asked for both in one aggregate)."""
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    cond, cond_params = "", []
    if start_step is not None:
        cond += f" AND m.step >= {mark}"
        cond_params.append(start_step)
    if end_step is not None:
        cond += f" AND m.step <= {mark}"
        cond_params.append(end_step)
    where = f"FROM {_TABLE} m WHERE m.run_id = r.run_id AND m.key = {mark}{cond}"
    # The run ids travel as one array / JSON document (see _SEEK).
    runs = "unnest(%s::bigint[]) AS r(run_id)" if pg else "(SELECT j.value AS run_id FROM json_each(?) AS j) AS r"
    sql = f"SELECT r.run_id, (SELECT MIN(m.step) {where}), (SELECT MAX(m.step) {where}) FROM {runs}"
    bounds: dict[int, tuple[Optional[int], Optional[int]]] = {}
    for i in range(0, len(run_pks), _SEEKS_PER_STATEMENT):
        chunk = [int(pk) for pk in run_pks[i : i + _SEEKS_PER_STATEMENT]]
        params = (key, *cond_params, key, *cond_params, chunk if pg else json.dumps(chunk))
        for pk, lo, hi in conn.exec_driver_sql(sql, params).fetchall():
            bounds[int(pk)] = (None, None) if lo is None else (int(lo), int(hi))
    return bounds


def _one_per_step(rows: Sequence) -> list:
    """The chart shows one value per step: the last one logged at that step."""
    result = []
    for row in rows:
        if result and result[-1].step == row.step:
            result[-1] = row
        else:
            result.append(row)
    return result


def bulk_interval(
    session: Session, runs: Sequence[Run], key: str, start_step: Any, end_step: Any, max_results: Any
) -> list[tuple[Run, tuple]]:
    if len(runs) > MAX_BULK_RUNS:
        raise InvalidParameter(f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids.")
    limit = v.parse_int(max_results, "max_results", default=MAX_BULK_POINTS)
    if limit is None or not 1 <= limit <= MAX_BULK_POINTS:
        raise InvalidParameter(f"max_results must be between 1 and {MAX_BULK_POINTS}.")
    start = v.parse_int(start_step, "start_step")
    end = v.parse_int(end_step, "end_step")
    if start is not None and end is not None and start > end:
        raise InvalidParameter("end_step must be greater than start_step.")
    sampled = sample_steps_many(session, [run.id for run in runs], key, start, end, max(2, limit))
    return [(run, row) for run in runs for row in sampled[run.id]]
