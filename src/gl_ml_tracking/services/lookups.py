"""Finding one entity of a project by its public id or name, with MLflow's errors when
it is missing (RESOURCE_DOES_NOT_EXIST) or not active (INVALID_PARAMETER_VALUE).

The use-case services (experiments, runs, logged models, the model registry) all look
each other's entities up: they do it here, so that none of them imports another for a
lookup and they never import each other in a loop. Reads only: nothing here writes,
except ``ensure_default_experiment``, which makes the project's "Default" experiment on
its first use (what MLflow's client expects of experiment "0").
"""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, lazyload

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import ACTIVE, DELETED, Experiment, LoggedModel, Run
from . import validation as v
from .common import dialect_insert, now_ms

# MLflow's client falls back to experiment "0" when none is set; every project
# gets its own "Default" experiment with IID 0, created on first use.
DEFAULT_EXPERIMENT_IID = 0
DEFAULT_EXPERIMENT_NAME = "Default"

LOGGED_MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}\Z")


# -- experiments -----------------------------------------------------------------
def parse_experiment_iid(experiment_id: Any) -> int:
    text = str(experiment_id).strip() if experiment_id is not None else ""
    if not text:
        raise InvalidParameter("Missing value for required parameter 'experiment_id'.")
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if not text.isdecimal() or len(text) > 18:
        raise ResourceDoesNotExist(f"Could not find experiment with ID {text}")
    return int(text)


def find_experiment_by_name(session: Session, project_id: str, name: str) -> Optional[Experiment]:
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
    experiment = find_experiment_by_name(session, project_id, name)
    if experiment is None and name == DEFAULT_EXPERIMENT_NAME:
        experiment = ensure_default_experiment(session, project_id)
    if experiment is None:
        raise ResourceDoesNotExist(f"Could not find experiment with name '{name}'")
    return experiment


def get_active_experiment(session: Session, project_id: str, experiment_id: Any, *,
                          with_tags: bool = True) -> Experiment:
    experiment = get_experiment(session, project_id, experiment_id, with_tags=with_tags)
    require_active(experiment.iid, experiment.lifecycle_stage)
    return experiment


def require_active(iid: int, lifecycle_stage: str) -> None:
    """MLflow's refusal to write into a deleted experiment."""
    if lifecycle_stage != ACTIVE:
        raise InvalidParameter(
            f"The experiment {iid} must be in the 'active' state. Current state is {lifecycle_stage}."
        )


# -- runs ------------------------------------------------------------------------
def parse_run_uuid(run_id: Any) -> str:
    """A run id as stored (MLflow's ids are lowercase hex; clients may send uppercase)."""
    return v.require_str(run_id, "run_id", max_length=64).strip().lower()


# Built once: every logging call looks its run up, and building the statement
# cost about as much as running it.
_RUN_BY_UUID = select(Run).where(Run.run_uuid == bindparam("run_uuid"), Run.project_id == bindparam("project_id"))
_RUN_BY_UUID_LEAN = _RUN_BY_UUID.options(lazyload(Run.experiment))


def get_run(session: Session, project_id: str, run_id: Any, *, with_experiment: bool = True) -> Run:
    """``with_experiment=False`` skips the joined experiment (and its tags), which
    writes do not need; ``run.experiment`` still loads if something asks for it."""
    run_uuid = parse_run_uuid(run_id)
    stmt = _RUN_BY_UUID if with_experiment else _RUN_BY_UUID_LEAN
    run = session.scalars(stmt, {"run_uuid": run_uuid, "project_id": project_id}).one_or_none()
    if run is None:
        raise ResourceDoesNotExist(f"Run with id={run_uuid} not found")
    return run


def find_run_by_uuid(session: Session, project_id: str, run_uuid: Optional[str]) -> Optional[Run]:
    """The run, or None (no error): for ids the client sends in tags, such as a parent run's."""
    if not run_uuid:
        return None
    return session.scalars(
        select(Run).where(Run.run_uuid == run_uuid.strip().lower(), Run.project_id == project_id)
    ).one_or_none()


def get_runs(session: Session, project_id: str, run_ids: Sequence[Any]) -> list[Run]:
    """``[get_run(...) for each id]`` (same order, same errors, raised for the first
    failing id) in one query; the runs come without their experiment."""
    wanted: list[Any] = []
    for run_id in run_ids:
        try:
            wanted.append(parse_run_uuid(run_id))
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
    run_uuid = parse_run_uuid(run_id)
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


# -- logged models -----------------------------------------------------------------
def get_logged_model(session: Session, project_id: str, model_id: Any, *, allow_deleted: bool = False) -> LoggedModel:
    text = v.require_str(model_id, "model_id", max_length=64).strip()
    model = None
    if LOGGED_MODEL_ID_RE.match(text):
        model = session.scalars(
            select(LoggedModel).where(LoggedModel.model_id == text, LoggedModel.project_id == project_id)
        ).one_or_none()
    if model is None or (model.lifecycle_stage == DELETED and not allow_deleted):
        raise ResourceDoesNotExist(f"Logged model with ID '{text}' not found.")
    return model
