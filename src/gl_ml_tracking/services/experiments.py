"""Experiments: create, read, rename, soft delete and restore, tags."""
from __future__ import annotations

from typing import Any, Iterable, Optional

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from ..errors import InvalidParameter, ResourceAlreadyExists, ResourceDoesNotExist
from ..models import ACTIVE, DELETED, Experiment, ExperimentTag
from . import validation as v
from .common import dialect_insert, ensure_iid_at_least, next_iid, now_ms

# MLflow's client falls back to experiment "0" when none is set; every project
# gets its own "Default" experiment with IID 0, created on first use.
DEFAULT_EXPERIMENT_IID = 0
DEFAULT_EXPERIMENT_NAME = "Default"


def parse_experiment_iid(experiment_id: Any) -> int:
    text = str(experiment_id).strip() if experiment_id is not None else ""
    if not text:
        raise InvalidParameter("Missing value for required parameter 'experiment_id'.")
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if not text.isdecimal() or len(text) > 18:
        raise ResourceDoesNotExist(f"Could not find experiment with ID {text}")
    return int(text)


def create_experiment(
    session: Session,
    project_id: str,
    name: Any,
    tags: Iterable[tuple[str, Optional[str]]] = (),
    user_id: Optional[str] = None,
    artifact_location: Optional[str] = None,
) -> Experiment:
    name = v.validate_experiment_name(name)
    tags = [(v.validate_key("Tag", k), v.validate_value("Tag", val, v.MAX_TAG_VAL_LENGTH, required=False)) for k, val in tags]
    if _find_by_name(session, project_id, name) is not None:
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
    return experiment


def _find_by_name(session: Session, project_id: str, name: str) -> Optional[Experiment]:
    return session.scalars(
        select(Experiment).where(Experiment.project_id == project_id, Experiment.name == name)
    ).one_or_none()


def ensure_default_experiment(session: Session, project_id: str) -> Experiment:
    experiment = session.scalars(
        select(Experiment).where(Experiment.project_id == project_id, Experiment.iid == DEFAULT_EXPERIMENT_IID)
    ).one_or_none()
    if experiment is not None:
        return experiment
    now = now_ms()
    insert = dialect_insert(session)
    session.execute(
        insert(Experiment)
        .values(
            project_id=project_id,
            iid=DEFAULT_EXPERIMENT_IID,
            name=DEFAULT_EXPERIMENT_NAME,
            lifecycle_stage=ACTIVE,
            creation_time=now,
            last_update_time=now,
        )
        .on_conflict_do_nothing()
    )
    experiment = session.scalars(
        select(Experiment).where(Experiment.project_id == project_id, Experiment.iid == DEFAULT_EXPERIMENT_IID)
    ).one_or_none()
    if experiment is None:  # the name "Default" is taken by a user-made experiment
        raise ResourceDoesNotExist(f"Could not find experiment with ID {DEFAULT_EXPERIMENT_IID}")
    return experiment


# Built once: every run creation looks its experiment up. The lean form leaves the
# experiment's tags unloaded (a second query) for callers that only need the row.
_EXPERIMENT_BY_IID = select(Experiment).where(
    Experiment.project_id == bindparam("project_id"), Experiment.iid == bindparam("iid")
)
_EXPERIMENT_BY_IID_LEAN = _EXPERIMENT_BY_IID.options(lazyload(Experiment.tags))


def get_experiment(session: Session, project_id: str, experiment_id: Any, *, with_tags: bool = True) -> Experiment:
    """``with_tags=False`` does not load the tags up front; ``experiment.tags`` still
    loads if something asks for it."""
    iid = parse_experiment_iid(experiment_id)
    if iid == DEFAULT_EXPERIMENT_IID:
        return ensure_default_experiment(session, project_id)
    stmt = _EXPERIMENT_BY_IID if with_tags else _EXPERIMENT_BY_IID_LEAN
    experiment = session.scalars(stmt, {"project_id": project_id, "iid": iid}).one_or_none()
    if experiment is None:
        raise ResourceDoesNotExist(f"Could not find experiment with ID {iid}")
    return experiment


def get_experiment_by_name(session: Session, project_id: str, name: Any) -> Experiment:
    name = v.require_str(name, "experiment_name")
    experiment = _find_by_name(session, project_id, name)
    if experiment is None and name == DEFAULT_EXPERIMENT_NAME:
        experiment = ensure_default_experiment(session, project_id)
    if experiment is None:
        raise ResourceDoesNotExist(f"Could not find experiment with name '{name}'")
    return experiment


def get_active_experiment(session: Session, project_id: str, experiment_id: Any, *,
                          with_tags: bool = True) -> Experiment:
    experiment = get_experiment(session, project_id, experiment_id, with_tags=with_tags)
    if experiment.lifecycle_stage != ACTIVE:
        raise InvalidParameter(
            f"The experiment {experiment.iid} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )
    return experiment


def rename_experiment(session: Session, project_id: str, experiment_id: Any, new_name: Any) -> Experiment:
    experiment = get_active_experiment(session, project_id, experiment_id)
    new_name = v.validate_experiment_name(new_name)
    if new_name != experiment.name:
        if _find_by_name(session, project_id, new_name) is not None:
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
    from .runs import set_runs_lifecycle_for_experiment

    set_runs_lifecycle_for_experiment(session, experiment, DELETED)
    return experiment


def restore_experiment(session: Session, project_id: str, experiment_id: Any) -> Experiment:
    experiment = get_experiment(session, project_id, experiment_id)
    if experiment.lifecycle_stage != DELETED:
        raise InvalidParameter(f"Cannot restore an active experiment. Experiment id: {experiment.iid}")
    experiment.lifecycle_stage = ACTIVE
    experiment.deleted_time = None
    experiment.last_update_time = now_ms()
    from .runs import set_runs_lifecycle_for_experiment

    set_runs_lifecycle_for_experiment(session, experiment, ACTIVE)
    return experiment


def set_experiment_tag(session: Session, project_id: str, experiment_id: Any, key: Any, value: Any) -> None:
    experiment = get_active_experiment(session, project_id, experiment_id)
    key = v.validate_key("Tag", key)
    value = v.validate_value("Tag", value, v.MAX_TAG_VAL_LENGTH, required=False)
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
