"""MLflow model registry endpoints: ``registered-models/*`` and ``model-versions/*``."""
from __future__ import annotations

from ..services import model_registry as reg
from ..services.common import user_key
from .api_framework import REGISTRY_READ, REGISTRY_WRITE, ApiContext, api_route


# -- JSON ------------------------------------------------------------------------
def version_json(view: reg.VersionView) -> dict:
    mv = view.version
    out: dict = {
        "name": mv.registered_model.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_time,
        "last_updated_timestamp": mv.last_update_time,
        "current_stage": mv.current_stage,
        "description": mv.description or "",
        "source": mv.source or "",
        "run_id": mv.run_uuid or "",
        "status": mv.status,
        "tags": [{"key": k, "value": val if val is not None else ""} for k, val in view.tags],
        "aliases": list(view.aliases),
    }
    for name, value in (("user_id", mv.user_id), ("run_link", mv.run_link), ("status_message", mv.status_message),
                        ("model_id", mv.model_id)):
        if value:
            out[name] = value
    return out


def model_json(view: reg.ModelView) -> dict:
    model = view.model
    out: dict = {
        "name": model.name,
        "creation_timestamp": model.creation_time,
        "last_updated_timestamp": model.last_update_time,
        "description": model.description or "",
        "latest_versions": [version_json(v) for v in view.latest_versions],
        "tags": [{"key": k, "value": val if val is not None else ""} for k, val in view.tags],
        "aliases": [{"alias": alias, "version": str(number)} for alias, number in view.aliases],
    }
    if model.user_id:
        out["user_id"] = model.user_id
    return out


def _model(ctx: ApiContext, model) -> dict:
    return {"registered_model": model_json(reg.describe_models(ctx.session, [model])[0])}


def _version(ctx: ApiContext, mv) -> dict:
    return {"model_version": version_json(reg.describe_versions(ctx.session, [mv])[0])}


# -- registered models ---------------------------------------------------------------
@api_route("registered-models/create", "POST", REGISTRY_WRITE)
def create_registered_model(ctx: ApiContext):
    model = reg.create_registered_model(
        ctx.session, ctx.project_id, ctx.get("name"), tags=ctx.get("tags"), description=ctx.get("description"),
        user_id=user_key(ctx.user),
    )
    return _model(ctx, model)


@api_route("registered-models/get", "GET", REGISTRY_READ)
def get_registered_model(ctx: ApiContext):
    return _model(ctx, reg.get_registered_model(ctx.session, ctx.project_id, ctx.get("name")))


@api_route("registered-models/rename", "POST", REGISTRY_WRITE)
def rename_registered_model(ctx: ApiContext):
    return _model(ctx, reg.rename_registered_model(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("new_name")))


@api_route("registered-models/update", "PATCH", REGISTRY_WRITE)
def update_registered_model(ctx: ApiContext):
    return _model(ctx, reg.update_registered_model(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("description")))


@api_route("registered-models/delete", "DELETE", REGISTRY_WRITE)
def delete_registered_model(ctx: ApiContext):
    reg.delete_registered_model(ctx.session, ctx.project_id, ctx.get("name"))
    return {}


@api_route("registered-models/search", ("GET", "POST"), REGISTRY_READ)
def search_registered_models(ctx: ApiContext):
    models, token = reg.search_registered_models(
        ctx.session, ctx.project_id, ctx.get("filter"), ctx.get("max_results"), ctx.get_list("order_by"),
        ctx.get("page_token") or None,
    )
    result: dict = {"registered_models": [model_json(view) for view in reg.describe_models(ctx.session, models)]}
    if token:
        result["next_page_token"] = token
    return result


@api_route("registered-models/get-latest-versions", ("POST", "GET"), REGISTRY_READ)
def get_latest_versions(ctx: ApiContext):
    versions = reg.get_latest_versions(ctx.session, ctx.project_id, ctx.get("name"), ctx.get_list("stages"))
    return {"model_versions": [version_json(view) for view in reg.describe_versions(ctx.session, versions)]}


@api_route("registered-models/set-tag", "POST", REGISTRY_WRITE)
def set_registered_model_tag(ctx: ApiContext):
    reg.set_registered_model_tag(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("key"), ctx.get("value"))
    return {}


@api_route("registered-models/delete-tag", "DELETE", REGISTRY_WRITE)
def delete_registered_model_tag(ctx: ApiContext):
    reg.delete_registered_model_tag(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("key"))
    return {}


@api_route("registered-models/alias", "POST", REGISTRY_WRITE)
def set_registered_model_alias(ctx: ApiContext):
    reg.set_alias(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("alias"), ctx.get("version"))
    return {}


@api_route("registered-models/alias", "DELETE", REGISTRY_WRITE)
def delete_registered_model_alias(ctx: ApiContext):
    reg.delete_alias(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("alias"))
    return {}


@api_route("registered-models/alias", "GET", REGISTRY_READ)
def get_model_version_by_alias(ctx: ApiContext):
    return _version(ctx, reg.get_version_by_alias(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("alias")))


# -- model versions -------------------------------------------------------------------------
@api_route("model-versions/create", "POST", REGISTRY_WRITE)
def create_model_version(ctx: ApiContext):
    mv = reg.create_model_version(
        ctx.session,
        ctx.project_id,
        ctx.get("name"),
        ctx.get("source"),
        run_id=ctx.get("run_id"),
        model_id=ctx.get("model_id"),
        tags=ctx.get("tags"),
        run_link=ctx.get("run_link"),
        description=ctx.get("description"),
        user_id=user_key(ctx.user),
    )
    return _version(ctx, mv)


@api_route("model-versions/get", "GET", REGISTRY_READ)
def get_model_version(ctx: ApiContext):
    return _version(ctx, reg.get_model_version(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version")))


@api_route("model-versions/update", "PATCH", REGISTRY_WRITE)
def update_model_version(ctx: ApiContext):
    mv = reg.update_model_version(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"), ctx.get("description"))
    return _version(ctx, mv)


@api_route("model-versions/delete", "DELETE", REGISTRY_WRITE)
def delete_model_version(ctx: ApiContext):
    reg.delete_model_version(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"))
    return {}


@api_route("model-versions/search", ("GET", "POST"), REGISTRY_READ)
def search_model_versions(ctx: ApiContext):
    versions, token = reg.search_model_versions(
        ctx.session, ctx.project_id, ctx.get("filter"), ctx.get("max_results"), ctx.get_list("order_by"),
        ctx.get("page_token") or None,
    )
    result: dict = {"model_versions": [version_json(view) for view in reg.describe_versions(ctx.session, versions)]}
    if token:
        result["next_page_token"] = token
    return result


@api_route("model-versions/set-tag", "POST", REGISTRY_WRITE)
def set_model_version_tag(ctx: ApiContext):
    reg.set_model_version_tag(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"), ctx.get("key"), ctx.get("value"))
    return {}


@api_route("model-versions/delete-tag", "DELETE", REGISTRY_WRITE)
def delete_model_version_tag(ctx: ApiContext):
    reg.delete_model_version_tag(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"), ctx.get("key"))
    return {}


@api_route("model-versions/get-download-uri", "GET", REGISTRY_READ)
def get_model_version_download_uri(ctx: ApiContext):
    return {"artifact_uri": reg.download_uri(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"))}


@api_route("model-versions/transition-stage", "POST", REGISTRY_WRITE)
def transition_model_version_stage(ctx: ApiContext):
    mv = reg.transition_stage(
        ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"), ctx.get("stage"),
        ctx.get("archive_existing_versions", False),
    )
    return _version(ctx, mv)
