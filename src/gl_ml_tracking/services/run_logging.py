"""What the client logs to an active run: params, tags, metrics, and all three in
one batch (``log_batch``). The hot paths: one lookup of the run, statements built
once (``statement_cache``), and the CI hook consulted only when the CI tag is set."""
from __future__ import annotations

from typing import Any, Iterable, Optional

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Param, Run, RunTag
from . import validation as v
from .ci_link import link_run_to_tagged_job
from .constants import CI_JOB_TAG, PARENT_RUN_TAG, RUN_NAME_TAG, USER_TAG
from .logged_models import record_metrics
from .lookups import find_run_by_uuid, get_active_run, get_active_run_pk, get_run, parse_run_uuid
from .metric_writes import append_point_if_active, insert_metrics, parse_metric, parse_metrics
from .statement_cache import cached_statement


# -- tags ----------------------------------------------------------------------------
def validated_tags(tags: Iterable[tuple[Any, Any]]) -> dict[str, Optional[str]]:
    """``{key: value}`` of ``(key, value)`` pairs, each checked as MLflow does; a key
    given twice keeps its last value."""
    result: dict[str, Optional[str]] = {}
    for key, value in tags:
        key = v.validate_key("Tag", key)
        result[key] = v.validate_value("Tag", value, v.MAX_TAG_VAL_LENGTH, required=False, truncate=True)
    return result


def _tag_insert(insert) -> Any:
    return insert(RunTag.__table__)


def _tag_upsert(insert) -> Any:
    stmt = insert(RunTag.__table__)
    return stmt.on_conflict_do_update(index_elements=[RunTag.run_id, RunTag.key], set_={"value": stmt.excluded.value})


def insert_new_run_tags(session: Session, run_pk: int, tags: dict[str, Optional[str]]) -> None:
    """The tags of a run created in this transaction (it has none yet: no upsert needed)."""
    if tags:
        session.execute(cached_statement(session, "tag_insert", _tag_insert),
                        [{"run_id": run_pk, "key": k, "value": val} for k, val in tags.items()])


def upsert_run_tags(session: Session, run_pk: int, tags: dict[str, Optional[str]]) -> None:
    if tags:
        session.execute(cached_statement(session, "tag_upsert", _tag_upsert),
                        [{"run_id": run_pk, "key": k, "value": val} for k, val in tags.items()])


def _apply_tags(session: Session, run: Run, tags: dict[str, Optional[str]], project: Any) -> None:
    """Store the tags, and act on those the server gives a meaning to (name, parent,
    user, CI job)."""
    if RUN_NAME_TAG in tags and tags[RUN_NAME_TAG]:
        run.name = tags[RUN_NAME_TAG][: v.MAX_ENTITY_KEY_LENGTH]
    if PARENT_RUN_TAG in tags:
        parent = find_run_by_uuid(session, run.project_id, tags[PARENT_RUN_TAG])
        run.parent_id = parent.id if parent is not None and parent.id != run.id else None
    if USER_TAG in tags and tags[USER_TAG] and not run.user_id:
        run.user_id = tags[USER_TAG][:256]
    upsert_run_tags(session, run.id, tags)
    # The host is asked last: a loader that fails inside the database (caught and logged
    # by resolve_job) aborts a PostgreSQL transaction, and would fail the upsert above.
    # Without the host's project (a call from outside a request) no job can be resolved.
    if CI_JOB_TAG in tags and project is not None:
        link_run_to_tagged_job(project, run, tags)


def set_tag(session: Session, project_id: str, run_id: Any, key: Any, value: Any, *, project: Any = None) -> Run:
    """``project`` (the host's) lets a ``gitlab.CI_JOB_ID`` tag link the run to its job."""
    run = get_active_run(session, project_id, run_id, with_experiment=False)
    key = v.validate_key("Tag", key)
    value = v.validate_value("Tag", "" if value is None else value, v.MAX_TAG_VAL_LENGTH, truncate=True)
    _apply_tags(session, run, {key: value}, project)
    return run


def delete_tag(session: Session, project_id: str, run_id: Any, key: Any) -> None:
    run = get_active_run(session, project_id, run_id, with_experiment=False)
    key = v.require_str(key, "key")
    deleted = session.execute(delete(RunTag).where(RunTag.run_id == run.id, RunTag.key == key)).rowcount
    if not deleted:
        raise ResourceDoesNotExist(f"No tag with name: {key} in run with id {run.run_uuid}")


# -- params --------------------------------------------------------------------------
def _param_insert(insert) -> Any:
    return insert(Param.__table__).on_conflict_do_nothing(index_elements=[Param.run_id, Param.key])


_STORED_PARAMS = select(Param.__table__.c.key, Param.__table__.c.value).where(
    Param.__table__.c.run_id == bindparam("run_id"), Param.__table__.c.key.in_(bindparam("keys", expanding=True))
)


def _insert_params(session: Session, run: Run, params: dict[str, str]) -> None:
    """Params are write-once: re-logging the same value is fine, another value is an error."""
    if not params:
        return
    session.execute(
        cached_statement(session, "param_insert", _param_insert),
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
    value = v.validate_value("Param", value, v.MAX_PARAM_VAL_LENGTH, truncate=True)
    _insert_params(session, run, {key: value})


# -- metrics -------------------------------------------------------------------------
def log_metric(session: Session, project_id: str, run_id: Any, raw: dict) -> None:
    metric = parse_metric(raw)
    run_uuid = parse_run_uuid(run_id)
    if not append_point_if_active(session, project_id, run_uuid, metric):
        # Nothing written: say why (no such run, or not active) with the usual errors. A
        # run restored in between is active by now, and gets its point the long way.
        insert_metrics(session, get_active_run_pk(session, project_id, run_uuid), [metric])
    if raw.get("model_id"):
        _record_model_metrics(session, get_run(session, project_id, run_id, with_experiment=False), [raw])


def _record_model_metrics(session: Session, run: Run, raw_metrics: list) -> None:
    # Metrics naming a logged model (MLflow 3's model_id) are also the model's.
    if any(m.get("model_id") for m in raw_metrics):
        record_metrics(session, run, raw_metrics)


# -- batch ---------------------------------------------------------------------------
def log_batch(
    session: Session, project_id: str, run_id: Any, metrics: Any, params: Any, tags: Any, *, project: Any = None
) -> Run:
    """All or nothing: everything is validated first, then written in the
    caller's transaction, which is rolled back on any error. ``project`` (the
    host's) lets a ``gitlab.CI_JOB_ID`` tag link the run to its job."""
    # Lists of {key, value, ...} objects of the declared types: the LogBatch schema
    # loaded them (the API is the only caller).
    metrics = metrics or []
    params = params or []
    tags = tags or []
    v.validate_batch_limits(len(metrics), len(params), len(tags))
    run = get_active_run(session, project_id, run_id, with_experiment=False)
    parsed_metrics = parse_metrics(metrics)
    param_map: dict[str, str] = {}
    for p in params:
        key = v.validate_key("Param", p.get("key"))
        value = v.validate_value("Param", p.get("value"), v.MAX_PARAM_VAL_LENGTH, truncate=True)
        if key in param_map and param_map[key] != value:
            raise InvalidParameter(f"Duplicate parameter keys have been submitted: '{key}' with different values.")
        param_map[key] = value
    tag_map = validated_tags([(t.get("key"), t.get("value")) for t in tags])
    _insert_params(session, run, param_map)
    insert_metrics(session, run.id, parsed_metrics)
    _record_model_metrics(session, run, metrics)
    if tag_map:
        _apply_tags(session, run, tag_map, project)
    return run
