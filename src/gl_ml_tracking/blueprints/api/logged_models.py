"""MLflow 3 logged-model endpoints (``/api/2.0/mlflow/logged-models...``),
``runs/outputs`` (a run produced a model) and the 2.x client's ``runs/log-model``."""
from __future__ import annotations

import json
from typing import Any

from ...errors import InvalidParameter
from ...models import LoggedModel
from ...schemas.mlflow_json import float_out
from ...services import logged_model_search
from ...services import logged_models as lm
from ...services.logged_model_values import status_name
from ...services import lookups, run_logging
from ...services import validation as v
from ...services.common import user_key
from ...services.logged_models import LoggedModelData
from ...schemas import logged_models as req  # the request schemas
from .framework import EXPERIMENTS_READ, EXPERIMENTS_WRITE, ApiContext, Routes

routes = Routes()  # this module's endpoints, gathered by blueprints/api/__init__.py

LOGGED_MODELS_HISTORY_TAG = "mlflow.log-model.history"


# -- JSON ------------------------------------------------------------------------
def _metric_json(row: Any, model_id: str) -> dict:
    point = {
        "key": row.key,
        "value": float_out(row.value),
        "timestamp": row.timestamp,
        "step": row.step,
        "model_id": model_id,
    }
    for name in ("dataset_name", "dataset_digest"):
        if getattr(row, name):
            point[name] = getattr(row, name)
    if row.run_uuid:
        point["run_id"] = row.run_uuid
    return point


def logged_model_json(model: LoggedModel, data: LoggedModelData) -> dict:
    info: dict = {
        "model_id": model.model_id,
        "experiment_id": str(model.experiment.iid),
        "name": model.name,
        "creation_timestamp_ms": model.creation_time,
        "last_updated_timestamp_ms": model.last_update_time,
        "artifact_uri": lm.artifact_location(model.experiment.iid, model.model_id),
        "status": status_name(model.status),
        "tags": [{"key": k, "value": val if val is not None else ""} for k, val in data.tags],
    }
    for name, value in (("model_type", model.model_type), ("source_run_id", model.source_run_uuid),
                        ("status_message", model.status_message)):
        if value:
            info[name] = value
    return {
        "info": info,
        "data": {
            "params": [{"key": k, "value": val} for k, val in data.params],
            "metrics": [_metric_json(row, model.model_id) for row in data.metrics],
        },
    }


def _one(ctx: ApiContext, model: LoggedModel) -> dict:
    return {"model": logged_model_json(model, lm.load_model_data(ctx.session, [model.id])[model.id])}


# -- logged models -----------------------------------------------------------------
@routes.route("logged-models", "POST", EXPERIMENTS_WRITE, schema=req.CreateLoggedModel)
def create_logged_model(ctx: ApiContext):
    model = lm.create_logged_model(
        ctx.session,
        ctx.project_id,
        ctx.get("experiment_id"),
        name=ctx.get("name"),
        model_type=ctx.get("model_type"),
        source_run_id=ctx.get("source_run_id"),
        params=ctx.get("params"),
        tags=ctx.get("tags"),
        user_id=user_key(ctx.user),
    )
    return _one(ctx, model)


@routes.route("logged-models/<model_id>", "GET", EXPERIMENTS_READ, schema=req.ModelIdOnly)
def get_logged_model(ctx: ApiContext):
    allow_deleted = str(ctx.get("allow_deleted", "false")).lower() == "true"
    return _one(ctx, lookups.get_logged_model(ctx.session, ctx.project_id, ctx.get("model_id"), allow_deleted=allow_deleted))


@routes.route("logged-models/<model_id>", "PATCH", EXPERIMENTS_WRITE, schema=req.FinalizeLoggedModel)
def finalize_logged_model(ctx: ApiContext):
    return _one(ctx, lm.finalize(ctx.session, ctx.project_id, ctx.get("model_id"), ctx.get("status")))


@routes.route("logged-models/<model_id>", "DELETE", EXPERIMENTS_WRITE, schema=req.ModelIdOnly)
def delete_logged_model(ctx: ApiContext):
    lm.delete_logged_model(ctx.session, ctx.project_id, ctx.get("model_id"))
    return {}


@routes.route("logged-models/search", "POST", EXPERIMENTS_READ, schema=req.SearchLoggedModels)
def search_logged_models(ctx: ApiContext):
    models, token = logged_model_search.search(
        ctx.session,
        ctx.project_id,
        ctx.get("experiment_ids"),
        filter_string=ctx.get("filter"),
        datasets=ctx.get("datasets"),
        max_results=ctx.get("max_results"),
        order_by=ctx.get("order_by"),
        page_token=ctx.get("page_token") or None,
    )
    data = lm.load_model_data(ctx.session, [m.id for m in models])
    result: dict = {"models": [logged_model_json(m, data[m.id]) for m in models]}
    if token:
        result["next_page_token"] = token
    return result


@routes.route("logged-models/<model_id>/tags", "PATCH", EXPERIMENTS_WRITE, schema=req.SetLoggedModelTags)
def set_logged_model_tags(ctx: ApiContext):
    return _one(ctx, lm.set_tags(ctx.session, ctx.project_id, ctx.get("model_id"), ctx.get("tags")))


@routes.route("logged-models/<model_id>/tags/<path:tag_key>", "DELETE", EXPERIMENTS_WRITE, schema=req.ModelIdOnly)
def delete_logged_model_tag(ctx: ApiContext):
    lm.delete_tag(ctx.session, ctx.project_id, ctx.get("model_id"), ctx.get("tag_key"))
    return {}


@routes.route("logged-models/<model_id>/params", "POST", EXPERIMENTS_WRITE, schema=req.LogLoggedModelParams)
def log_logged_model_params(ctx: ApiContext):
    lm.log_params(ctx.session, ctx.project_id, ctx.get("model_id"), ctx.get("params"))
    return {}


@routes.route("logged-models/<model_id>/artifacts/directories", "GET", EXPERIMENTS_READ, schema=req.ListLoggedModelArtifacts)
def list_logged_model_artifacts(ctx: ApiContext):
    location, files = lm.list_artifacts(
        ctx.session, ctx.project_id, ctx.get("model_id"), ctx.get("artifact_directory_path") or ""
    )
    return {"root_uri": location, "files": files}


# -- runs and models -----------------------------------------------------------------
@routes.route("runs/outputs", "POST", EXPERIMENTS_WRITE, schema=req.LogOutputs)
def log_outputs(ctx: ApiContext):
    lm.log_outputs(ctx.session, ctx.project_id, ctx.get("run_id"), ctx.get("models"))
    return {}


@routes.route("runs/log-model", "POST", EXPERIMENTS_WRITE, schema=req.LogModel)
def log_model(ctx: ApiContext):
    """The 2.x client's record of a model logged in a run: appended to the run's
    ``mlflow.log-model.history`` tag (a JSON list), as MLflow's server does."""
    raw = v.require_str(ctx.get("model_json"), "model_json")
    try:
        model = json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"Malformed model info. \n {raw[:200]} \n is not a valid JSON.")
    if not isinstance(model, dict):
        raise InvalidParameter("Malformed model info: expected a JSON object.")
    missing = {"artifact_path", "flavors", "utc_time_created", "run_id"} - set(model)
    if missing:
        raise InvalidParameter(f"Model json is missing mandatory fields: {sorted(missing)}")
    run = lookups.get_active_run(ctx.session, ctx.project_id, ctx.get("run_id"))
    from ...services.run_data import load_run_data

    tags = dict(load_run_data(ctx.session, [run.id], params=False, metrics=False, inputs=False, outputs=False)[run.id].tags)
    try:
        history = json.loads(tags.get(LOGGED_MODELS_HISTORY_TAG) or "[]")
    except ValueError:
        history = []
    if not isinstance(history, list):
        history = []
    history.append(model)
    run_logging.set_tag(ctx.session, ctx.project_id, run.run_uuid, LOGGED_MODELS_HISTORY_TAG, json.dumps(history))
    return {}
