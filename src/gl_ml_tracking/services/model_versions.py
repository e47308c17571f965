"""Versions of registered models: creation from a source, stages, tags, deletion.

Versions are numbered 1, 2, 3... per model and a number is never reused (deleting a
version is soft: the row stays, redacted, so the next version still gets a new
number). Stages are kept for old clients (``transition-stage``, ``get-latest-versions``).

Which sources are accepted is MLflow's rule (:mod:`.version_sources`); where a version's
files are (``storage_location``) is resolved once, in this project only, when the version is
created (:mod:`.version_storage`); the files are then shared as its package
(:mod:`.model_version_files`). A source that is not here is stored as given.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias
from . import validation as v
from . import webhook_events
from .common import now_ms
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
    has_run_id: bool = False,
    has_model_id: bool = False,
) -> ModelVersion:
    """``has_run_id``/``has_model_id``: the request named them (even empty), which decides,
    as in MLflow, whether a ``models:/<name>/<version>`` source passes on its own."""
    from . import version_sources as sources
    from . import version_storage as storage
    from .logged_models import add_model_version_link

    name = validate_name(name)
    tag_map = parse_tags(tags)
    source = v.require_str(source, "source", max_length=4000)
    for field, value in (("run_id", run_id), ("model_id", model_id), ("run_link", run_link)):
        if value is not None and not isinstance(value, str):
            raise InvalidParameter(f"Invalid value for parameter '{field}': expected a string.")
    if run_id and len(run_id) > 32:
        raise InvalidParameter(v.exceeds_maximum_length("run_id", 32))
    if str(tag_map.get(sources.IS_PROMPT_TAG) or "").lower() == "true":
        sources.check_prompt_source(source)
        lineage, located = sources.Lineage(source, run_id or None, None), storage.Located(None)
    else:
        lineage, referenced = storage.lineage(session, project_id, source, run_id or None, model_id or None,
                                              has_run_id=has_run_id, has_model_id=has_model_id)
        sources.check_source(
            lineage.source, lineage.run_id, lineage.model_id,
            run_root=lambda rid: storage.run_root(session, project_id, rid),
            model_root=lambda mid: storage.model_root(session, project_id, mid),
        )
        located = storage.locate(session, project_id, lineage.source, referenced)
        if lineage.model_id:
            model = storage.logged_model(session, project_id, lineage.model_id)
            if model is None:
                raise sources.bad_source(source, "The model_id request parameter must identify a logged model of this project.")
            located = storage.Located(located.storage_location, located.model_id, located.run_id or model.source_run_uuid)
    source, model_id = lineage.source, lineage.model_id or located.model_id
    run_id = lineage.run_id or located.run_id

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
        storage_location=located.storage_location,
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
