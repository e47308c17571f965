"""Metric points as MLflow's client sends them, parsed and written: appended to the
run's history and kept as the run's latest value per key (``LatestMetric``). The
hot path of logging (``log_metric``, ``log_batch``): statements are built once, and
points go to the database with as few round trips as it allows.

A point identical to a stored one (run, key, timestamp, step, value; NaN equal to
NaN) is not stored again, as in MLflow where that is the primary key: a client that
resends a call whose answer it lost (a worker killed after the commit) stores
nothing twice. The unique index ``ux_glml_metrics_point`` decides; every insert
here is ``ON CONFLICT DO NOTHING``."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import ACTIVE, LatestMetric, Metric, Run
from . import validation as v
from .statement_cache import cached_statement


@dataclass(frozen=True)
class MetricIn:
    key: str
    value: float
    timestamp: int
    step: int


def parse_metric(raw: dict, path: str = "") -> MetricIn:
    """A metric as the request schema (``LogMetric``, ``LogBatch``'s ``MetricIn``)
    loaded it: ``key`` a string, ``value`` a float, ``timestamp`` and ``step``
    ints, each possibly absent. What is left are MLflow's rules: the key's
    characters and length, and the value and timestamp a batch item must have
    (MLflow's ``Metric`` message does not mark them required, its server checks).
    ``path``: where the item is in the request (``metrics[3].``), for MLflow's wording."""
    key = v.validate_key("Metric", raw.get("key"))
    for field in ("value", "timestamp"):
        if raw.get(field) is None:
            raise InvalidParameter(f"Missing value for required parameter '{path}{field}'. "
                                   "See the API docs for more information about request parameters.")
    value, timestamp = raw.get("value"), raw.get("timestamp")
    step = raw.get("step")
    return MetricIn(key, value, timestamp, 0 if step is None else step)


def parse_metrics(raws: Sequence[dict]) -> list[MetricIn]:
    """``parse_metric`` over a batch, each distinct key validated once (the client
    repeats keys across steps). Items missing a value or timestamp, or with a key
    not seen yet, go through ``parse_metric``, so the rules and errors are the same."""
    valid_keys: set[str] = set()
    parsed = []
    for raw in raws:
        key, value, ts, step = raw.get("key"), raw.get("value"), raw.get("timestamp"), raw.get("step")
        if key in valid_keys and value is not None and ts is not None:
            parsed.append(MetricIn(key, value, ts, 0 if step is None else step))
            continue
        metric = parse_metric(raw, f"metrics[{len(parsed)}].")
        valid_keys.add(metric.key)
        parsed.append(metric)
    return parsed


def _metric_values(m: MetricIn) -> dict:
    """A point's column values (NaN is stored as NULL with is_nan set)."""
    nan = math.isnan(m.value)
    return {"key": m.key, "value": None if nan else m.value, "is_nan": nan, "timestamp": m.timestamp, "step": m.step}


def _metric_rows(run_pk: int, metrics: Sequence[MetricIn]) -> list[dict]:
    return [{"run_id": run_pk, **_metric_values(m)} for m in metrics]


def _sort_key(m: MetricIn) -> tuple:
    # MLflow's "latest": highest step, then timestamp, then value; NaN loses ties.
    return (m.step, m.timestamp, -math.inf if math.isnan(m.value) else m.value)


_METRIC_COLUMNS = ("run_id", "key", "value", "is_nan", "timestamp", "step")
# From this many points, PostgreSQL gets them by COPY (a tenth of the client CPU of an
# INSERT, and twice as fast as INSERT ... ON CONFLICT with the unique index).
_COPY_FROM_ROWS = 50
# Otherwise, and when COPY meets a point already stored (COPY cannot skip it), one
# INSERT from one array per column, skipping what is there.
_PG_UNNEST_TYPES = ("text", "float8", "bool", "int8", "int8")


def _point_rows(run_pk: int, metrics: Sequence[MetricIn]) -> list[tuple]:
    rows = []
    for m in metrics:
        nan = m.value != m.value
        rows.append((run_pk, m.key, None if nan else m.value, nan, m.timestamp, m.step))
    return rows


def _copy_points(conn: Any, rows: list[tuple]) -> bool:
    """COPY the rows inside a savepoint; False (and nothing written) when one of them
    is already stored: a resent batch."""
    from psycopg.errors import UniqueViolation

    columns = ", ".join(_METRIC_COLUMNS)
    try:
        with conn.begin_nested():
            with conn.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY {Metric.__tablename__} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
    except UniqueViolation:
        return False
    return True


def _insert_points_pg(conn: Any, rows: list[tuple]) -> None:
    columns = ", ".join(_METRIC_COLUMNS)
    arrays = ", ".join(f"%s::{t}[]" for t in _PG_UNNEST_TYPES)
    run_pk = rows[0][0]
    conn.exec_driver_sql(
        f"INSERT INTO {Metric.__tablename__} ({columns}) SELECT %s::int8, * FROM unnest({arrays}) "
        "ON CONFLICT DO NOTHING",
        (run_pk, *([row[i] for row in rows] for i in range(1, len(_METRIC_COLUMNS)))),
    )


def _write_metric_points(session: Session, run_pk: int, metrics: Sequence[MetricIn]) -> None:
    """Append the points to the history, straight through the driver: the
    history is append-only and SQLAlchemy's per-row parameter handling cost
    more than the insert itself. Same transaction as the rest of the request.
    Points already stored (a resent call) are skipped."""
    rows = _point_rows(run_pk, metrics)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        if len(rows) < _COPY_FROM_ROWS or not _copy_points(conn, rows):
            _insert_points_pg(conn, rows)
        return
    columns = ", ".join(_METRIC_COLUMNS)
    marks = ", ".join(["?"] * len(_METRIC_COLUMNS))
    conn.exec_driver_sql(
        f"INSERT INTO {Metric.__tablename__} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", rows)


def insert_metrics(session: Session, run_pk: int, metrics: Sequence[MetricIn]) -> None:
    if not metrics:
        return
    _write_metric_points(session, run_pk, metrics)
    best: dict[str, tuple[tuple, MetricIn]] = {}
    for m in metrics:
        rank = _sort_key(m)
        current = best.get(m.key)
        if current is None or rank > current[0]:
            best[m.key] = (rank, m)
    _upsert_latest(session, run_pk, [m for _rank, m in best.values()])


def _latest_upsert(insert) -> Any:
    return _keeping_the_latest(insert(LatestMetric.__table__))


def _keeping_the_latest(stmt) -> Any:
    """``stmt`` (an INSERT into the latest-metrics table) made an upsert that keeps
    MLflow's "latest" value per (run, key): see ``_sort_key``."""
    cur = LatestMetric.__table__.c
    new = stmt.excluded
    newer = or_(
        new.step > cur.step,
        and_(new.step == cur.step, new.timestamp > cur.timestamp),
        and_(new.step == cur.step, new.timestamp == cur.timestamp, cur.is_nan.is_(True), new.is_nan.is_(False)),
        and_(new.step == cur.step, new.timestamp == cur.timestamp, new.value > cur.value),
    )
    return stmt.on_conflict_do_update(
        index_elements=[cur.run_id, cur.key],
        set_={"value": new.value, "is_nan": new.is_nan, "timestamp": new.timestamp, "step": new.step},
        where=newer,
    )


def _point_params(project_id: str, run_uuid: str, m: MetricIn) -> dict:
    return {"run_uuid": run_uuid, "project_id": project_id, **_metric_values(m)}


def _point_select(run_pk: Any) -> Any:
    """SELECT run_pk, :key, :value, :is_nan, :timestamp, :step, typed like the columns
    (an untyped NULL in a select list would be text to PostgreSQL)."""
    cols = Metric.__table__.c
    return select(run_pk, *(bindparam(name, type_=cols[name].type) for name in _METRIC_COLUMNS[1:]))


def _append_point_pg(insert) -> Any:
    """One statement, one round trip: find the run (only if active), append the point,
    upsert the latest value. Returns the run's primary key, or no row when the run is
    missing or not active (then nothing was written)."""
    runs = Run.__table__.c
    run = (
        select(runs.id)
        .where(runs.run_uuid == bindparam("run_uuid"), runs.project_id == bindparam("project_id"),
               runs.lifecycle_stage == ACTIVE)
        .cte("run")
    )
    point = (
        insert(Metric.__table__)
        .from_select(_METRIC_COLUMNS, _point_select(run.c.id))
        .on_conflict_do_nothing()
        .cte("point")
    )
    # A data-modifying CTE runs whether or not the main query reads it.
    latest = _keeping_the_latest(
        insert(LatestMetric.__table__).from_select(_METRIC_COLUMNS, _point_select(run.c.id))
    ).cte("latest")
    # The run's key, not the inserted row's: a resent point inserts nothing and is fine.
    return select(run.c.id).add_cte(point, latest)


def _append_point_sqlite(insert) -> Any:
    """The point, inserted only if its run is active and it is not stored yet;
    RETURNING gives the run's key (SQLite has no data-modifying CTEs: the latest value
    is a second statement). No row: no active run, or a resent point (the caller
    tells them apart the long way, which a resend can afford)."""
    runs = Run.__table__.c
    active_run = _point_select(runs.id).where(
        runs.run_uuid == bindparam("run_uuid"), runs.project_id == bindparam("project_id"), runs.lifecycle_stage == ACTIVE
    )
    stmt = insert(Metric.__table__).from_select(_METRIC_COLUMNS, active_run).on_conflict_do_nothing()
    return stmt.returning(Metric.__table__.c.run_id)


def append_point_if_active(session: Session, project_id: str, run_uuid: str, metric: MetricIn) -> bool:
    """``log_metric``'s whole write in as few statements as the database allows (one
    on PostgreSQL, two on SQLite), instead of a run lookup, an insert and an upsert.
    False (and nothing written) when the run is missing or not active."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        stmt = cached_statement(session, "append_point", _append_point_pg)
        return conn.execute(stmt, _point_params(project_id, run_uuid, metric)).first() is not None
    row = conn.execute(cached_statement(session, "append_point", _append_point_sqlite),
                       _point_params(project_id, run_uuid, metric)).first()
    if row is None:
        return False
    _upsert_latest(session, row[0], [metric])
    return True


def _upsert_latest(session: Session, run_pk: int, metrics: list[MetricIn]) -> None:
    # On the connection: a Core statement on one table needs none of the ORM's
    # execution path (nothing pending in the session touches this table).
    session.connection().execute(cached_statement(session, "latest_upsert", _latest_upsert), _metric_rows(run_pk, metrics))
