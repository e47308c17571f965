"""Runs and what is logged to them: params, metrics, tags, datasets."""
from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session, lazyload

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import (
    ACTIVE,
    DELETED,
    Dataset,
    Experiment,
    LatestMetric,
    Metric,
    Param,
    Run,
    RunInput,
    RunTag,
)
from . import validation as v
from .common import dialect_insert, next_iid, now_ms
from .experiments import get_active_experiment
from .names import random_run_name

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
CI_JOB_TAG = "gitlab.CI_JOB_ID"


@dataclass(frozen=True)
class MetricIn:
    key: str
    value: float
    timestamp: int
    step: int


def _parse_status(status: Any) -> str:
    if isinstance(status, int) and 1 <= status <= 5:
        return RUN_STATUSES[status - 1]
    if not isinstance(status, str) or status.upper() not in RUN_STATUSES:
        raise InvalidParameter(f"Invalid value '{status}' for parameter 'status': expected one of {', '.join(RUN_STATUSES)}")
    return status.upper()


def _run_uuid(run_id: Any) -> str:
    text = v.require_str(run_id, "run_id", max_length=64).strip().lower()
    return text


# -- lookups ---------------------------------------------------------------------
# Built once: every logging call looks its run up, and building the statement
# cost about as much as running it.
_RUN_BY_UUID = select(Run).where(Run.run_uuid == bindparam("run_uuid"), Run.project_id == bindparam("project_id"))
_RUN_BY_UUID_LEAN = _RUN_BY_UUID.options(lazyload(Run.experiment))


def get_run(session: Session, project_id: str, run_id: Any, *, with_experiment: bool = True) -> Run:
    """``with_experiment=False`` skips the joined experiment (and its tags), which
    writes do not need; ``run.experiment`` still loads if something asks for it."""
    run_uuid = _run_uuid(run_id)
    stmt = _RUN_BY_UUID if with_experiment else _RUN_BY_UUID_LEAN
    run = session.scalars(stmt, {"run_uuid": run_uuid, "project_id": project_id}).one_or_none()
    if run is None:
        raise ResourceDoesNotExist(f"Run with id={run_uuid} not found")
    return run


def get_runs(session: Session, project_id: str, run_ids: Sequence[Any]) -> list[Run]:
    """``[get_run(...) for each id]`` (same order, same errors, raised for the first
    failing id) in one query; the runs come without their experiment."""
    wanted: list[Any] = []
    for run_id in run_ids:
        try:
            wanted.append(_run_uuid(run_id))
        except InvalidParameter as exc:
            wanted.append(exc)
    uuids = [w for w in wanted if isinstance(w, str)]
    found = {}
    if uuids:
        stmt = (
            select(Run)
            .where(Run.project_id == project_id, Run.run_uuid.in_(list(dict.fromkeys(uuids))))
            .options(lazyload(Run.experiment))
        )
        found = {run.run_uuid: run for run in session.scalars(stmt)}
    runs = []
    for w in wanted:
        if isinstance(w, Exception):
            raise w
        if w not in found:
            raise ResourceDoesNotExist(f"Run with id={w} not found")
        runs.append(found[w])
    return runs


# The run's primary key and stage, as plain columns: log_metric needs no more.
_RUN_PK_BY_UUID = select(Run.id, Run.lifecycle_stage).where(
    Run.run_uuid == bindparam("run_uuid"), Run.project_id == bindparam("project_id")
)


def get_active_run_pk(session: Session, project_id: str, run_id: Any) -> int:
    """``get_active_run(...).id`` (same errors) without building the ORM object."""
    run_uuid = _run_uuid(run_id)
    row = session.connection().execute(_RUN_PK_BY_UUID, {"run_uuid": run_uuid, "project_id": project_id}).first()
    if row is None:
        raise ResourceDoesNotExist(f"Run with id={run_uuid} not found")
    if row.lifecycle_stage != ACTIVE:
        raise _not_active(run_uuid, row.lifecycle_stage)
    return row.id


def get_active_run(session: Session, project_id: str, run_id: Any, *, with_experiment: bool = True) -> Run:
    run = get_run(session, project_id, run_id, with_experiment=with_experiment)
    check_active(run)
    return run


def get_run_by_iid(session: Session, project_id: str, iid: int) -> Run:
    run = session.scalars(select(Run).where(Run.project_id == project_id, Run.iid == iid)).one_or_none()
    if run is None:
        raise ResourceDoesNotExist(f"Run with iid={iid} not found")
    return run


def check_active(run: Run) -> None:
    if run.lifecycle_stage != ACTIVE:
        raise _not_active(run.run_uuid, run.lifecycle_stage)


def _not_active(run_uuid: str, stage: str) -> InvalidParameter:
    return InvalidParameter(f"The run {run_uuid} must be in the 'active' state. Current state is {stage}.")


# -- create / update / delete --------------------------------------------------
def create_run(
    session: Session,
    project_id: str,
    experiment_id: Any,
    *,
    user_id: Optional[str] = None,
    start_time: Any = None,
    tags: Sequence[tuple[Any, Any]] = (),
    run_name: Any = None,
    author_id: Optional[str] = None,
    ci_job_id: Optional[int] = None,
) -> Run:
    experiment = get_active_experiment(session, project_id, experiment_id, with_tags=False)
    tag_map = _validated_tags(tags)
    if run_name is not None and not isinstance(run_name, str):
        raise InvalidParameter("Invalid value for parameter 'run_name': expected a string.")
    tag_name = tag_map.get(RUN_NAME_TAG)
    if run_name and tag_name and run_name != tag_name:
        raise InvalidParameter(
            f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
            f"(run_name='{run_name}', mlflow.runName='{tag_name}')."
        )
    name = run_name or tag_name or random_run_name()
    if len(name) > v.MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameter(f"Run name exceeds the maximum length of {v.MAX_ENTITY_KEY_LENGTH} characters.")
    tag_map[RUN_NAME_TAG] = name
    start = v.parse_int(start_time, "start_time", default=None)
    if start is None:
        start = now_ms()
    parent = _find_parent(session, project_id, tag_map.get(PARENT_RUN_TAG))
    run = Run(
        run_uuid=uuid.uuid4().hex,
        project_id=project_id,
        experiment_id=experiment.id,
        experiment=experiment,  # already loaded: spares a query when the run is rendered
        iid=next_iid(session, project_id, "run"),
        name=name,
        status="RUNNING",
        start_time=start,
        lifecycle_stage=ACTIVE,
        user_id=(user_id if isinstance(user_id, str) and user_id else tag_map.get(USER_TAG)),
        author_id=author_id,
        ci_job_id=ci_job_id,
        parent_id=parent.id if parent is not None else None,
    )
    session.add(run)
    session.flush()
    if tag_map:
        session.execute(_statement(session, "tag_insert", lambda insert: insert(RunTag.__table__)),
                        [{"run_id": run.id, "key": k, "value": val} for k, val in tag_map.items()])
    experiment.last_update_time = now_ms()
    return run


def _find_parent(session: Session, project_id: str, parent_uuid: Optional[str]) -> Optional[Run]:
    if not parent_uuid:
        return None
    return session.scalars(
        select(Run).where(Run.run_uuid == parent_uuid.strip().lower(), Run.project_id == project_id)
    ).one_or_none()


def update_run(
    session: Session, project_id: str, run_id: Any, *, status: Any = None, end_time: Any = None, run_name: Any = None
) -> Run:
    run = get_active_run(session, project_id, run_id)
    if status is not None and status != "":
        run.status = _parse_status(status)
    end = v.parse_int(end_time, "end_time")
    if end is not None:
        run.end_time = end
    if run_name:
        if not isinstance(run_name, str) or len(run_name) > v.MAX_ENTITY_KEY_LENGTH:
            raise InvalidParameter("Invalid value for parameter 'run_name'.")
        run.name = run_name
        _upsert_tags(session, run.id, {RUN_NAME_TAG: run_name})
    return run


def delete_run(session: Session, project_id: str, run_id: Any) -> Run:
    run = get_run(session, project_id, run_id)
    run.lifecycle_stage = DELETED
    run.deleted_time = now_ms()
    return run


def restore_run(session: Session, project_id: str, run_id: Any) -> Run:
    run = get_run(session, project_id, run_id)
    if run.experiment.lifecycle_stage != ACTIVE:
        raise InvalidParameter(f"Cannot restore run {run.run_uuid}: its experiment is deleted.")
    run.lifecycle_stage = ACTIVE
    run.deleted_time = None
    return run


def set_runs_lifecycle_for_experiment(session: Session, experiment: Experiment, stage: str) -> None:
    """Soft-deleting an experiment soft-deletes its runs (MLflow does the same)."""
    values = {"lifecycle_stage": stage, "deleted_time": now_ms() if stage == DELETED else None}
    session.execute(update(Run).where(Run.experiment_id == experiment.id).values(**values))


# -- params / tags ------------------------------------------------------------------
def _validated_tags(tags: Iterable[tuple[Any, Any]]) -> dict[str, Optional[str]]:
    result: dict[str, Optional[str]] = {}
    for key, value in tags:
        key = v.validate_key("Tag", key)
        result[key] = v.validate_value("Tag", value, v.MAX_TAG_VAL_LENGTH, required=False)
    return result


# The write statements of the logging calls, built once per dialect: building a
# statement (and its cache key) cost more than running it. Core statements on the
# tables (not the ORM entities): no ORM bulk machinery per call.
_STATEMENTS: dict[tuple[str, str], Any] = {}


def _statement(session: Session, name: str, build) -> Any:
    dialect = session.get_bind().dialect.name
    stmt = _STATEMENTS.get((name, dialect))
    if stmt is None:
        stmt = _STATEMENTS[(name, dialect)] = build(dialect_insert(session))
    return stmt


def _tag_upsert(insert) -> Any:
    stmt = insert(RunTag.__table__)
    return stmt.on_conflict_do_update(index_elements=[RunTag.run_id, RunTag.key], set_={"value": stmt.excluded.value})


def _param_insert(insert) -> Any:
    return insert(Param.__table__).on_conflict_do_nothing(index_elements=[Param.run_id, Param.key])


_STORED_PARAMS = select(Param.__table__.c.key, Param.__table__.c.value).where(
    Param.__table__.c.run_id == bindparam("run_id"), Param.__table__.c.key.in_(bindparam("keys", expanding=True))
)


def _upsert_tags(session: Session, run_pk: int, tags: dict[str, Optional[str]]) -> None:
    if not tags:
        return
    session.execute(_statement(session, "tag_upsert", _tag_upsert),
                    [{"run_id": run_pk, "key": k, "value": val} for k, val in tags.items()])


def _insert_params(session: Session, run: Run, params: dict[str, str]) -> None:
    """Params are write-once: re-logging the same value is fine, another value is an error."""
    if not params:
        return
    session.execute(
        _statement(session, "param_insert", _param_insert),
        [{"run_id": run.id, "key": k, "value": val} for k, val in params.items()],
    )
    stored = dict(session.execute(_STORED_PARAMS, {"run_id": run.id, "keys": list(params)}).tuples().all())
    for key, value in params.items():
        if stored.get(key) != value:
            raise InvalidParameter(
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{stored.get(key)}' for run ID='{run.run_uuid}'. Attempted logging new value '{value}'."
            )


def log_param(session: Session, project_id: str, run_id: Any, key: Any, value: Any) -> None:
    run = get_active_run(session, project_id, run_id, with_experiment=False)
    key = v.validate_key("Param", key)
    value = v.validate_value("Param", value, v.MAX_PARAM_VAL_LENGTH)
    _insert_params(session, run, {key: value})


def set_tag(session: Session, project_id: str, run_id: Any, key: Any, value: Any) -> Run:
    run = get_active_run(session, project_id, run_id, with_experiment=False)
    key = v.validate_key("Tag", key)
    value = v.validate_value("Tag", value, v.MAX_TAG_VAL_LENGTH, required=False)
    _apply_tags(session, run, {key: value})
    return run


def _apply_tags(session: Session, run: Run, tags: dict[str, Optional[str]]) -> None:
    if RUN_NAME_TAG in tags and tags[RUN_NAME_TAG]:
        run.name = tags[RUN_NAME_TAG][: v.MAX_ENTITY_KEY_LENGTH]
    if PARENT_RUN_TAG in tags:
        parent = _find_parent(session, run.project_id, tags[PARENT_RUN_TAG])
        run.parent_id = parent.id if parent is not None and parent.id != run.id else None
    if USER_TAG in tags and tags[USER_TAG] and not run.user_id:
        run.user_id = tags[USER_TAG][:256]
    _upsert_tags(session, run.id, tags)


def delete_tag(session: Session, project_id: str, run_id: Any, key: Any) -> None:
    run = get_active_run(session, project_id, run_id, with_experiment=False)
    key = v.require_str(key, "key")
    deleted = session.execute(delete(RunTag).where(RunTag.run_id == run.id, RunTag.key == key)).rowcount
    if not deleted:
        raise ResourceDoesNotExist(f"No tag with name: {key} in run with id {run.run_uuid}")


# -- metrics -----------------------------------------------------------------------
def parse_metric(raw: Any, default_timestamp: Optional[int] = None) -> MetricIn:
    if not isinstance(raw, dict):
        raise InvalidParameter("Each metric must be an object with 'key', 'value' and 'timestamp'.")
    key = v.validate_key("Metric", raw.get("key"))
    if raw.get("value") is None:
        raise InvalidParameter(f"Missing value for required parameter 'value' of metric '{key}'.")
    value = v.parse_float(raw.get("value"), "metric value")
    timestamp = v.parse_int(raw.get("timestamp"), "timestamp", default=default_timestamp)
    if timestamp is None:
        raise InvalidParameter(f"Missing value for required parameter 'timestamp' of metric '{key}'.")
    step = v.parse_int(raw.get("step"), "step", default=0)
    return MetricIn(key, value, timestamp, step)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63


def parse_metrics(raws: Sequence[Any]) -> list[MetricIn]:
    """``parse_metric`` over a batch, fast for what the MLflow client sends (a
    float value and int timestamp/step, keys repeated across steps): such items
    skip the general parsers, and each distinct key is validated once. Anything
    else goes through ``parse_metric``, so the rules and errors are the same."""
    valid_keys: set[str] = set()
    parsed = []
    for raw in raws:
        if type(raw) is dict:
            key, value, ts, step = raw.get("key"), raw.get("value"), raw.get("timestamp"), raw.get("step", 0)
            if (
                key in valid_keys
                and (type(value) is float or type(value) is int)
                and type(ts) is int
                and _INT64_MIN <= ts < _INT64_MAX
                and type(step) is int
                and _INT64_MIN <= step < _INT64_MAX
            ):
                parsed.append(MetricIn(key, float(value), ts, step))
                continue
        metric = parse_metric(raw)
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
# From this many points, PostgreSQL gets them by COPY (a tenth of the client CPU of an INSERT).
_COPY_FROM_ROWS = 50


def _write_metric_points(session: Session, run_pk: int, metrics: Sequence[MetricIn]) -> None:
    """Append the points to the history, straight through the driver: the
    history is append-only and SQLAlchemy's per-row parameter handling cost
    more than the insert itself. Same transaction as the rest of the request."""
    rows = []
    for m in metrics:
        nan = m.value != m.value
        rows.append((run_pk, m.key, None if nan else m.value, nan, m.timestamp, m.step))
    conn = session.connection()
    table = Metric.__tablename__
    if conn.dialect.name == "postgresql" and len(rows) >= _COPY_FROM_ROWS:
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(_METRIC_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({', '.join(_METRIC_COLUMNS)}) VALUES ({', '.join([mark] * len(_METRIC_COLUMNS))})", rows
    )


def _insert_metrics(session: Session, run_pk: int, metrics: Sequence[MetricIn]) -> None:
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
        .returning(Metric.__table__.c.run_id)
        .cte("point")
    )
    # A data-modifying CTE runs whether or not the main query reads it.
    latest = _keeping_the_latest(
        insert(LatestMetric.__table__).from_select(_METRIC_COLUMNS, _point_select(run.c.id))
    ).cte("latest")
    return select(point.c.run_id).add_cte(latest)


def _append_point_sqlite(insert) -> Any:
    """The point, inserted only if its run is active; RETURNING gives the run's key
    (SQLite has no data-modifying CTEs: the latest value is a second statement)."""
    runs = Run.__table__.c
    active_run = _point_select(runs.id).where(
        runs.run_uuid == bindparam("run_uuid"), runs.project_id == bindparam("project_id"), runs.lifecycle_stage == ACTIVE
    )
    stmt = insert(Metric.__table__).from_select(_METRIC_COLUMNS, active_run)
    return stmt.returning(Metric.__table__.c.run_id)


def _append_point_if_active(session: Session, project_id: str, run_uuid: str, metric: MetricIn) -> bool:
    """``log_metric``'s whole write in as few statements as the database allows (one
    on PostgreSQL, two on SQLite), instead of a run lookup, an insert and an upsert.
    False (and nothing written) when the run is missing or not active."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        stmt = _statement(session, "append_point", _append_point_pg)
        return conn.execute(stmt, _point_params(project_id, run_uuid, metric)).first() is not None
    row = conn.execute(_statement(session, "append_point", _append_point_sqlite),
                       _point_params(project_id, run_uuid, metric)).first()
    if row is None:
        return False
    _upsert_latest(session, row[0], [metric])
    return True


def _upsert_latest(session: Session, run_pk: int, metrics: list[MetricIn]) -> None:
    # On the connection: a Core statement on one table needs none of the ORM's
    # execution path (nothing pending in the session touches this table).
    session.connection().execute(_statement(session, "latest_upsert", _latest_upsert), _metric_rows(run_pk, metrics))


def log_metric(session: Session, project_id: str, run_id: Any, raw: dict) -> None:
    metric = parse_metric(raw)
    run_uuid = _run_uuid(run_id)
    if not _append_point_if_active(session, project_id, run_uuid, metric):
        # Nothing written: say why (no such run, or not active) with the usual errors. A
        # run restored in between is active by now, and gets its point the long way.
        _insert_metrics(session, get_active_run_pk(session, project_id, run_uuid), [metric])
    if raw.get("model_id"):
        _record_model_metrics(session, get_run(session, project_id, run_id, with_experiment=False), [raw])


def _record_model_metrics(session: Session, run: Run, raw_metrics: list) -> None:
    # Metrics naming a logged model (MLflow 3's model_id) are also the model's.
    if any(isinstance(m, dict) and m.get("model_id") for m in raw_metrics):
        from .logged_models import record_metrics

        record_metrics(session, run, raw_metrics)


# -- batch -------------------------------------------------------------------------
def log_batch(
    session: Session, project_id: str, run_id: Any, metrics: Any, params: Any, tags: Any
) -> Run:
    """All or nothing: everything is validated first, then written in the
    caller's transaction, which is rolled back on any error."""
    metrics = metrics or []
    params = params or []
    tags = tags or []
    if not all(isinstance(x, list) for x in (metrics, params, tags)):
        raise InvalidParameter("'metrics', 'params' and 'tags' must be lists.")
    v.validate_batch_limits(len(metrics), len(params), len(tags))
    run = get_active_run(session, project_id, run_id, with_experiment=False)
    parsed_metrics = parse_metrics(metrics)
    param_map: dict[str, str] = {}
    for p in params:
        if not isinstance(p, dict):
            raise InvalidParameter("Each param must be an object with 'key' and 'value'.")
        key = v.validate_key("Param", p.get("key"))
        value = v.validate_value("Param", p.get("value"), v.MAX_PARAM_VAL_LENGTH)
        if key in param_map and param_map[key] != value:
            raise InvalidParameter(f"Duplicate parameter keys have been submitted: '{key}' with different values.")
        param_map[key] = value
    tag_pairs = []
    for t in tags:
        if not isinstance(t, dict):
            raise InvalidParameter("Each tag must be an object with 'key' and 'value'.")
        tag_pairs.append((t.get("key"), t.get("value")))
    tag_map = _validated_tags(tag_pairs)
    _insert_params(session, run, param_map)
    _insert_metrics(session, run.id, parsed_metrics)
    _record_model_metrics(session, run, metrics)
    if tag_map:
        _apply_tags(session, run, tag_map)
    return run


# -- datasets ----------------------------------------------------------------------
def log_inputs(session: Session, project_id: str, run_id: Any, datasets: Any) -> None:
    run = get_active_run(session, project_id, run_id)
    if datasets is None:
        return
    if not isinstance(datasets, list):
        raise InvalidParameter("'datasets' must be a list.")
    insert = dialect_insert(session)
    for item in datasets:
        if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
            raise InvalidParameter("Each dataset input must carry a 'dataset' object.")
        ds = item["dataset"]
        name = v.require_str(ds.get("name"), "dataset.name", max_length=500)
        digest = v.require_str(ds.get("digest"), "dataset.digest", max_length=64)
        session.execute(
            insert(Dataset)
            .values(
                experiment_id=run.experiment_id,
                name=name,
                digest=digest,
                source_type=ds.get("source_type"),
                source=ds.get("source"),
                schema=ds.get("schema"),
                profile=ds.get("profile"),
            )
            .on_conflict_do_nothing(index_elements=[Dataset.experiment_id, Dataset.name, Dataset.digest])
        )
        dataset_pk = session.execute(
            select(Dataset.id).where(
                Dataset.experiment_id == run.experiment_id, Dataset.name == name, Dataset.digest == digest
            )
        ).scalar_one()
        input_tags = item.get("tags") or []
        tags_json = json.dumps([{"key": t.get("key"), "value": t.get("value")} for t in input_tags if isinstance(t, dict)])
        session.execute(
            insert(RunInput)
            .values(run_id=run.id, dataset_id=dataset_pk, tags_json=tags_json)
            .on_conflict_do_update(index_elements=[RunInput.run_id, RunInput.dataset_id], set_={"tags_json": tags_json})
        )
