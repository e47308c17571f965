"""Metric history: paged and streamed (sampled for charts: ``metric_sampling``).
Never loads a whole history into memory: every read walks the (run, key, step,
timestamp, id) index with keyset conditions."""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Metric, Run
from ..search.tokens import decode_token, encode_token
from . import validation as v
from .metric_buckets import mlflow_sampled_rows

MAX_HISTORY_PAGE = 25_000
STREAM_CHUNK = 20_000  # rows per query when streaming a whole history (~2 MB of rows)
MAX_BULK_RUNS = 100
MAX_BULK_POINTS = 2_500
# History pages are keyset pages but not read through ``search.keyset.Pager``: they run
# driver-level SQL (see _history_rows), so only their tokens come from the shared codec.
TOKEN_KIND = "metric-history"

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
    sampled = mlflow_sampled_rows(session, [run.id for run in runs], key, start, end, limit)
    return [(run, row[1:]) for run in runs for row in sampled[run.id]]
