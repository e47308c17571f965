"""MLflow artifact paths mapped onto the package registry.

THE SCHEME (other modules build URIs with it; keep it stable)
-------------------------------------------------------------
The MLflow client resolves ``mlflow-artifacts:/<X>`` to
``<tracking URI>/api/2.0/mlflow-artifacts/artifacts/<X>``. ``<X>`` is mapped onto one
generic package of the current project:

===========================================================  ===========================  ==============  ==========
artifact path ``<X>``                                        package name                 version         file path
===========================================================  ===========================  ==============  ==========
``ml_experiment_<exp iid>/<run iid>/<path>``                 ``ml_experiment_<exp iid>``  ``<run iid>``   ``<path>``
``ml_experiment_<exp iid>/models/<model_id>/<p>``            ``ml_experiment_<exp iid>``  ``<model_id>``  ``<p>``
``ml_experiment_<exp iid>/traces/<trace_id>/artifacts/<p>``  ``ml_experiment_<exp iid>``  ``<trace_id>``  ``<p>``
===========================================================  ===========================  ==============  ==========

* Run artifacts follow GitLab's convention: package ``ml_experiment_<experiment iid>``,
  version ``<run iid>`` (a run's ``artifact_uri`` is
  ``mlflow-artifacts:/ml_experiment_<exp iid>/<run iid>``, see ``services/uris.py``).
* MLflow 3 logged models live in the *same* package as the runs of their experiment, with
  the model id (``m-<32 hex>``) as the version: a logged model's ``artifact_location`` is
  ``mlflow-artifacts:/ml_experiment_<exp iid>/models/<model_id>`` (build it with
  :func:`logged_model_artifact_location`). Run versions are digits and model ids start with
  ``m-``, so the two never collide, and deleting an experiment's package removes both.
* MLflow 3 traces keep their files (``traces.json`` when the client could not send the
  spans over OTLP, span attachments) in the same package, version = the trace id
  (``tr-<32 hex>``): a trace's ``mlflow.artifactLocation`` is
  ``mlflow-artifacts:/ml_experiment_<exp iid>/traces/<trace_id>/artifacts``, MLflow's own
  layout (``services/trace_files.py``).
* Registered model versions (GitLab's convention: a package named after the model, version
  = the version number, type ``ml_model``) are the model registry's business; it can share a
  logged model's files without copying bytes with ``services.package_writes.share_files``.

Every path is resolved inside the current project only, and the run (logged model, trace) must
exist there: ``resolve_artifact_path`` raises ResourceDoesNotExist otherwise.

Functions for other modules (all scoped by ``project_id``; ``session`` is the SQLAlchemy one):

* ``resolve_artifact_path(session, project_id, path) -> (package_name, version, file_path)``
* ``store_artifact(session, project_id, package_name, version, file_path, stream, content_type=None)``
  -> PackageFile (streams ``stream`` into storage; ``signals.artifact_stored`` follows the commit)
* ``complete_artifact_upload(session, project_id, package_name, version, file_path, key, upload_id, parts)``
  -> PackageFile (a multipart upload's parts assembled; the same signal)
* ``list_artifacts(session, project_id, package_name, version, dir_path="")``
  -> list of MLflow FileInfo dicts ``{"path", "is_dir", "file_size"?}``, paths relative to dir
* ``open_artifact(session, project_id, package_name, version, file_path, start=0, end=None)``
  -> (PackageFile, iterator of bytes)
* ``delete_artifacts(session, project_id, package_name, version, path="")``
* ``logged_model_artifact_location(experiment_iid, model_id)`` -> the ``mlflow-artifacts:/`` URI
* ``list_path(session, project_id, path)``: listing of any artifact path, also above a run
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import signals
from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Experiment, LoggedModel, Package, PackageFile, Run
from . import package_writes, trace_files
from . import packages as pkg
from .uris import experiment_package_name

MODELS_DIR = "models"
_EXPERIMENT_RE = re.compile(r"\Aml_experiment_(0|[1-9][0-9]{0,17})\Z")
_RUN_IID_RE = re.compile(r"\A(0|[1-9][0-9]{0,17})\Z")
_MODEL_ID_RE = re.compile(r"\Am-[0-9a-f]{32}\Z")


def logged_model_version(model_id: str) -> str:
    """The package version holding a logged model's files (its id)."""
    return model_id


def logged_model_artifact_location(experiment_iid: int, model_id: str) -> str:
    """``artifact_location`` of a logged model (what the client uploads its files under)."""
    return f"mlflow-artifacts:/{experiment_package_name(experiment_iid)}/{MODELS_DIR}/{model_id}"


@dataclass(frozen=True)
class ArtifactLocation:
    """Where an artifact path points: a package (name, version) and a path inside it."""

    package_name: str
    version: str
    file_path: str  # '' = the root of the package


def _split(path: Any) -> list[str]:
    path = pkg.validate_file_path(path, allow_empty=True, what="artifact path")
    return path.split("/") if path else []


def _experiment(session: Session, project_id: str, segment: str) -> Experiment:
    match = _EXPERIMENT_RE.match(segment)
    if not match:
        raise ResourceDoesNotExist(f"No artifact root {segment!r}: artifact paths start with ml_experiment_<experiment id>.")
    experiment = session.scalars(select(Experiment).where(
        Experiment.project_id == project_id, Experiment.iid == int(match.group(1)))).one_or_none()
    if experiment is None:
        raise ResourceDoesNotExist(f"Could not find experiment with ID {match.group(1)}")
    return experiment


def _check_run(session: Session, project_id: str, experiment: Experiment, run_iid: str) -> None:
    run = session.scalars(select(Run.id).where(
        Run.project_id == project_id, Run.iid == int(run_iid), Run.experiment_id == experiment.id)).one_or_none()
    if run is None:
        raise ResourceDoesNotExist(f"Run {run_iid} not found in experiment {experiment.iid}")


def _check_model(session: Session, project_id: str, experiment: Experiment, model_id: str) -> None:
    found = session.scalars(select(LoggedModel.id).where(
        LoggedModel.project_id == project_id, LoggedModel.model_id == model_id,
        LoggedModel.experiment_id == experiment.id)).one_or_none()
    if found is None:
        raise ResourceDoesNotExist(f"Logged model {model_id} not found in experiment {experiment.iid}")


def resolve_artifact_path(session: Session, project_id: str, path: Any) -> tuple[str, str, str]:
    """``(package_name, version, file_path)`` of an artifact path (see the scheme above).

    ``file_path`` is '' for the root of a run or model. The run or logged model must exist
    in the project (ResourceDoesNotExist otherwise); bad paths are InvalidParameter.
    """
    loc = _resolve(session, project_id, _split(path))
    if loc is None:
        raise ResourceDoesNotExist(
            "Artifact paths look like ml_experiment_<experiment id>/<run id>/<path>, "
            "ml_experiment_<experiment id>/models/<model id>/<path> "
            "or ml_experiment_<experiment id>/traces/<trace id>/artifacts/<path>.")
    return loc.package_name, loc.version, loc.file_path


def _resolve(session: Session, project_id: str, parts: list[str]) -> Optional[ArtifactLocation]:
    """The location of ``parts``, or None for the levels above a run or model."""
    if len(parts) < 2:
        if parts:
            _experiment(session, project_id, parts[0])
        return None
    experiment = _experiment(session, project_id, parts[0])
    name = experiment_package_name(experiment.iid)
    if _RUN_IID_RE.match(parts[1]):
        _check_run(session, project_id, experiment, parts[1])
        return ArtifactLocation(name, str(int(parts[1])), "/".join(parts[2:]))
    if parts[1] == MODELS_DIR:
        if len(parts) < 3:
            return None
        if not _MODEL_ID_RE.match(parts[2]):
            raise ResourceDoesNotExist(f"No logged model {parts[2]!r}")
        _check_model(session, project_id, experiment, parts[2])
        return ArtifactLocation(name, logged_model_version(parts[2]), "/".join(parts[3:]))
    if parts[1] == trace_files.TRACES_DIR:
        return _resolve_trace(session, project_id, experiment, parts[2:])
    raise ResourceDoesNotExist(f"No run, models or traces directory {parts[1]!r} in experiment {experiment.iid}")


def _resolve_trace(session: Session, project_id: str, experiment: Experiment, parts: list[str]) -> Optional[ArtifactLocation]:
    """``<trace_id>/artifacts/<path>`` below an experiment's ``traces`` (None above a trace's root)."""
    if parts:
        trace_files.check_trace(session, project_id, experiment.id, parts[0])
    if len(parts) < 2:
        return None
    if parts[1] != trace_files.ARTIFACTS_DIR:
        raise ResourceDoesNotExist(f"A trace's files are under {parts[0]}/{trace_files.ARTIFACTS_DIR}.")
    return ArtifactLocation(experiment_package_name(experiment.iid), trace_files.trace_version(parts[0]),
                            "/".join(parts[2:]))


# --------------------------------------------------------------------------- generic hooks


def store_artifact(session: Session, project_id: str, package_name: str, version: str, file_path: str,
                   stream: Any, content_type: Optional[str] = None, *, project: Any = None,
                   content_length: Optional[int] = None, with_md5: bool = True) -> PackageFile:
    """Stream one file into the package; ``signals.artifact_stored`` subscribers hear of
    it (with ``project``, the host's) once the transaction commits. Without ``with_md5``
    the md5 is computed when the package files API first lists the file."""
    stored = package_writes.store_file(session, project_id, package_name, version, file_path, stream, content_type,
                                       content_length=content_length, with_md5=with_md5)
    _announce_stored(session, project_id, package_name, version, stored, project)
    return stored


def complete_artifact_upload(session: Session, project_id: str, package_name: str, version: str, file_path: str,
                             key: str, upload_id: str, parts: list[tuple[int, str]], *,
                             project: Any = None) -> PackageFile:
    """Assemble a multipart upload's parts into the file; announced as ``store_artifact``."""
    stored = package_writes.complete_multipart(session, project_id, package_name, version, file_path, key,
                                               upload_id, parts)
    _announce_stored(session, project_id, package_name, version, stored, project)
    return stored


def _announce_stored(session: Session, project_id: str, package_name: str, version: str, file: PackageFile,
                     project: Any) -> None:
    signals.send_after_commit(session, signals.artifact_stored, project=project, project_id=project_id,
                              package_name=package_name, version=version, file_path=file.file_path, file=file)


def _file_infos(files: list[PackageFile], dir_path: str) -> list[dict]:
    """MLflow FileInfo dicts of the direct children of ``dir_path`` among ``files``."""
    prefix = dir_path + "/" if dir_path else ""
    entries: dict[str, dict] = {}
    for f in files:
        if not f.file_path.startswith(prefix):
            continue
        rest = f.file_path[len(prefix):]
        head, sep, _ = rest.partition("/")
        if sep:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": int(f.size)}
    return [entries[k] for k in sorted(entries)]


def list_artifacts(session: Session, project_id: str, package_name: str, version: str,
                   dir_path: str = "") -> list[dict]:
    """The entries directly inside ``dir_path`` of the package, MLflow's way: ``path``
    relative to ``dir_path``, ``is_dir``, and ``file_size`` for files only. A missing
    directory, and a path that is a file, list as empty (what MLflow's server answers)."""
    dir_path = pkg.validate_file_path(dir_path, allow_empty=True, what="artifact path")
    package = pkg.find_package(session, project_id, package_name, str(version))
    if package is None:
        return []
    return _file_infos(pkg.package_files(session, package, dir_path + "/" if dir_path else ""), dir_path)


def list_path(session: Session, project_id: str, path: Any) -> list[dict]:
    """Listing for any artifact path, including the levels above a run: the experiments
    with artifacts, an experiment's runs (and ``models``, ``traces``), its logged models,
    its traces with files."""
    parts = _split(path)
    loc = _resolve(session, project_id, parts)
    if loc is not None:
        return list_artifacts(session, project_id, loc.package_name, loc.version, loc.file_path)
    packages = select(Package).where(Package.project_id == project_id, Package.package_type == pkg.GENERIC)
    if not parts:
        names = session.scalars(packages.with_only_columns(Package.name).distinct())
        return [{"path": n, "is_dir": True} for n in sorted(n for n in names if _EXPERIMENT_RE.match(n))]
    versions = list(session.scalars(packages.with_only_columns(Package.version).where(Package.name == parts[0])))
    if len(parts) == 1:
        runs = sorted((v for v in versions if _RUN_IID_RE.match(v)), key=int)
        entries = [{"path": v, "is_dir": True} for v in runs]
        if any(_MODEL_ID_RE.match(v) for v in versions):
            entries.append({"path": MODELS_DIR, "is_dir": True})
        if any(trace_files.TRACE_ID_RE.match(v) for v in versions):
            entries.append({"path": trace_files.TRACES_DIR, "is_dir": True})
        return sorted(entries, key=lambda e: e["path"])
    if parts[1] == trace_files.TRACES_DIR:
        if len(parts) == 3:  # a trace: its one directory, if it has files
            return [{"path": trace_files.ARTIFACTS_DIR, "is_dir": True}] if parts[2] in versions else []
        return [{"path": v, "is_dir": True} for v in sorted(v for v in versions if trace_files.TRACE_ID_RE.match(v))]
    return [{"path": v, "is_dir": True} for v in sorted(v for v in versions if _MODEL_ID_RE.match(v))]


def open_artifact(session: Session, project_id: str, package_name: str, version: str, file_path: str,
                  start: int = 0, end: Optional[int] = None) -> tuple[PackageFile, Iterator[bytes]]:
    """The file's row and an iterator over its bytes ``start..end``; ResourceDoesNotExist
    if there is no such file."""
    file = pkg.get_file(session, project_id, package_name, str(version), file_path)
    return file, pkg.open_file(file, start, end)


def get_artifact_file(session: Session, project_id: str, package_name: str, version: str,
                      file_path: str) -> PackageFile:
    if not file_path:
        raise ResourceDoesNotExist("The artifact path names a directory, not a file.")
    return pkg.get_file(session, project_id, package_name, str(version), file_path)


def delete_artifacts(session: Session, project_id: str, package_name: str, version: str, path: str = "") -> int:
    """Delete a file or a whole directory ('' = everything of the run or model)."""
    package = pkg.find_package(session, project_id, package_name, str(version))
    if package is None:
        return 0
    return package_writes.delete_files_under(session, package, path)


def mlflow_file_name(client_path: Any) -> str:
    """The file name of a multipart upload: MLflow's client sends its *local* path (maybe a
    Windows one) and the server keeps the base name."""
    if not isinstance(client_path, str) or not client_path:
        raise InvalidParameter("Missing value for required parameter 'path'.")
    name = re.split(r"[\\/]", client_path)[-1]
    pkg.validate_file_path(name, what="file name")
    return name
