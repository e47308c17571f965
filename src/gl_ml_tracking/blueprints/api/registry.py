"""MLflow model registry endpoints: ``registered-models/*`` and ``model-versions/*``."""
from __future__ import annotations

from ...services import model_aliases, model_versions, registered_models, registry_describe, registry_search
from ...services.common import user_key
from ...schemas import registry as req  # the request schemas
from .framework import REGISTRY_READ, REGISTRY_WRITE, ApiContext, Routes

routes = Routes()  # this module's endpoints, gathered by blueprints/api/__init__.py


# -- JSON ------------------------------------------------------------------------
def version_json(view: registry_describe.VersionView) -> dict:
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


def model_json(view: registry_describe.ModelView) -> dict:
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
    return {"registered_model": model_json(registry_describe.describe_models(ctx.session, [model])[0])}


def _version(ctx: ApiContext, mv) -> dict:
    return {"model_version": version_json(registry_describe.describe_versions(ctx.session, [mv])[0])}


# -- registered models ---------------------------------------------------------------
@routes.route("registered-models/create", "POST", REGISTRY_WRITE, schema=req.CreateRegisteredModel)
def create_registered_model(ctx: ApiContext):
    model = registered_models.create_registered_model(
        ctx.session, ctx.project_id, ctx.get("name"), tags=ctx.get("tags"), description=ctx.get("description"),
        user_id=user_key(ctx.user),
    )
    return _model(ctx, model)


@routes.route("registered-models/get", "GET", REGISTRY_READ, schema=req.RegisteredModelName)
def get_registered_model(ctx: ApiContext):
    return _model(ctx, registered_models.get_registered_model(ctx.session, ctx.project_id, ctx.get("name")))


@routes.route("registered-models/rename", "POST", REGISTRY_WRITE, schema=req.RenameRegisteredModel)
def rename_registered_model(ctx: ApiContext):
    return _model(ctx, registered_models.rename_registered_model(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("new_name")))


@routes.route("registered-models/update", "PATCH", REGISTRY_WRITE, schema=req.UpdateRegisteredModel)
def update_registered_model(ctx: ApiContext):
    return _model(ctx, registered_models.update_registered_model(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("description")))


@routes.route("registered-models/delete", "DELETE", REGISTRY_WRITE, schema=req.RegisteredModelName)
def delete_registered_model(ctx: ApiContext):
    registered_models.delete_registered_model(ctx.session, ctx.project_id, ctx.get("name"))
    return {}


@routes.route("registered-models/search", ("GET", "POST"), REGISTRY_READ, schema=req.SearchRegistry)
def search_registered_models(ctx: ApiContext):
    models, token = registry_search.search_registered_models(
        ctx.session, ctx.project_id, ctx.get("filter"), ctx.get("max_results"), ctx.get_list("order_by"),
        ctx.get("page_token") or None,
    )
    result: dict = {"registered_models": [model_json(view) for view in registry_describe.describe_models(ctx.session, models)]}
    if token:
        result["next_page_token"] = token
    return result


@routes.route("registered-models/get-latest-versions", ("POST", "GET"), REGISTRY_READ, schema=req.GetLatestVersions)
def get_latest_versions(ctx: ApiContext):
    versions = model_versions.get_latest_versions(ctx.session, ctx.project_id, ctx.get("name"), ctx.get_list("stages"))
    return {"model_versions": [version_json(view) for view in registry_describe.describe_versions(ctx.session, versions)]}


@routes.route("registered-models/set-tag", "POST", REGISTRY_WRITE, schema=req.SetRegisteredModelTag)
def set_registered_model_tag(ctx: ApiContext):
    registered_models.set_registered_model_tag(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("key"), ctx.get("value"))
    return {}


@routes.route("registered-models/delete-tag", "DELETE", REGISTRY_WRITE, schema=req.DeleteRegisteredModelTag)
def delete_registered_model_tag(ctx: ApiContext):
    registered_models.delete_registered_model_tag(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("key"))
    return {}


@routes.route("registered-models/alias", "POST", REGISTRY_WRITE, schema=req.SetRegisteredModelAlias)
def set_registered_model_alias(ctx: ApiContext):
    model_aliases.set_alias(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("alias"), ctx.get("version"))
    return {}


@routes.route("registered-models/alias", "DELETE", REGISTRY_WRITE, schema=req.RegisteredModelAlias)
def delete_registered_model_alias(ctx: ApiContext):
    model_aliases.delete_alias(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("alias"))
    return {}


@routes.route("registered-models/alias", "GET", REGISTRY_READ, schema=req.RegisteredModelAlias)
def get_model_version_by_alias(ctx: ApiContext):
    return _version(ctx, model_aliases.get_version_by_alias(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("alias")))


# -- model versions -------------------------------------------------------------------------
@routes.route("model-versions/create", "POST", REGISTRY_WRITE, schema=req.CreateModelVersion)
def create_model_version(ctx: ApiContext):
    mv = model_versions.create_model_version(
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
        has_run_id=ctx.args.get("run_id") is not None,
        has_model_id=ctx.args.get("model_id") is not None,
    )
    return _version(ctx, mv)


@routes.route("model-versions/get", "GET", REGISTRY_READ, schema=req.ModelVersionRef)
def get_model_version(ctx: ApiContext):
    return _version(ctx, registered_models.get_model_version(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version")))


@routes.route("model-versions/update", "PATCH", REGISTRY_WRITE, schema=req.UpdateModelVersion)
def update_model_version(ctx: ApiContext):
    mv = model_versions.update_model_version(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"), ctx.get("description"))
    return _version(ctx, mv)


@routes.route("model-versions/delete", "DELETE", REGISTRY_WRITE, schema=req.ModelVersionRef)
def delete_model_version(ctx: ApiContext):
    model_versions.delete_model_version(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"))
    return {}


@routes.route("model-versions/search", ("GET", "POST"), REGISTRY_READ, schema=req.SearchRegistry)
def search_model_versions(ctx: ApiContext):
    versions, token = registry_search.search_model_versions(
        ctx.session, ctx.project_id, ctx.get("filter"), ctx.get("max_results"), ctx.get_list("order_by"),
        ctx.get("page_token") or None,
    )
    result: dict = {"model_versions": [version_json(view) for view in registry_describe.describe_versions(ctx.session, versions)]}
    if token:
        result["next_page_token"] = token
    return result


@routes.route("model-versions/set-tag", "POST", REGISTRY_WRITE, schema=req.SetModelVersionTag)
def set_model_version_tag(ctx: ApiContext):
    model_versions.set_model_version_tag(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"), ctx.get("key"), ctx.get("value"))
    return {}


@routes.route("model-versions/delete-tag", "DELETE", REGISTRY_WRITE, schema=req.DeleteModelVersionTag)
def delete_model_version_tag(ctx: ApiContext):
    model_versions.delete_model_version_tag(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"), ctx.get("key"))
    return {}


@routes.route("model-versions/get-download-uri", "GET", REGISTRY_READ, schema=req.ModelVersionRef)
def get_model_version_download_uri(ctx: ApiContext):
    return {"artifact_uri": model_versions.download_uri(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"))}


@routes.route("model-versions/transition-stage", "POST", REGISTRY_WRITE, schema=req.TransitionModelVersionStage)
def transition_model_version_stage(ctx: ApiContext):
    mv = model_versions.transition_stage(
        ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"), ctx.get("stage"),
        ctx.get("archive_existing_versions", False),
    )
    return _version(ctx, mv)
