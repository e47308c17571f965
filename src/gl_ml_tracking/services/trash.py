"""Permanent deletion of what is in the trash: runs and experiments that were
soft-deleted (MLflow's ``deleted`` lifecycle stage), with their artifacts.

MLflow only offers this through the ``mlflow gc`` command, which leaves
artifacts behind in several setups; here purging a run deletes its package
version (``ml_experiment_<experiment iid>``/``<run iid>``) and purging an
experiment deletes every version of its package, runs and logged models
alike (through ``services.gc``, which ``flask ml-tracking gc`` shares). Storage
objects go after the transaction commits (the package service arranges that),
so a failed purge leaves everything in place.

Child rows are deleted explicitly rather than through ``ON DELETE CASCADE``:
SQLite enforces foreign keys only when asked to per connection, and a host's
engine may not ask.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import (
    DELETED,
    Dataset,
    Experiment,
    ExperimentTag,
    LatestMetric,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    Metric,
    Param,
    Run,
    RunInput,
    RunOutput,
    RunTag,
    TraceRunLink,
)
from . import datasets as genai_datasets, scorers as genai_scorers  # GenAI rows of an experiment
from . import gc
from .traces import purge_experiment_traces


def _delete_runs(session: Session, project_id: str, run_ids: Any) -> None:
    """Delete runs and everything logged to them; ``run_ids`` is a list or a
    scalar subquery of run primary keys (never loaded into memory)."""
    for table in (Metric, LatestMetric, Param, RunTag, RunInput, RunOutput, TraceRunLink):
        session.execute(delete(table).where(table.run_id.in_(run_ids)).execution_options(synchronize_session=False))
    # Children outlive their parent, as with MLflow (the parent tag stays, the link goes).
    session.execute(
        update(Run).where(Run.project_id == project_id, Run.parent_id.in_(run_ids))
        .values(parent_id=None).execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Run).where(Run.project_id == project_id, Run.id.in_(run_ids)).execution_options(synchronize_session=False)
    )


def purge_run(session: Session, project_id: str, run: Run) -> None:
    """Permanently delete a run in the trash and its artifacts."""
    if run.project_id != project_id:
        raise InvalidParameter("The run belongs to another project.")
    if run.lifecycle_stage != DELETED:
        raise InvalidParameter(f"Run {run.iid} is not in the trash: delete it before deleting it permanently.")
    gc.delete_run_files(session, project_id, run.experiment.iid, run.iid)
    run_pk = run.id
    session.expunge(run)
    _delete_runs(session, project_id, [run_pk])


def purge_experiment(session: Session, project_id: str, experiment: Experiment) -> None:
    """Permanently delete an experiment in the trash: its runs, logged models,
    datasets, tags and every artifact in its package."""
    if experiment.project_id != project_id:
        raise InvalidParameter("The experiment belongs to another project.")
    if experiment.lifecycle_stage != DELETED:
        raise InvalidParameter(
            f"Experiment {experiment.iid} is not in the trash: delete it before deleting it permanently.")
    gc.delete_experiment_files(session, project_id, experiment.iid)
    pk = experiment.id
    purge_experiment_traces(session, project_id, pk)
    run_ids = select(Run.id).where(Run.project_id == project_id, Run.experiment_id == pk).scalar_subquery()
    _delete_runs(session, project_id, run_ids)
    model_ids = select(LoggedModel.id).where(LoggedModel.project_id == project_id, LoggedModel.experiment_id == pk)
    model_ids = model_ids.scalar_subquery()
    for table in (LoggedModelMetric, LoggedModelParam, LoggedModelTag, RunOutput):
        session.execute(delete(table).where(table.model_pk.in_(model_ids)).execution_options(synchronize_session=False))
    session.execute(delete(LoggedModel).where(LoggedModel.project_id == project_id, LoggedModel.experiment_id == pk)
                    .execution_options(synchronize_session=False))
    dataset_ids = select(Dataset.id).where(Dataset.experiment_id == pk).scalar_subquery()
    session.execute(delete(RunInput).where(RunInput.dataset_id.in_(dataset_ids)).execution_options(synchronize_session=False))
    session.execute(delete(Dataset).where(Dataset.experiment_id == pk).execution_options(synchronize_session=False))
    session.execute(delete(ExperimentTag).where(ExperimentTag.experiment_id == pk).execution_options(synchronize_session=False))
    genai_datasets.unlink_experiment(session, pk)  # GenAI evaluation datasets stay, unlinked
    genai_scorers.delete_experiment_scorers(session, pk)
    session.expunge(experiment)
    session.execute(delete(Experiment).where(Experiment.project_id == project_id, Experiment.id == pk)
                    .execution_options(synchronize_session=False))
