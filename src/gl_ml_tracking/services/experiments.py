"""Experiments: create, rename, soft delete and restore (with their runs), tags.
Reading one is a lookup (``services/lookups.py``)."""
from __future__ import annotations

from typing import Any, Iterable, Optional

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import signals
from ..errors import InvalidParameter, ResourceAlreadyExists, ResourceDoesNotExist
from ..models import ACTIVE, DELETED, Experiment, ExperimentTag, Run
from . import validation as v
from .common import dialect_insert, ensure_iid_at_least, next_iid, now_ms
from .lookups import DEFAULT_EXPERIMENT_IID, find_experiment_by_name, get_active_experiment, get_experiment


def create_experiment(
    session: Session,
    project_id: str,
    name: Any,
    tags: Iterable[tuple[str, Optional[str]]] = (),
    user_id: Optional[str] = None,
    artifact_location: Optional[str] = None,
    *,
    project: Any = None,
) -> Experiment:
    """``project`` is the host's project, handed to ``signals.experiment_created``
    subscribers once the transaction commits."""
    name = v.validate_experiment_name(name)
    tags = [(v.validate_key("Tag", k), v.validate_value("Tag", val, v.MAX_EXPERIMENT_TAG_VAL_LENGTH, required=False)) for k, val in tags]
    if find_experiment_by_name(session, project_id, name) is not None:
        raise ResourceAlreadyExists(f"Experiment '{name}' already exists.")
    ensure_iid_at_least(session, project_id, "experiment", 0)
    now = now_ms()
    experiment = Experiment(
        project_id=project_id,
        iid=next_iid(session, project_id, "experiment"),
        name=name,
        lifecycle_stage=ACTIVE,
        user_id=user_id,
        creation_time=now,
        last_update_time=now,
    )
    experiment.tags = [ExperimentTag(key=k, value=val) for k, val in dict(tags).items()]
    session.add(experiment)
    try:
        session.flush()
    except IntegrityError:
        # A concurrent request took the name between our check and insert.
        session.rollback()
        raise ResourceAlreadyExists(f"Experiment '{name}' already exists.")
    signals.send_after_commit(session, signals.experiment_created, project=project, experiment=experiment)
    return experiment


def rename_experiment(session: Session, project_id: str, experiment_id: Any, new_name: Any) -> Experiment:
    experiment = get_active_experiment(session, project_id, experiment_id)
    new_name = v.validate_experiment_name(new_name)
    if new_name != experiment.name:
        if find_experiment_by_name(session, project_id, new_name) is not None:
            raise ResourceAlreadyExists(f"Experiment '{new_name}' already exists.")
        experiment.name = new_name
        experiment.last_update_time = now_ms()
    return experiment


def delete_experiment(session: Session, project_id: str, experiment_id: Any) -> Experiment:
    experiment = get_experiment(session, project_id, experiment_id)
    if experiment.iid == DEFAULT_EXPERIMENT_IID:
        raise InvalidParameter("Cannot delete the default experiment '0'. This is an internally reserved experiment.")
    if experiment.lifecycle_stage == DELETED:
        raise InvalidParameter(f"The experiment {experiment.iid} must be in the 'active' state. Current state is deleted.")
    experiment.lifecycle_stage = DELETED
    experiment.deleted_time = experiment.last_update_time = now_ms()
    _set_runs_lifecycle(session, experiment, DELETED)
    return experiment


def restore_experiment(session: Session, project_id: str, experiment_id: Any) -> Experiment:
    experiment = get_experiment(session, project_id, experiment_id)
    if experiment.lifecycle_stage != DELETED:
        raise InvalidParameter(f"Cannot restore an active experiment. Experiment id: {experiment.iid}")
    experiment.lifecycle_stage = ACTIVE
    experiment.deleted_time = None
    experiment.last_update_time = now_ms()
    _set_runs_lifecycle(session, experiment, ACTIVE)
    return experiment


def _set_runs_lifecycle(session: Session, experiment: Experiment, stage: str) -> None:
    """Soft-deleting an experiment soft-deletes its runs, restoring it restores them
    (MLflow does the same); one UPDATE, whatever the number of runs."""
    values = {"lifecycle_stage": stage, "deleted_time": now_ms() if stage == DELETED else None}
    session.execute(update(Run).where(Run.experiment_id == experiment.id).values(**values))


def set_experiment_tag(session: Session, project_id: str, experiment_id: Any, key: Any, value: Any) -> None:
    experiment = get_active_experiment(session, project_id, experiment_id)
    key = v.validate_key("Tag", key)
    value = v.validate_value("Tag", value, v.MAX_EXPERIMENT_TAG_VAL_LENGTH, required=False)
    insert = dialect_insert(session)
    session.execute(
        insert(ExperimentTag)
        .values(experiment_id=experiment.id, key=key, value=value)
        .on_conflict_do_update(index_elements=[ExperimentTag.experiment_id, ExperimentTag.key], set_={"value": value})
    )
    experiment.last_update_time = now_ms()
    session.expire(experiment, ["tags"])


def delete_experiment_tag(session: Session, project_id: str, experiment_id: Any, key: Any) -> None:
    experiment = get_active_experiment(session, project_id, experiment_id)
    key = v.require_str(key, "key")
    deleted = session.execute(
        delete(ExperimentTag).where(ExperimentTag.experiment_id == experiment.id, ExperimentTag.key == key)
    ).rowcount
    if not deleted:
        raise ResourceDoesNotExist(f"No tag with name: {key} in experiment with id {experiment.iid}")
    experiment.last_update_time = now_ms()
    session.expire(experiment, ["tags"])


def list_experiments(session: Session, project_id: str, view_type: str = "ACTIVE_ONLY") -> list[Experiment]:
    """All experiments of a project (the old ``experiments/list`` endpoint)."""
    query = select(Experiment).where(Experiment.project_id == project_id)
    if view_type == "ACTIVE_ONLY":
        query = query.where(Experiment.lifecycle_stage == ACTIVE)
    elif view_type == "DELETED_ONLY":
        query = query.where(Experiment.lifecycle_stage == DELETED)
    return list(session.scalars(query.order_by(Experiment.iid)))
