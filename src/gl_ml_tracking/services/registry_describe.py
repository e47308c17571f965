"""What the API and the pages show of registered models and versions: their tags,
aliases and latest versions, loaded in bulk (a few queries per page, none per row)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias, RegisteredModelTag
from .model_versions import latest_versions

__all__ = ["VersionView", "ModelView", "describe_versions", "describe_models"]

# -- what the API shows ------------------------------------------------------------------------
@dataclass
class VersionView:
    version: ModelVersion
    tags: list = field(default_factory=list)  # (key, value)
    aliases: list = field(default_factory=list)  # alias names


@dataclass
class ModelView:
    model: RegisteredModel
    tags: list = field(default_factory=list)  # (key, value)
    aliases: list = field(default_factory=list)  # (alias, version)
    latest_versions: list = field(default_factory=list)  # VersionView


def describe_versions(session: Session, versions: Sequence[ModelVersion]) -> list[VersionView]:
    """Tags and aliases of many versions in two queries."""
    views = [VersionView(mv) for mv in versions]
    if not views:
        return views
    by_id = {view.version.id: view for view in views}
    for start in range(0, len(views), 900):
        chunk = [view.version.id for view in views[start:start + 900]]
        for mv_id, key, value in session.execute(
            select(ModelVersionTag.model_version_id, ModelVersionTag.key, ModelVersionTag.value)
            .where(ModelVersionTag.model_version_id.in_(chunk)).order_by(ModelVersionTag.key)
        ):
            by_id[mv_id].tags.append((key, value))
    model_ids = sorted({view.version.registered_model_id for view in views})
    aliases = _aliases(session, model_ids)
    for view in views:
        view.aliases = [a for a, num in aliases.get(view.version.registered_model_id, []) if num == view.version.version]
    return views


def _aliases(session: Session, model_ids: Sequence[int]) -> dict[int, list[tuple[str, int]]]:
    result: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for start in range(0, len(model_ids), 900):
        for model_id, alias, number in session.execute(
            select(RegisteredModelAlias.registered_model_id, RegisteredModelAlias.alias, RegisteredModelAlias.version)
            .where(RegisteredModelAlias.registered_model_id.in_(list(model_ids[start:start + 900])))
            .order_by(RegisteredModelAlias.alias)
        ):
            result[model_id].append((alias, number))
    return result


def describe_models(session: Session, models: Sequence[RegisteredModel]) -> list[ModelView]:
    views = [ModelView(m) for m in models]
    if not views:
        return views
    ids = [m.id for m in models]
    by_id = {view.model.id: view for view in views}
    for start in range(0, len(ids), 900):
        for model_id, key, value in session.execute(
            select(RegisteredModelTag.registered_model_id, RegisteredModelTag.key, RegisteredModelTag.value)
            .where(RegisteredModelTag.registered_model_id.in_(ids[start:start + 900])).order_by(RegisteredModelTag.key)
        ):
            by_id[model_id].tags.append((key, value))
    for model_id, pairs in _aliases(session, ids).items():
        by_id[model_id].aliases = pairs
    latest = latest_versions(session, ids)
    version_views = describe_versions(session, [mv for pk in ids for mv in latest.get(pk, [])])
    for view in version_views:
        by_id[view.version.registered_model_id].latest_versions.append(view)
    return views
