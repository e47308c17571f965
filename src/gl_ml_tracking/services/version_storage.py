"""Where a new model version's files are, and the lineage MLflow gives it.

``version_sources`` says which sources are accepted; this module looks sources up in *this*
project only:

* ``lineage``: ``models:/<name>/<ref>`` and ``models:/<name>@<alias>`` become
  ``models:/<name>/<version>`` and inherit that version's run and logged model (MLflow's
  ``_resolve_registered_model_source_lineage``);
* ``locate``: the ``storage_location`` whose files the version shares (``mlflow-artifacts:/``
  of a run or logged model of this project), the referenced version's location for
  ``models:/<name>/<version>``, or None: a source that is not here (a run of no project
  here, ``s3://``...) is only stored, and its download URI is the source itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import LoggedModel, ModelVersion, RegisteredModelTag
from .model_aliases import get_version_by_alias
from .registered_models import get_model_version, get_registered_model
from .version_sources import IS_PROMPT_TAG, Lineage, bad_source, parse_models_uri

__all__ = ["Located", "lineage", "locate", "logged_model", "model_root", "run_root"]


@dataclass(frozen=True)
class Located:
    storage_location: Optional[str]
    model_id: Optional[str] = None
    run_id: Optional[str] = None  # a logged model's source run, MLflow's default run_id


def run_root(session: Session, project_id: str, run_id: Optional[str]) -> Optional[str]:
    """The artifact root of this project's run ``run_id``, None when there is none here."""
    from .lookups import get_run
    from .uris import run_artifact_uri

    if not run_id:
        return None
    try:
        run = get_run(session, project_id, run_id)
    except (ResourceDoesNotExist, InvalidParameter):
        return None
    return run_artifact_uri(run.experiment.iid, run.iid)


def logged_model(session: Session, project_id: str, model_id: Optional[str]) -> Optional[LoggedModel]:
    """This project's logged model ``model_id``, None when there is none here."""
    from .lookups import get_logged_model

    if not model_id:
        return None
    try:
        return get_logged_model(session, project_id, model_id)
    except (ResourceDoesNotExist, InvalidParameter):
        return None


def model_root(session: Session, project_id: str, model_id: Optional[str]) -> Optional[str]:
    from .logged_models import artifact_location

    model = logged_model(session, project_id, model_id)
    return artifact_location(model.experiment.iid, model.model_id) if model is not None else None


def _referenced_version(session: Session, project_id: str, source: str, name: str, ref: str) -> ModelVersion:
    registered = get_registered_model(session, project_id, name)
    is_prompt = session.scalar(select(RegisteredModelTag.value).where(
        RegisteredModelTag.registered_model_id == registered.id, RegisteredModelTag.key == IS_PROMPT_TAG))
    if str(is_prompt or "").lower() == "true":
        raise bad_source(source, "Prompt versions cannot be used as model version sources.")
    if ref.startswith("@"):
        return get_version_by_alias(session, project_id, name, ref[1:])
    if ref.isdecimal():  # not isdigit: "²" is no version number
        return get_model_version(session, project_id, name, ref)
    if ref.lower() == "latest":
        return get_version_by_alias(session, project_id, name, "latest")
    found = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.registered_model_id == registered.id, ModelVersion.deleted.is_(False),
               ModelVersion.current_stage == ref.capitalize())
        .order_by(ModelVersion.version.desc())
        .limit(1)
    ).first()
    if found is None:
        raise ResourceDoesNotExist(f"No versions of model {name} in stage {ref}.")
    return found


def lineage(session: Session, project_id: str, source: str, run_id: Optional[str], model_id: Optional[str], *,
            has_run_id: bool, has_model_id: bool) -> tuple[Lineage, Optional[ModelVersion]]:
    """The source, run and logged model as MLflow stores them, and the version a
    ``models:/<name>/...`` source refers to (None for other sources)."""
    if urlparse(source).scheme.lower() != "models":
        return Lineage(source, run_id, model_id), None
    source_model_id, name, ref = parse_models_uri(source)
    if source_model_id is not None:
        return Lineage(source, run_id, model_id), None
    mv = _referenced_version(session, project_id, source, name, ref)
    if (has_run_id and (run_id or "") != (mv.run_uuid or "")) or (has_model_id and (model_id or "") != (mv.model_id or "")):
        raise bad_source(source, "The run_id and model_id request parameters must match the referenced model version.")
    return Lineage(f"models:/{mv.registered_model.name}/{mv.version}",
                   run_id if has_run_id else mv.run_uuid, model_id if has_model_id else mv.model_id), mv


def _locate_run_source(session: Session, project_id: str, source: str) -> Located:
    """``runs:/<run_id>/<path>`` of a run of this project: the run's artifacts under
    ``path`` or, when it has none there, its logged model named ``path`` (MLflow 3 logs
    models outside the run's artifacts)."""
    from . import artifacts, packages
    from .logged_models import artifact_location
    from .lookups import get_run
    from .uris import run_artifact_uri

    run_id, _, sub = urlparse(source).path.lstrip("/").partition("/")
    try:
        run = get_run(session, project_id, run_id)
    except (ResourceDoesNotExist, InvalidParameter):
        return Located(None)  # a run that is not here: the source is only stored
    sub = sub.strip("/")
    run_uri = run_artifact_uri(run.experiment.iid, run.iid)
    package_name, version, _ = artifacts.resolve_artifact_path(session, project_id, run_uri[len("mlflow-artifacts:/"):])
    package = packages.find_package(session, project_id, package_name, version)
    if package is not None and packages.package_files(session, package, sub + "/" if sub else ""):
        return Located(f"{run_uri}/{sub}" if sub else run_uri)
    head, _, rest = sub.partition("/")
    model = session.scalars(
        select(LoggedModel)
        .where(LoggedModel.project_id == project_id, LoggedModel.source_run_uuid == run.run_uuid,
               LoggedModel.name == head, LoggedModel.lifecycle_stage == "active")
        .order_by(LoggedModel.creation_time.desc())
        .limit(1)
    ).first()
    if model is None:
        return Located(f"{run_uri}/{sub}" if sub else run_uri)
    location = artifact_location(model.experiment.iid, model.model_id)
    return Located(f"{location}/{rest}" if rest else location, model.model_id)


def locate(session: Session, project_id: str, source: str, referenced: Optional[ModelVersion]) -> Located:
    """Where the files of a version from ``source`` (already accepted) are here, if anywhere."""
    from .logged_models import artifact_location
    from .lookups import get_logged_model

    if referenced is not None:
        return Located(referenced.storage_location or referenced.source, referenced.model_id)
    scheme = urlparse(source).scheme.lower()
    if scheme == "runs":
        return _locate_run_source(session, project_id, source)
    if scheme == "models":
        model_id, _, _ = parse_models_uri(source)
        try:
            model = get_logged_model(session, project_id, model_id)
        except (ResourceDoesNotExist, InvalidParameter):
            raise bad_source(source, f"No logged model {model_id} in this project.") from None
        return Located(artifact_location(model.experiment.iid, model.model_id), model.model_id, model.source_run_uuid)
    if scheme == "mlflow-artifacts":
        return Located(source)  # accepted only inside a root of this project's run or model
    return Located(None)
