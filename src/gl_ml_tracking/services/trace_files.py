"""Files of a trace in the package registry: the ``traces.json`` the MLflow client uploads
when it could not send the spans over OTLP, and the attachments of its spans.

Where (part of the artifact scheme of ``services/artifacts.py``): a trace's
``mlflow.artifactLocation`` is ``mlflow-artifacts:/ml_experiment_<exp iid>/traces/<trace id>/artifacts``
(the shape of MLflow's own ``<experiment location>/traces/<trace id>/artifacts``); the files
below it live in the experiment's generic package ``ml_experiment_<exp iid>``, version
``<trace id>``. Only MLflow's trace ids (``tr-`` and 32 hex digits) have files: run versions are
digits and logged models ``m-...``, so the three never collide, and purging the experiment
(deleting its package) takes the trace files with it.

Functions for other modules (all scoped by ``project_id``):

* ``trace_artifact_location(experiment_iid, trace_id)`` -> the ``mlflow-artifacts:/`` URI
* ``check_trace(session, project_id, experiment_pk, trace_id)``: ResourceDoesNotExist unless
  the trace is in that experiment of the project (the artifacts proxy asks before any upload)
* ``data_file(session, project_id, experiment_iid, trace_id)`` -> the ``traces.json`` row or None
* ``attachment(session, project_id, experiment_iid, trace_id, attachment_id)`` -> the file row
* ``delete_files(session, project_id, experiment_iid, trace_ids)``: every file of those traces
"""
from __future__ import annotations

import re
import uuid
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Package, PackageFile, Trace
from . import package_writes
from . import packages as pkg
from .uris import experiment_artifact_location, experiment_package_name

TRACES_DIR = "traces"
ARTIFACTS_DIR = "artifacts"
TRACE_DATA_FILE = "traces.json"  # the name MLflow's client uploads and downloads
ATTACHMENTS_DIR = "attachments"  # the client's span attachments, one file per UUID
TRACE_ID_RE = re.compile(r"\Atr-[0-9a-f]{32}\Z")
_CHUNK = 500


def trace_artifact_location(experiment_iid: int, trace_id: str) -> str:
    """The trace's ``mlflow.artifactLocation`` tag (where the client puts ``traces.json``)."""
    return f"{experiment_artifact_location(experiment_iid)}/{TRACES_DIR}/{trace_id}/{ARTIFACTS_DIR}"


def trace_version(trace_id: str) -> str:
    """The package version holding a trace's files (its id)."""
    return trace_id


def check_trace(session: Session, project_id: str, experiment_pk: int, trace_id: str) -> None:
    if not TRACE_ID_RE.match(trace_id):
        raise ResourceDoesNotExist(f"No trace {trace_id!r}: trace files belong to MLflow trace ids (tr-<32 hex>).")
    found = session.scalars(select(Trace.id).where(
        Trace.project_id == project_id, Trace.trace_id == trace_id, Trace.experiment_id == experiment_pk)).first()
    if found is None:
        raise ResourceDoesNotExist(f"Trace with ID {trace_id} is not found.")


def data_file(session: Session, project_id: str, experiment_iid: int, trace_id: str) -> Optional[PackageFile]:
    """The trace's uploaded ``traces.json``, if there is one."""
    if not TRACE_ID_RE.match(trace_id):
        return None
    package = pkg.find_package(session, project_id, experiment_package_name(experiment_iid), trace_version(trace_id))
    return pkg.find_file(session, package, TRACE_DATA_FILE) if package is not None else None


def attachment(session: Session, project_id: str, experiment_iid: int, trace_id: str, attachment_id: str) -> PackageFile:
    """One attachment of the trace's spans (named by its canonical UUID, as MLflow names them)."""
    try:
        canonical = str(uuid.UUID(attachment_id)) == attachment_id
    except (ValueError, TypeError, AttributeError):
        canonical = False
    if not canonical:
        raise InvalidParameter(f"Invalid attachment path: {attachment_id!r}. Attachment path must be a valid UUID.")
    return pkg.get_file(session, project_id, experiment_package_name(experiment_iid), trace_version(trace_id),
                        f"{ATTACHMENTS_DIR}/{attachment_id}")


def data_files(session: Session, project_id: str, wanted: Iterable[tuple[int, str]]) -> dict[tuple[int, str], PackageFile]:
    """The ``traces.json`` of several ``(experiment iid, trace id)`` pairs, in one statement per
    chunk; pairs without one are left out."""
    pairs = [(iid, t) for iid, t in dict.fromkeys(wanted) if TRACE_ID_RE.match(t)]
    asked = set(pairs)
    found: dict[tuple[int, str], PackageFile] = {}
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start:start + _CHUNK]
        names = {experiment_package_name(iid): iid for iid, _ in chunk}
        rows = session.execute(
            select(Package.name, Package.version, PackageFile)
            .join(PackageFile, PackageFile.package_id == Package.id)
            .where(Package.project_id == project_id, Package.package_type == pkg.GENERIC,
                   Package.name.in_(list(names)), Package.version.in_([t for _, t in chunk]),
                   PackageFile.file_path == TRACE_DATA_FILE))
        for name, version, file in rows:
            if (names[name], version) in asked:  # not another experiment's leftover of the same id
                found[(names[name], version)] = file
    return found


def delete_files(session: Session, project_id: str, experiment_iid: int, trace_ids: Iterable[str]) -> int:
    """Delete every file of the traces (their storage objects go after the commit); the
    number of files deleted."""
    ids = [t for t in trace_ids if TRACE_ID_RE.match(t)]
    name = experiment_package_name(experiment_iid)
    total = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        total += package_writes.delete_packages(session, project_id, name, [trace_version(t) for t in chunk])
    return total
