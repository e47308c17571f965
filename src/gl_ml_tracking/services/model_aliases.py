"""Aliases of registered model versions (``models:/<name>@<alias>``), and ``latest``."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import ModelVersion, RegisteredModelAlias
from .common import dialect_insert, now_ms
from . import webhook_events
from .registered_models import get_model_version, get_registered_model

__all__ = ["MAX_ALIAS_LENGTH", "validate_alias", "set_alias", "delete_alias", "get_version_by_alias"]

MAX_ALIAS_LENGTH = 255
_ALIAS_RE = re.compile(r"^[\w\-]*\Z")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+\Z")


def validate_alias(alias: Any, *, for_set: bool = False) -> str:
    if not isinstance(alias, str) or alias == "":
        raise InvalidParameter("Registered model alias name cannot be empty.")
    if not _ALIAS_RE.match(alias):
        raise InvalidParameter(f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-).")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameter(f"Registered model alias name exceeds the maximum length of {MAX_ALIAS_LENGTH}.")
    if for_set and alias.lower() == "latest":
        raise InvalidParameter("'latest' alias name (case insensitive) is reserved.")
    if for_set and _VERSION_ALIAS_RE.match(alias):
        raise InvalidParameter(f"Version alias name '{alias}' is reserved.")
    return alias


def set_alias(session: Session, project_id: str, name: Any, alias: Any, version: Any) -> None:
    alias = validate_alias(alias, for_set=True)
    mv = get_model_version(session, project_id, name, version)
    stmt = dialect_insert(session)(RegisteredModelAlias).values(
        registered_model_id=mv.registered_model_id, alias=alias, version=mv.version
    )
    session.execute(stmt.on_conflict_do_update(
        index_elements=[RegisteredModelAlias.registered_model_id, RegisteredModelAlias.alias], set_={"version": mv.version}
    ))
    mv.registered_model.last_update_time = now_ms()
    webhook_events.alias_created(session, project_id, mv.registered_model, alias, mv.version)


def delete_alias(session: Session, project_id: str, name: Any, alias: Any) -> None:
    alias = validate_alias(alias)
    model = get_registered_model(session, project_id, name)
    session.execute(
        delete(RegisteredModelAlias).where(RegisteredModelAlias.registered_model_id == model.id, RegisteredModelAlias.alias == alias)
    )
    model.last_update_time = now_ms()
    webhook_events.alias_deleted(session, project_id, model, alias)


def get_version_by_alias(session: Session, project_id: str, name: Any, alias: Any) -> ModelVersion:
    alias = validate_alias(alias)
    model = get_registered_model(session, project_id, name)
    if alias.lower() == "latest":
        mv = session.scalars(
            select(ModelVersion)
            .where(ModelVersion.registered_model_id == model.id, ModelVersion.deleted.is_(False))
            .order_by(ModelVersion.version.desc())
            .limit(1)
        ).first()
        if mv is None:
            raise ResourceDoesNotExist(f"Latest version not found for model {model.name}.")
        return mv
    number = session.scalar(
        select(RegisteredModelAlias.version).where(
            RegisteredModelAlias.registered_model_id == model.id, RegisteredModelAlias.alias == alias
        )
    )
    if number is None:
        # MLflow's server answers INVALID_PARAMETER_VALUE here, not RESOURCE_DOES_NOT_EXIST.
        raise InvalidParameter(f"Registered model alias {alias} not found.")
    return get_model_version(session, project_id, model.name, number)
