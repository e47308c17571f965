"""Versions of registered models: creation from a source, stages, tags, deletion.

Versions are numbered 1, 2, 3... per model and a number is never reused (deleting a
version is soft: the row stays, redacted, so the next version still gets a new
number). Stages are kept for old clients (``transition-stage``, ``get-latest-versions``).

Where a version's files are: ``storage_location``, resolved once when the version is
created from its ``source``:

* ``models:/<model_id>`` (a logged model) -> the model's ``artifact_location``;
* ``models:/<name>/<version|stage|latest>`` or ``models:/<name>@<alias>`` -> that version's;
* ``runs:/<run_id>/<path>`` -> the run's artifacts under ``path`` or, when the run has
  none there, the run's logged model named ``path`` (what the MLflow 3 client does);
* ``mlflow-artifacts:/...`` must resolve inside the project; other remote URIs
  (``s3://``...) are kept as given; local paths are refused.

The version's files are then shared as its package (:mod:`.model_version_files`).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Optional, Sequence
from urllib.parse import urlparse

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import LoggedModel, ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias
from . import validation as v
from . import webhook_events
from .common import now_ms
from .model_aliases import get_version_by_alias
from .model_version_files import share_version_files
from .registered_models import (
    description_value,
    get_model_version,
    get_registered_model,
    parse_tags,
    tag_key,
    tag_value,
    upsert_tags,
    validate_name,
)

STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED = "None", "Staging", "Production", "Archived"
ALL_STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
ACTIVE_STAGES = (STAGE_STAGING, STAGE_PRODUCTION)
_MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}\Z")
_DELETED = {"source": "REDACTED-SOURCE-PATH", "run_uuid": "REDACTED-RUN-ID", "run_link": "REDACTED-RUN-LINK"}


def canonical_stage(stage: Any) -> str:
    mapping = {s.lower(): s for s in ALL_STAGES}
    if not isinstance(stage, str) or stage.lower() not in mapping:
        raise InvalidParameter(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(ALL_STAGES)}.")
    return mapping[stage.lower()]


def get_latest_versions(session: Session, project_id: str, name: Any, stages: Any = None) -> list[ModelVersion]:
    """The highest version in each requested stage (every stage when none is given)."""
    model = get_registered_model(session, project_id, name)
    if isinstance(stages, str):
        stages = [stages]
    wanted = {canonical_stage(s) for s in stages} if stages else set(ALL_STAGES)
    latest = latest_versions(session, [model.id]).get(model.id, [])
    return [mv for mv in latest if mv.current_stage in wanted]


def latest_versions(session: Session, model_pks: Sequence[int]) -> dict[int, list[ModelVersion]]:
    """Per model, its highest live version in each stage (one window query)."""
    if not model_pks:
        return {}
    rank = func.row_number().over(
        partition_by=[ModelVersion.registered_model_id, ModelVersion.current_stage], order_by=ModelVersion.version.desc()
    ).label("rank")
    ranked = (
        select(ModelVersion.id, rank)
        .where(ModelVersion.registered_model_id.in_(list(model_pks)), ModelVersion.deleted.is_(False))
        .subquery()
    )
    rows = session.scalars(
        select(ModelVersion).join(ranked, ranked.c.id == ModelVersion.id).where(ranked.c.rank == 1).order_by(ModelVersion.version)
    )
    result: dict[int, list[ModelVersion]] = defaultdict(list)
    for mv in rows:
        result[mv.registered_model_id].append(mv)
    return result


# -- model versions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    storage_location: Optional[str]
    run_uuid: Optional[str] = None
    model_id: Optional[str] = None


def _bad_source(source: str, detail: str) -> InvalidParameter:
    return InvalidParameter(f"Invalid model version source: '{source}'. {detail}")


def _resolve_models_uri(session: Session, project_id: str, source: str, path: str) -> _Source:
    from .logged_models import artifact_location
    from .lookups import get_logged_model

    if not path or "/" not in path and "@" not in path:
        if not _MODEL_ID_RE.match(path or ""):
            raise _bad_source(source, "Expected models:/<model_id>, models:/<name>/<version> or models:/<name>@<alias>.")
        try:
            model = get_logged_model(session, project_id, path)
        except ResourceDoesNotExist:
            raise _bad_source(source, f"No logged model {path} in this project.") from None
        return _Source(artifact_location(model.experiment.iid, model.model_id), model.source_run_uuid, model.model_id)
    if "@" in path.split("/", 1)[0]:
        name, alias = path.split("/", 1)[0].split("@", 1)
        mv = get_version_by_alias(session, project_id, name, alias)
    else:
        parts = path.split("/")
        if len(parts) != 2:
            raise _bad_source(source, "Expected models:/<name>/<version>.")
        name, ref = parts
        if ref.isdecimal():  # not isdigit: "²" is no version number
            mv = get_model_version(session, project_id, name, ref)
        elif ref.lower() == "latest":
            mv = get_version_by_alias(session, project_id, name, "latest")
        else:
            found = get_latest_versions(session, project_id, name, [ref])
            if not found:
                raise ResourceDoesNotExist(f"No versions of model {name} in stage {ref}.")
            mv = found[-1]
    return _Source(mv.storage_location or mv.source, mv.run_uuid, mv.model_id)


def _resolve_runs_uri(session: Session, project_id: str, source: str, path: str) -> _Source:
    from . import artifacts, packages
    from .lookups import get_run
    from .uris import run_artifact_uri

    run_id, _, sub = path.partition("/")
    try:
        run = get_run(session, project_id, run_id)
    except (ResourceDoesNotExist, InvalidParameter):
        raise _bad_source(source, f"No run {run_id} in this project.") from None
    sub = sub.strip("/")
    run_uri = run_artifact_uri(run.experiment.iid, run.iid)
    package_name, version, _ = artifacts.resolve_artifact_path(session, project_id, run_uri[len("mlflow-artifacts:/"):])
    package = packages.find_package(session, project_id, package_name, version)
    if package is not None and packages.package_files(session, package, sub + "/" if sub else ""):
        return _Source(f"{run_uri}/{sub}" if sub else run_uri, run.run_uuid)
    # MLflow 3 logs models outside the run's artifacts: take the run's model of that name.
    head, _, rest = sub.partition("/")
    model = session.scalars(
        select(LoggedModel)
        .where(LoggedModel.project_id == project_id, LoggedModel.source_run_uuid == run.run_uuid,
               LoggedModel.name == head, LoggedModel.lifecycle_stage == "active")
        .order_by(LoggedModel.creation_time.desc())
        .limit(1)
    ).first()
    if model is None:
        return _Source(f"{run_uri}/{sub}" if sub else run_uri, run.run_uuid)
    from .logged_models import artifact_location

    location = artifact_location(model.experiment.iid, model.model_id)
    return _Source(f"{location}/{rest}" if rest else location, run.run_uuid, model.model_id)


def _resolve_source(session: Session, project_id: str, source: Any) -> _Source:
    from . import artifacts

    source = v.require_str(source, "source", max_length=4000)
    try:
        parsed = urlparse(source)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        raise _bad_source(source, "It is not a valid URI.") from None
    scheme = parsed.scheme.lower()
    if scheme in ("models", "runs"):
        if parsed.netloc:
            raise _bad_source(source, "Sources must use this project's registry and runs.")
        path = parsed.path.lstrip("/")
        if any(seg in ("..", ".") for seg in path.split("/")):
            raise _bad_source(source, "Relative path segments are not allowed.")
        if scheme == "models":
            return _resolve_models_uri(session, project_id, source, path.rstrip("/"))
        return _resolve_runs_uri(session, project_id, source, path)
    if scheme == "mlflow-artifacts":
        try:
            artifacts.resolve_artifact_path(session, project_id, parsed.path.lstrip("/"))
        except (ResourceDoesNotExist, InvalidParameter) as exc:
            raise _bad_source(source, exc.message) from None
        return _Source(f"mlflow-artifacts:/{parsed.path.lstrip('/')}")
    if scheme in ("", "file") or len(scheme) == 1:  # a local path (or a Windows drive letter)
        raise _bad_source(source, "Local paths cannot be model version sources on this server.")
    if any(seg == ".." for seg in parsed.path.split("/")):
        raise _bad_source(source, "Relative path segments are not allowed.")
    return _Source(source)


def create_model_version(
    session: Session,
    project_id: str,
    name: Any,
    source: Any,
    *,
    run_id: Any = None,
    model_id: Any = None,
    tags: Any = None,
    run_link: Any = None,
    description: Any = None,
    user_id: Optional[str] = None,
) -> ModelVersion:
    from .logged_models import add_model_version_link
    from .lookups import get_logged_model
    from .lookups import get_run

    name = validate_name(name)
    tag_map = parse_tags(tags)
    resolved = _resolve_source(session, project_id, source)
    if model_id:
        try:
            model_id = get_logged_model(session, project_id, model_id).model_id
        except (ResourceDoesNotExist, InvalidParameter):
            raise _bad_source(source, "The model_id request parameter must identify a logged model of this project.") from None
        if resolved.model_id and resolved.model_id != model_id:
            raise _bad_source(source, "The model_id request parameter must identify the model the source names.")
    model_id = model_id or resolved.model_id
    if run_id:
        try:
            run_id = get_run(session, project_id, run_id).run_uuid
        except (ResourceDoesNotExist, InvalidParameter):
            raise _bad_source(source, "The run_id request parameter must identify a run of this project.") from None
    run_id = run_id or resolved.run_uuid
    if run_link is not None and not isinstance(run_link, str):
        raise InvalidParameter("Invalid value for parameter 'run_link': expected a string.")

    registered = get_registered_model(session, project_id, name)
    now = now_ms()
    # Write the model's row before reading the highest number: the row lock (PostgreSQL)
    # or the database write lock (SQLite, whose driver begins the transaction only at the
    # first write) makes concurrent creators take turns, so none reads a stale maximum.
    session.execute(update(RegisteredModel).where(RegisteredModel.id == registered.id).values(last_update_time=now))
    number = (session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.registered_model_id == registered.id)) or 0) + 1
    mv = ModelVersion(
        registered_model_id=registered.id,
        version=number,
        description=description_value(description),
        user_id=user_id,
        source=source,
        storage_location=resolved.storage_location,
        run_uuid=run_id or None,
        run_link=run_link or None,
        model_id=model_id or None,
        status="READY",
        current_stage=STAGE_NONE,
        deleted=False,
        creation_time=now,
        last_update_time=now,
    )
    mv.registered_model = registered
    session.add(mv)
    session.flush()
    upsert_tags(session, ModelVersionTag, "model_version_id", mv.id, tag_map)
    if model_id:
        add_model_version_link(session, project_id, model_id, registered.name, number)
    share_version_files(session, project_id, mv)
    webhook_events.model_version_created(session, project_id, mv, tag_map, description)
    return mv


def update_model_version(session: Session, project_id: str, name: Any, version: Any, description: Any) -> ModelVersion:
    mv = get_model_version(session, project_id, name, version)
    mv.description = description_value(description)
    mv.last_update_time = now_ms()
    return mv


def transition_stage(
    session: Session, project_id: str, name: Any, version: Any, stage: Any, archive_existing: Any = False
) -> ModelVersion:
    """Stages are deprecated in MLflow but old clients still send this."""
    stage = canonical_stage(stage)
    archive = archive_existing in (True, "true", "True", 1)
    if archive and stage not in ACTIVE_STAGES:
        raise InvalidParameter(
            f"Model version transition cannot archive existing model versions because '{stage}' is not an "
            f"Active stage. Valid stages are {', '.join(ACTIVE_STAGES)}"
        )
    mv = get_model_version(session, project_id, name, version)
    now = now_ms()
    if archive:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.registered_model_id == mv.registered_model_id, ModelVersion.id != mv.id,
                   ModelVersion.current_stage == stage, ModelVersion.deleted.is_(False))
            .values(current_stage=STAGE_ARCHIVED, last_update_time=now)
        )
    mv.current_stage = stage
    mv.last_update_time = now
    mv.registered_model.last_update_time = now
    return mv


def delete_model_version(session: Session, project_id: str, name: Any, version: Any) -> None:
    """Soft delete, as MLflow: the number stays taken, the row is redacted; its aliases,
    tags and package go."""
    from .package_writes import delete_packages
    from .packages import ML_MODEL

    mv = get_model_version(session, project_id, name, version)
    model = mv.registered_model
    delete_packages(session, project_id, model.name, [str(mv.version)], package_type=ML_MODEL)
    session.execute(delete(RegisteredModelAlias).where(
        RegisteredModelAlias.registered_model_id == model.id, RegisteredModelAlias.version == mv.version))
    session.execute(delete(ModelVersionTag).where(ModelVersionTag.model_version_id == mv.id))
    now = now_ms()
    mv.deleted = True
    mv.current_stage = "Deleted_Internal"
    mv.description = mv.user_id = mv.status_message = mv.storage_location = None
    mv.source, mv.run_uuid, mv.run_link = _DELETED["source"], _DELETED["run_uuid"], _DELETED["run_link"]
    mv.last_update_time = model.last_update_time = now


def set_model_version_tag(session: Session, project_id: str, name: Any, version: Any, key: Any, value: Any) -> None:
    mv = get_model_version(session, project_id, name, version)
    upsert_tags(session, ModelVersionTag, "model_version_id", mv.id, {tag_key(key): tag_value(value)})
    webhook_events.model_version_tag_set(session, project_id, mv, key, value)


def delete_model_version_tag(session: Session, project_id: str, name: Any, version: Any, key: Any) -> None:
    mv = get_model_version(session, project_id, name, version)
    session.execute(delete(ModelVersionTag).where(ModelVersionTag.model_version_id == mv.id, ModelVersionTag.key == tag_key(key)))
    webhook_events.model_version_tag_deleted(session, project_id, mv, key)


def download_uri(session: Session, project_id: str, name: Any, version: Any) -> str:
    mv = get_model_version(session, project_id, name, version)
    return mv.storage_location or mv.source or ""
