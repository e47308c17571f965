"""A model version's files as the ``ml_model`` package ``<model name>`` / ``<version>``.

GitLab's convention: the package *references* the storage objects of the run's or
logged model's files (``package_writes.share_files``: new rows, same storage keys, no bytes
copied). An object is removed only when no package file refers to it any more, so
deleting a version never deletes the logged model's bytes.

Its own module because both a version's creation and a logged model's finalization
share files, and neither of those modules should import the other for it.
"""
from __future__ import annotations

from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import LoggedModel, ModelVersion, RegisteredModel

__all__ = ["share_version_files", "share_files_of_logged_model"]

def share_version_files(session: Session, project_id: str, mv: ModelVersion) -> None:
    """Expose the version's files as package ``<model name>``/``<version>`` (shared
    storage objects). Nothing to share yet (a logged model still uploading) is fine:
    finalizing the logged model shares them then."""
    from . import artifacts, package_writes, packages

    location = mv.storage_location or ""
    if not location.startswith("mlflow-artifacts:"):
        return
    try:
        package_name, version, prefix = artifacts.resolve_artifact_path(session, project_id, urlparse(location).path.lstrip("/"))
    except (ResourceDoesNotExist, InvalidParameter):
        return
    src = packages.find_package(session, project_id, package_name, version)
    if src is None or not packages.package_files(session, src, prefix + "/" if prefix else ""):
        return
    package_writes.share_files(session, project_id, package_name, version, mv.registered_model.name, str(mv.version), prefix=prefix)


def share_files_of_logged_model(session: Session, project_id: str, model: LoggedModel) -> None:
    """(Re)share a logged model's files with every live version registered from it."""
    versions = session.scalars(
        select(ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.registered_model_id)
        .where(RegisteredModel.project_id == project_id, ModelVersion.model_id == model.model_id, ModelVersion.deleted.is_(False))
    )
    for mv in list(versions):
        share_version_files(session, project_id, mv)
