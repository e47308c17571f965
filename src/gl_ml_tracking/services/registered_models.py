"""Registered models of the model registry: names, tags, descriptions, lookups.

MLflow's semantics (its SQL store, 3.x), scoped per project: names are unique in a
project. Renaming a model renames its versions' packages (``<model name>`` /
``<version>``, GitLab's convention); deleting a model deletes them.
"""
from __future__ import annotations

import posixpath
import re
from typing import Any, Optional

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceAlreadyExists, ResourceDoesNotExist
from ..models import ModelVersion, ModelVersionTag, Package, RegisteredModel, RegisteredModelAlias, RegisteredModelTag
from . import validation as v
from . import webhook_events
from .common import dialect_insert, now_ms

MAX_NAME_LENGTH = 255  # a package name's limit (the model's package is named after it)
MAX_TAG_VALUE_LENGTH = 100_000
MAX_DESCRIPTION_LENGTH = 100_000


# -- validation ----------------------------------------------------------------------
def validate_name(name: Any, what: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter(f"Missing value for required parameter '{what}'.")
    if "/" in name or ":" in name:
        raise InvalidParameter(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidParameter(f"Invalid model name {name!r}. Names cannot contain backslashes or control characters.")
    norm = posixpath.normpath(name)
    if norm != name or norm in (".", "..") or norm.startswith(".."):
        raise InvalidParameter(f"Invalid value '{name}' for parameter '{what}': the name must not resolve to another path.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(f"Model name exceeds the maximum length of {MAX_NAME_LENGTH} characters.")
    return name


def parse_version(version: Any) -> int:
    text = str(version).strip() if version is not None else ""
    if not text:
        raise InvalidParameter("Missing value for required parameter 'version'.")
    if not re.fullmatch(r"-?\d{1,9}", text):
        raise InvalidParameter(f"Parameter 'version' must be an integer, got '{version}'.")
    return int(text)


def parse_tags(raw: Any) -> dict[str, Optional[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise InvalidParameter("'tags' must be a list of {key, value} objects.")
    return {tag_key(t.get("key")): tag_value(t.get("value")) for t in raw}


def tag_key(key: Any) -> str:
    return v.validate_key("Tag", key)


def tag_value(value: Any) -> Optional[str]:
    return v.validate_value("Tag", value, MAX_TAG_VALUE_LENGTH, required=False)


def description_value(value: Any) -> Optional[str]:
    if value is None:
        return None
    return v.validate_value("Description", value, MAX_DESCRIPTION_LENGTH)


# -- lookups ---------------------------------------------------------------------------
def _find_model(session: Session, project_id: str, name: str) -> Optional[RegisteredModel]:
    return session.scalars(
        select(RegisteredModel).where(RegisteredModel.project_id == project_id, RegisteredModel.name == name)
    ).one_or_none()


def get_registered_model(session: Session, project_id: str, name: Any) -> RegisteredModel:
    name = validate_name(name)
    model = _find_model(session, project_id, name)
    if model is None:
        raise ResourceDoesNotExist(f"Registered Model with name={name} not found")
    return model


def get_model_version(session: Session, project_id: str, name: Any, version: Any) -> ModelVersion:
    model = get_registered_model(session, project_id, name)
    number = parse_version(version)
    mv = session.scalars(
        select(ModelVersion).where(
            ModelVersion.registered_model_id == model.id, ModelVersion.version == number, ModelVersion.deleted.is_(False)
        )
    ).one_or_none()
    if mv is None:
        raise ResourceDoesNotExist(f"Model Version (name={model.name}, version={number}) not found")
    return mv


# -- registered models -------------------------------------------------------------------
def create_registered_model(
    session: Session, project_id: str, name: Any, *, tags: Any = None, description: Any = None, user_id: Optional[str] = None
) -> RegisteredModel:
    name = validate_name(name)
    tag_map = parse_tags(tags)
    if _find_model(session, project_id, name) is not None:
        raise ResourceAlreadyExists(f"Registered Model (name={name}) already exists.")
    now = now_ms()
    model = RegisteredModel(
        project_id=project_id, name=name, description=description_value(description), user_id=user_id,
        creation_time=now, last_update_time=now,
    )
    session.add(model)
    _flush_unique(session, name)
    upsert_tags(session, RegisteredModelTag, "registered_model_id", model.id, tag_map)
    webhook_events.registered_model_created(session, project_id, name, tag_map, description)
    return model


def _flush_unique(session: Session, name: str) -> None:
    """Flush; a concurrent request that took the name first is RESOURCE_ALREADY_EXISTS
    (what ``mlflow.register_model`` expects when parallel jobs register one model)."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ResourceAlreadyExists(f"Registered Model (name={name}) already exists.") from None


def upsert_tags(session: Session, entity: Any, owner_column: str, owner_id: int, tags: dict) -> None:
    if not tags:
        return
    stmt = dialect_insert(session)(entity)
    stmt = stmt.on_conflict_do_update(
        index_elements=[getattr(entity, owner_column), entity.key], set_={"value": stmt.excluded.value}
    )
    session.execute(stmt, [{owner_column: owner_id, "key": k, "value": val} for k, val in tags.items()])


def update_registered_model(session: Session, project_id: str, name: Any, description: Any) -> RegisteredModel:
    model = get_registered_model(session, project_id, name)
    model.description = description_value(description)
    model.last_update_time = now_ms()
    return model


def rename_registered_model(session: Session, project_id: str, name: Any, new_name: Any) -> RegisteredModel:
    model = get_registered_model(session, project_id, name)
    if new_name is None or str(new_name).strip() == "":
        raise InvalidParameter("Missing value for required parameter 'new_name'.")
    new_name = validate_name(new_name, "new_name")
    if new_name == model.name:
        return model
    if _find_model(session, project_id, new_name) is not None:
        raise ResourceAlreadyExists(f"Registered Model (name={new_name}) already exists.")
    from .packages import ML_MODEL

    # The versions' packages follow the model's name (GitLab's convention).
    session.execute(
        update(Package)
        .where(Package.project_id == project_id, Package.package_type == ML_MODEL, Package.name == model.name)
        .values(name=new_name, updated_at=now_ms())
    )
    model.name = new_name
    model.last_update_time = now_ms()
    _flush_unique(session, new_name)
    session.execute(
        update(ModelVersion).where(ModelVersion.registered_model_id == model.id).values(last_update_time=model.last_update_time)
    )
    return model


def delete_registered_model(session: Session, project_id: str, name: Any) -> None:
    from .package_writes import delete_packages
    from .packages import ML_MODEL

    model = get_registered_model(session, project_id, name)
    delete_packages(session, project_id, model.name, None, package_type=ML_MODEL)
    version_ids = select(ModelVersion.id).where(ModelVersion.registered_model_id == model.id)
    # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys switched on.
    session.execute(delete(ModelVersionTag).where(ModelVersionTag.model_version_id.in_(version_ids)))
    session.execute(delete(ModelVersion).where(ModelVersion.registered_model_id == model.id))
    session.execute(delete(RegisteredModelAlias).where(RegisteredModelAlias.registered_model_id == model.id))
    session.execute(delete(RegisteredModelTag).where(RegisteredModelTag.registered_model_id == model.id))
    session.delete(model)
    session.flush()


def set_registered_model_tag(session: Session, project_id: str, name: Any, key: Any, value: Any) -> None:
    model = get_registered_model(session, project_id, name)
    upsert_tags(session, RegisteredModelTag, "registered_model_id", model.id, {tag_key(key): tag_value(value)})
    model.last_update_time = now_ms()
    webhook_events.registered_model_tag_set(session, project_id, model, key, value)


def delete_registered_model_tag(session: Session, project_id: str, name: Any, key: Any) -> None:
    """A missing tag is fine, as in MLflow's registry."""
    model = get_registered_model(session, project_id, name)
    key = tag_key(key)
    session.execute(
        delete(RegisteredModelTag).where(RegisteredModelTag.registered_model_id == model.id, RegisteredModelTag.key == key)
    )
    webhook_events.registered_model_tag_deleted(session, project_id, model, key)
