"""Removing package files that nothing needs any more.

Two kinds of garbage:

* **owner-less packages**: run artifacts (``ml_experiment_<iid>``/``<run iid>``), logged
  model files (``ml_experiment_<iid>``/``<model id>``), trace files (``ml_experiment_<iid>``/
  ``<trace id>``: ``traces.json``, attachments) and registered model versions
  (``ml_model`` packages ``<model name>``/``<version>``) whose experiment, run, logged model,
  trace or model version no longer exists, e.g. removed by a bulk delete that bypassed the
  services, or by a crash between the database commit and the storage deletion;
* **orphan objects**: storage objects no package file row (nor span row: big span payloads,
  ``services/span_payloads.py``) refers to, e.g. an upload whose transaction never committed
  and whose clean-up did not run (killed worker), or a big span sent again by a retried export.

Permanent deletion through the services (``delete_*_files`` below, ``services.trash``)
removes files right away; ``flask ml-tracking gc`` finds what slipped through. Objects
younger than a grace period are never touched: their rows may simply not be committed yet.

Generic packages with other names belong to users (the generic packages API) and are kept.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from ..models import Experiment, LoggedModel, ModelVersion, Package, PackageFile, RegisteredModel, Run, Span, Trace
from ..registry.storage import Storage
from . import artifacts
from . import package_writes
from . import packages as pkg
from . import trace_files
from .common import now_ms
from .package_storage import storage_key_time
from .uris import experiment_package_name

DEFAULT_GRACE_MS = 24 * 3600 * 1000  # longer than an upload token lives
_EXPERIMENT_RE = re.compile(r"\Aml_experiment_(0|[1-9][0-9]{0,17})\Z")
_RUN_RE = re.compile(r"\A(0|[1-9][0-9]{0,17})\Z")
_MODEL_RE = re.compile(r"\Am-[0-9a-f]{32}\Z")
_BATCH = 500


# --------------------------------------------------------------------------- on permanent delete


def delete_run_files(session: Session, project_id: str, experiment_iid: int, run_iid: int) -> int:
    """Every artifact of a run (storage objects go once the transaction commits)."""
    return artifacts.delete_artifacts(session, project_id, experiment_package_name(experiment_iid), str(run_iid))


def delete_logged_model_files(session: Session, project_id: str, experiment_iid: int, model_id: str) -> int:
    return artifacts.delete_artifacts(session, project_id, experiment_package_name(experiment_iid),
                                      artifacts.logged_model_version(model_id))


def delete_experiment_files(session: Session, project_id: str, experiment_iid: int) -> int:
    """Every artifact of every run and logged model of an experiment."""
    return package_writes.delete_packages(session, project_id, experiment_package_name(experiment_iid))


def delete_model_version_files(session: Session, project_id: str, model_name: str, version: int | str) -> int:
    """The ``ml_model`` package of a registered model version. Objects it shares with a
    logged model (``package_writes.share_files``) stay as long as the logged model has them."""
    return package_writes.delete_packages(session, project_id, model_name, [str(version)], package_type=pkg.ML_MODEL)


# --------------------------------------------------------------------------- finding garbage


@dataclass
class GcReport:
    orphan_packages: list[tuple[str, str, str, str]] = field(default_factory=list)  # project, type, name, version
    orphan_objects: list[str] = field(default_factory=list)
    files_deleted: int = 0
    objects_deleted: int = 0
    bytes_in_orphan_objects: Optional[int] = None
    stale_uploads: list[str] = field(default_factory=list)  # leftovers of unfinished uploads


def _batches(items: Iterable, size: int = _BATCH) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _experiment_package_orphans(session: Session, packages: list[Package]) -> list[Package]:
    parsed = []
    for p in packages:
        m = _EXPERIMENT_RE.match(p.name)
        if m:
            parsed.append((p, int(m.group(1))))
    if not parsed:
        return []
    exp_keys = {(p.project_id, iid) for p, iid in parsed}
    experiments = {(proj, iid): pk for pk, proj, iid in session.execute(
        select(Experiment.id, Experiment.project_id, Experiment.iid)
        .where(tuple_(Experiment.project_id, Experiment.iid).in_(list(exp_keys))))}
    run_keys = {(p.project_id, int(p.version)) for p, _ in parsed if _RUN_RE.match(p.version)}
    runs = {(proj, iid): exp for proj, iid, exp in session.execute(
        select(Run.project_id, Run.iid, Run.experiment_id)
        .where(tuple_(Run.project_id, Run.iid).in_(list(run_keys))))} if run_keys else {}
    model_ids = {p.version for p, _ in parsed if _MODEL_RE.match(p.version)}
    models = {(proj, mid): exp for proj, mid, exp in session.execute(
        select(LoggedModel.project_id, LoggedModel.model_id, LoggedModel.experiment_id)
        .where(LoggedModel.model_id.in_(list(model_ids))))} if model_ids else {}
    trace_ids = {p.version for p, _ in parsed if trace_files.TRACE_ID_RE.match(p.version)}
    traces = {(proj, tid): exp for proj, tid, exp in session.execute(
        select(Trace.project_id, Trace.trace_id, Trace.experiment_id)
        .where(Trace.trace_id.in_(list(trace_ids))))} if trace_ids else {}
    orphans = []
    for p, iid in parsed:
        exp_pk = experiments.get((p.project_id, iid))
        if exp_pk is None:
            orphans.append(p)
        elif _RUN_RE.match(p.version):
            if runs.get((p.project_id, int(p.version))) != exp_pk:
                orphans.append(p)
        elif _MODEL_RE.match(p.version):
            if models.get((p.project_id, p.version)) != exp_pk:
                orphans.append(p)
        elif trace_files.TRACE_ID_RE.match(p.version):
            if traces.get((p.project_id, p.version)) != exp_pk:
                orphans.append(p)
        # Any other version under an experiment's name is not ours to judge.
    return orphans


def _model_package_orphans(session: Session, packages: list[Package]) -> list[Package]:
    candidates = [p for p in packages if p.package_type == pkg.ML_MODEL]
    if not candidates:
        return []
    names = {(p.project_id, p.name) for p in candidates}
    models = {(proj, name): pk for pk, proj, name in session.execute(
        select(RegisteredModel.id, RegisteredModel.project_id, RegisteredModel.name)
        .where(tuple_(RegisteredModel.project_id, RegisteredModel.name).in_(list(names))))}
    versions = set()
    if models:
        versions = {(mid, v) for mid, v in session.execute(
            select(ModelVersion.registered_model_id, ModelVersion.version)
            .where(ModelVersion.registered_model_id.in_(list(models.values())), ModelVersion.deleted.is_(False)))}
    orphans = []
    for p in candidates:
        model_pk = models.get((p.project_id, p.name))
        if model_pk is None:
            orphans.append(p)
        elif _RUN_RE.match(p.version) and (model_pk, int(p.version)) not in versions:
            orphans.append(p)
    return orphans


def find_orphan_packages(session: Session) -> Iterator[Package]:
    """Packages (of every project) whose owner is gone, streamed in batches."""
    last_id = 0
    while True:
        batch = list(session.scalars(select(Package).where(Package.id > last_id).order_by(Package.id).limit(_BATCH)))
        if not batch:
            return
        last_id = batch[-1].id
        generic = [p for p in batch if p.package_type == pkg.GENERIC]
        yield from _experiment_package_orphans(session, generic)
        yield from _model_package_orphans(session, batch)


def find_orphan_objects(session: Session, storage: Storage, grace_ms: int = DEFAULT_GRACE_MS,
                        now: Optional[int] = None) -> Iterator[str]:
    """Storage keys made by the registry that no file row refers to and that are older
    than ``grace_ms`` (keys of unknown age are left alone too)."""
    cutoff = (now if now is not None else now_ms()) - grace_ms
    def old_enough(key: str) -> bool:
        made = storage_key_time(key)
        return made is not None and made < cutoff

    for batch in _batches(k for k in storage.iter_keys("projects/") if old_enough(k)):
        referenced = _referenced(session, batch)
        yield from (k for k in batch if k not in referenced)


def _referenced(session: Session, keys: list[str]) -> set[str]:
    """The keys a package file or a span (its stored payload) refers to."""
    found = set(session.scalars(select(PackageFile.storage_key).where(PackageFile.storage_key.in_(keys))))
    return found | set(session.scalars(select(Span.payload_key).where(Span.payload_key.in_(keys))))


# --------------------------------------------------------------------------- collecting


def collect_garbage(session: Session, storage: Storage, *, dry_run: bool = False,
                    grace_ms: int = DEFAULT_GRACE_MS,
                    progress: Optional[Callable[[str, int, Optional[int]], None]] = None) -> GcReport:
    """Find (and unless ``dry_run`` remove) orphan packages and orphan objects.

    ``progress(stage, n, total)`` is called as work advances (stage 'packages' or 'objects',
    ``n`` items done since the last call, ``total`` if known), for a progress bar. Commits after each batch of
    packages so a long run holds no long transaction.
    """
    report = GcReport()
    tick = progress or (lambda _stage, _n, _total: None)
    orphans = list(find_orphan_packages(session))
    for package in orphans:
        report.orphan_packages.append((package.project_id, package.package_type, package.name, package.version))
    for batch in _batches(orphans, 50):
        if not dry_run:
            for package in batch:
                report.files_deleted += package_writes.delete_package(session, package, storage)
            session.commit()  # the objects go right after, in the commit hook
        tick("packages", len(batch), len(orphans))
    if dry_run:
        session.rollback()

    for batch in _batches(find_orphan_objects(session, storage, grace_ms)):
        report.orphan_objects.extend(batch)
        if not dry_run:
            # Checked again right before deleting: a row may have been committed meanwhile.
            still = _referenced(session, batch)
            for key in batch:
                if key not in still:
                    storage.delete(key)
                    report.objects_deleted += 1
        tick("objects", len(batch), None)
    session.rollback()  # end the read transaction

    # Unfinished uploads (a server killed mid-save, an abandoned multipart upload) are
    # not objects yet: the storage finds its own leftovers older than the grace period.
    report.stale_uploads = storage.stale_uploads(grace_ms / 1000)
    if not dry_run:
        for name in report.stale_uploads:
            storage.remove_stale_upload(name)
    return report
