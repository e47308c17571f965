"""Reads the pages need and the API does not: summaries for the experiments
list, the columns a runs table can offer, trash listings, parents and children
of runs, package sizes. Run *search* is not here: the runs table uses
``services.search.search_runs``, the same code as the API.

Every function is scoped by ``project_id`` and bounded: page sizes and key
samples are capped, so no page reads a whole experiment or history.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import ResourceDoesNotExist
from ..models import (
    ACTIVE,
    DELETED,
    Experiment,
    LatestMetric,
    ModelVersion,
    Package,
    PackageFile,
    Param,
    Run,
    RunTag,
)
from ..search.keyset import Atom, Page, Pager

# Keys offered as columns come from the newest runs of the experiment only, so
# discovering them costs the same at 100 runs and at 100,000.
KEY_SAMPLE_RUNS = 500
MAX_KEYS_PER_KIND = 300
# The CSV export names every key of the experiment, up to this many per kind.
MAX_EXPORT_KEYS = 2000


# --------------------------------------------------------------------------- keyset pages
def keyset_page(session: Session, stmt: Any, kind: str, atoms: Sequence[Atom], limit: int,
                cursor: Optional[str]) -> Page:
    """Run ``stmt`` (a select of ORM rows) as one page ordered by ``atoms`` (columns
    without NULLs, the last one unique), after or before ``cursor``: a token of listing
    ``kind`` from a previous ``Page`` (``next_cursor`` or ``prev_cursor``), None for
    the first page. Both directions are keyset."""
    return Pager(kind, atoms, cursor, what="page cursor", both_ways=True).fetch(session, stmt, limit)


# --------------------------------------------------------------------------- experiments
def find_experiment(session: Session, project_id: str, iid: int) -> Experiment:
    """The experiment with this IID, active or deleted. Unlike the API's lookup,
    never creates the Default experiment: a page view writes nothing."""
    experiment = session.scalars(
        select(Experiment).where(Experiment.project_id == project_id, Experiment.iid == iid)
    ).one_or_none()
    if experiment is None:
        raise ResourceDoesNotExist(f"Could not find experiment with ID {iid}")
    return experiment


@dataclass(frozen=True)
class ExperimentSummary:
    run_count: int
    last_activity: int  # ms


def experiment_summaries(session: Session, project_id: str, experiments: Sequence[Experiment]) -> dict[int, ExperimentSummary]:
    """Active run count and last activity (the later of the experiment's own
    update time and its newest run's start) for one page of experiments."""
    pks = [e.id for e in experiments]
    stats = {}
    if pks:
        stats = {
            pk: (count, latest)
            for pk, count, latest in session.execute(
                select(Run.experiment_id, func.count(), func.max(Run.start_time))
                .where(Run.project_id == project_id, Run.experiment_id.in_(pks), Run.lifecycle_stage == ACTIVE)
                .group_by(Run.experiment_id)
            )
        }
    result = {}
    for e in experiments:
        count, latest = stats.get(e.id, (0, None))
        result[e.id] = ExperimentSummary(int(count), max(e.last_update_time or 0, latest or 0))
    return result


def count_experiments(session: Session, project_id: str) -> int:
    return int(session.scalar(
        select(func.count()).select_from(Experiment).where(
            Experiment.project_id == project_id, Experiment.lifecycle_stage == ACTIVE)
    ) or 0)


# --------------------------------------------------------------------------- runs table columns
@dataclass
class ColumnKeys:
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def _recent_run_ids(project_id: str, experiment_pk: int, limit: int):
    return (
        select(Run.id)
        .where(Run.project_id == project_id, Run.experiment_id == experiment_pk)
        .order_by(Run.start_time.desc(), Run.id.desc())
        .limit(limit)
        .scalar_subquery()
    )


def discover_keys(session: Session, project_id: str, experiment_pk: int, *,
                  sample: int = KEY_SAMPLE_RUNS, cap: int = MAX_KEYS_PER_KIND) -> ColumnKeys:
    """Param, metric and tag keys used by the experiment's newest ``sample`` runs."""
    keys = ColumnKeys()
    for table, target in ((Param, keys.params), (LatestMetric, keys.metrics), (RunTag, keys.tags)):
        recent = _recent_run_ids(project_id, experiment_pk, sample)
        target.extend(session.scalars(
            select(table.key).distinct().where(table.run_id.in_(recent)).order_by(table.key).limit(cap)
        ))
    return keys


def export_keys(session: Session, project_id: str, experiment_pk: int, stages: Sequence[str]) -> ColumnKeys:
    """Every param and metric key of the experiment's runs (for the CSV header),
    capped at ``MAX_EXPORT_KEYS`` per kind."""
    keys = ColumnKeys()
    runs = select(Run.id).where(
        Run.project_id == project_id, Run.experiment_id == experiment_pk, Run.lifecycle_stage.in_(list(stages))
    )
    for table, target in ((Param, keys.params), (LatestMetric, keys.metrics)):
        target.extend(session.scalars(
            select(table.key).distinct().where(table.run_id.in_(runs)).order_by(table.key).limit(MAX_EXPORT_KEYS)
        ))
    return keys


# --------------------------------------------------------------------------- runs
def runs_by_pks(session: Session, project_id: str, pks: Sequence[int]) -> dict[int, Run]:
    pks = sorted(set(pks))
    if not pks:
        return {}
    return {r.id: r for r in session.scalars(select(Run).where(Run.project_id == project_id, Run.id.in_(pks)))}


def runs_by_iids(session: Session, project_id: str, iids: Sequence[int], experiment_pk: Optional[int] = None) -> list[Run]:
    """Runs with these IIDs, in the order asked, skipping unknown ones."""
    iids = list(dict.fromkeys(int(i) for i in iids))
    if not iids:
        return []
    stmt = select(Run).where(Run.project_id == project_id, Run.iid.in_(iids))
    if experiment_pk is not None:
        stmt = stmt.where(Run.experiment_id == experiment_pk)
    found = {r.iid: r for r in session.scalars(stmt)}
    return [found[i] for i in iids if i in found]


def child_runs(session: Session, project_id: str, run: Run, limit: int = 50) -> tuple[list[Run], int]:
    """Up to ``limit`` children of ``run`` (newest first) and how many there are."""
    where = (Run.project_id == project_id, Run.parent_id == run.id)
    children = list(session.scalars(
        select(Run).where(*where).order_by(Run.start_time.desc(), Run.id.desc()).limit(limit)
    ))
    total = len(children)
    if total == limit:
        total = int(session.scalar(select(func.count()).select_from(Run).where(*where)) or 0)
    return children, total


# --------------------------------------------------------------------------- trash
def deleted_experiments_page(session: Session, project_id: str, limit: int, cursor: Optional[str]) -> Page:
    stmt = select(Experiment).where(Experiment.project_id == project_id, Experiment.lifecycle_stage == DELETED)
    atoms = (Atom(func.coalesce(Experiment.deleted_time, 0), False, False, int), Atom(Experiment.id, False, False, int))
    return keyset_page(session, stmt, "ui-trash-experiments", atoms, limit, cursor)


def deleted_runs_page(session: Session, project_id: str, limit: int, cursor: Optional[str]) -> Page:
    """Deleted runs of experiments that are not deleted themselves (a deleted
    experiment's runs are restored or purged with it)."""
    stmt = (
        select(Run)
        .join(Experiment, Experiment.id == Run.experiment_id)
        .where(Run.project_id == project_id, Run.lifecycle_stage == DELETED, Experiment.lifecycle_stage == ACTIVE)
    )
    atoms = (Atom(func.coalesce(Run.deleted_time, 0), False, False, int), Atom(Run.id, False, False, int))
    return keyset_page(session, stmt, "ui-trash-runs", atoms, limit, cursor)


def run_counts(session: Session, project_id: str, experiment_pks: Sequence[int]) -> dict[int, int]:
    """All runs (any lifecycle stage) per experiment."""
    if not experiment_pks:
        return {}
    return dict(session.execute(
        select(Run.experiment_id, func.count())
        .where(Run.project_id == project_id, Run.experiment_id.in_(list(experiment_pks)))
        .group_by(Run.experiment_id)
    ).tuples().all())


# --------------------------------------------------------------------------- models
def version_counts(session: Session, model_pks: Sequence[int]) -> dict[int, int]:
    """Live (not deleted) versions per registered model."""
    if not model_pks:
        return {}
    return dict(session.execute(
        select(ModelVersion.registered_model_id, func.count())
        .where(ModelVersion.registered_model_id.in_(list(model_pks)), ModelVersion.deleted.is_(False))
        .group_by(ModelVersion.registered_model_id)
    ).tuples().all())


def runs_by_uuids(session: Session, project_id: str, uuids: Sequence[str]) -> dict[str, Run]:
    uuids = sorted({u for u in uuids if u})
    if not uuids:
        return {}
    return {r.run_uuid: r for r in session.scalars(
        select(Run).where(Run.project_id == project_id, Run.run_uuid.in_(uuids)))}


# --------------------------------------------------------------------------- packages
def package_sizes(session: Session, package_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(file count, total bytes) per package."""
    if not package_ids:
        return {}
    return {
        pid: (int(n), int(size or 0))
        for pid, n, size in session.execute(
            select(PackageFile.package_id, func.count(), func.sum(PackageFile.size))
            .where(PackageFile.package_id.in_(list(package_ids)))
            .group_by(PackageFile.package_id)
        )
    }


def package_files_page(session: Session, package: Package, limit: int, cursor: Optional[str]) -> Page:
    stmt = select(PackageFile).where(PackageFile.package_id == package.id)
    atoms = (Atom(PackageFile.file_path, True, False, str),)
    return keyset_page(session, stmt, "ui-package-files", atoms, limit, cursor)
