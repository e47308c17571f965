"""Metric history: paged, streamed, and sampled for charts. Never loads a
whole history into memory: every read walks the (run, key, step, timestamp,
id) index with keyset conditions."""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

from sqlalchemy import and_, func, literal, or_, select, union_all
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


def _after(cursor: Optional[list]) -> Any:
    if not cursor:
        return literal(True)
    step, timestamp, pk = cursor
    return or_(
        Metric.step > step,
        and_(Metric.step == step, Metric.timestamp > timestamp),
        and_(Metric.step == step, Metric.timestamp == timestamp, Metric.id > pk),
    )


def _query(run_pk: int, key: str, cursor: Optional[list], limit: int):
    return (
        select(*_COLUMNS)
        .where(Metric.run_id == run_pk, Metric.key == key, _after(cursor))
        .order_by(Metric.step, Metric.timestamp, Metric.id)
        .limit(limit)
    )


def history_page(
    session: Session, run: Run, key: str, max_results: Any = None, page_token: Optional[str] = None
) -> tuple[list[tuple], Optional[str]]:
    """One page of (id, step, timestamp, value, is_nan) rows and the next token."""
    limit = v.parse_int(max_results, "max_results", default=MAX_HISTORY_PAGE)
    if limit is None or limit < 1 or limit > MAX_HISTORY_PAGE:
        raise InvalidParameter(f"max_results must be between 1 and {MAX_HISTORY_PAGE}.")
    cursor = decode_token(page_token)
    if cursor is not None and not (isinstance(cursor, list) and len(cursor) == 3):
        raise InvalidParameter("Invalid page token.")
    rows = session.execute(_query(run.id, key, cursor, limit + 1)).all()
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        token = encode_token([last.step, last.timestamp, last.id])
    return rows, token


def iter_history(session: Session, run_pk: int, key: str) -> Iterator[tuple]:
    """Every point, in bounded chunks (for old clients that do not page)."""
    cursor = None
    while True:
        rows = session.execute(_query(run_pk, key, cursor, STREAM_CHUNK)).all()
        yield from rows
        if len(rows) < STREAM_CHUNK:
            return
        last = rows[-1]
        cursor = [last.step, last.timestamp, last.id]


def sample_steps(session: Session, run_pk: int, key: str, start_step: Optional[int], end_step: Optional[int], max_points: int) -> list[tuple]:
    """About ``max_points`` points spread evenly over the step range, always
    including the first and last step: one index seek per point, so the cost
    does not grow with the history's length."""
    bounds = select(func.min(Metric.step), func.max(Metric.step)).where(Metric.run_id == run_pk, Metric.key == key)
    if start_step is not None:
        bounds = bounds.where(Metric.step >= start_step)
    if end_step is not None:
        bounds = bounds.where(Metric.step <= end_step)
    lo, hi = session.execute(bounds).one()
    if lo is None:
        return []
    if hi - lo + 1 <= max_points:
        targets = None
    else:
        span = hi - lo
        targets = sorted({lo + (span * i) // (max_points - 1) for i in range(max_points)})
    if targets is None:
        query = (
            select(*_COLUMNS)
            .where(Metric.run_id == run_pk, Metric.key == key, Metric.step >= lo, Metric.step <= hi)
            .order_by(Metric.step, Metric.timestamp, Metric.id)
            .limit(max_points * 4)
        )
        return _one_per_step(session.execute(query).all())
    seeks = []
    for target in targets:
        seeks.append(
            select(*_COLUMNS)
            .where(Metric.run_id == run_pk, Metric.key == key, Metric.step >= target, Metric.step <= hi)
            .order_by(Metric.step, Metric.timestamp.desc(), Metric.id.desc())
            .limit(1)
            .subquery()
            .select()
        )
    rows = []
    # Keep each UNION small: SQLite limits compound SELECTs to 500 terms.
    for i in range(0, len(seeks), 400):
        rows.extend(session.execute(union_all(*seeks[i : i + 400])).all())
    rows.sort(key=lambda r: (r.step, r.timestamp, r.id))
    return _one_per_step(rows)


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
    out = []
    for run in runs:
        for row in sample_steps(session, run.id, key, start, end, max(2, limit)):
            out.append((run, row))
    return out
