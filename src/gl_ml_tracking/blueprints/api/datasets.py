"""MLflow 3's GenAI evaluation datasets: ``/api/3.0/mlflow/datasets/*``."""
from __future__ import annotations

import json

from ...schemas import genai as req  # the request schemas
from ...services import dataset_records, datasets
from .framework import EXPERIMENTS_READ, EXPERIMENTS_WRITE, ApiContext, Routes

routes = Routes()  # this module's endpoints, gathered by blueprints/api/__init__.py
V3 = "/api/3.0/mlflow/"


def dataset_json(view: datasets.DatasetView) -> dict:
    """MLflow's ``Dataset`` message: tags, schema and profile are JSON text."""
    d = view.dataset
    out: dict = {"dataset_id": d.dataset_id, "name": d.name, "tags": json.dumps(view.tags)}
    for name in ("schema", "profile"):
        if getattr(d, name):
            out[name] = getattr(d, name)
    out.update({"digest": d.digest, "created_time": d.creation_time, "last_update_time": d.last_update_time})
    for name in ("created_by", "last_updated_by"):
        if getattr(d, name):
            out[name] = getattr(d, name)
    if view.experiment_ids is not None:
        out["experiment_ids"] = view.experiment_ids
    return out


def _route(path: str, methods, access, schema):
    return routes.route(path, methods, access, ajax=False, prefix=V3, schema=schema)


@_route("datasets/create", "POST", EXPERIMENTS_WRITE, req.CreateDataset)
def create_dataset(ctx: ApiContext):
    view = datasets.create_dataset(ctx.session, ctx.project_id, ctx.get("name"), tags=ctx.get("tags"),
                                   experiment_ids=ctx.get_list("experiment_ids"))
    return {"dataset": dataset_json(view)}


@_route("datasets/search", ("POST", "GET"), EXPERIMENTS_READ, req.SearchDatasets)
def search_datasets(ctx: ApiContext):
    views, token = datasets.search_datasets(
        ctx.session, ctx.project_id, experiment_ids=ctx.get_list("experiment_ids"),
        filter_string=ctx.get("filter_string"), max_results=ctx.get("max_results"),
        order_by=ctx.get_list("order_by"), page_token=ctx.get("page_token"))
    out: dict = {"datasets": [dataset_json(view) for view in views]}
    if token:
        out["next_page_token"] = token
    return out


@_route("datasets/<dataset_id>", "GET", EXPERIMENTS_READ, req.GetDataset)
def get_dataset(ctx: ApiContext):
    dataset = datasets.get_dataset(ctx.session, ctx.project_id, ctx.get("dataset_id"))
    return {"dataset": dataset_json(datasets.describe(ctx.session, [dataset])[0])}


@_route("datasets/<dataset_id>", "DELETE", EXPERIMENTS_WRITE, req.DatasetInPath)
def delete_dataset(ctx: ApiContext):
    datasets.delete_dataset(ctx.session, ctx.project_id, ctx.get("dataset_id"))
    return {}


@_route("datasets/<dataset_id>/tags", "PATCH", EXPERIMENTS_WRITE, req.SetDatasetTags)
def set_dataset_tags(ctx: ApiContext):
    datasets.set_tags(ctx.session, ctx.project_id, ctx.get("dataset_id"), ctx.get("tags"))
    return {}


@_route("datasets/<dataset_id>/tags/<path:key>", "DELETE", EXPERIMENTS_WRITE, req.DatasetInPath)
def delete_dataset_tag(ctx: ApiContext):
    datasets.delete_tag(ctx.session, ctx.project_id, ctx.get("dataset_id"), ctx.get("key"))
    return {}


@_route("datasets/<dataset_id>/records", "POST", EXPERIMENTS_WRITE, req.UpsertDatasetRecords)
def upsert_dataset_records(ctx: ApiContext):
    inserted, updated = dataset_records.upsert_records(ctx.session, ctx.project_id, ctx.get("dataset_id"),
                                                       ctx.get("records"))
    return {"inserted_count": inserted, "updated_count": updated}


@_route("datasets/<dataset_id>/records", "GET", EXPERIMENTS_READ, req.GetDatasetRecords)
def get_dataset_records(ctx: ApiContext):
    dataset_id = ctx.get("dataset_id")
    records, token = dataset_records.read_records(ctx.session, ctx.project_id, dataset_id,
                                                  max_results=ctx.get("max_results"),
                                                  page_token=ctx.get("page_token"))
    out: dict = {"records": dataset_records.records_json_text(records, dataset_id)}
    if token:
        out["next_page_token"] = token
    return out


@_route("datasets/<dataset_id>/records", "DELETE", EXPERIMENTS_WRITE, req.DeleteDatasetRecords)
def delete_dataset_records(ctx: ApiContext):
    deleted = dataset_records.delete_records(ctx.session, ctx.project_id, ctx.get("dataset_id"),
                                             ctx.get_list("dataset_record_ids"))
    return {"deleted_count": deleted}


@_route("datasets/<dataset_id>/experiment-ids", "GET", EXPERIMENTS_READ, req.DatasetInPath)
def get_dataset_experiment_ids(ctx: ApiContext):
    return {"experiment_ids": datasets.experiment_ids(ctx.session, ctx.project_id, ctx.get("dataset_id"))}


@_route("datasets/<dataset_id>/add-experiments", "POST", EXPERIMENTS_WRITE, req.DatasetExperiments)
def add_dataset_to_experiments(ctx: ApiContext):
    view = datasets.add_experiments(ctx.session, ctx.project_id, ctx.get("dataset_id"),
                                    ctx.get_list("experiment_ids"))
    return {"dataset": dataset_json(view)}


@_route("datasets/<dataset_id>/remove-experiments", "POST", EXPERIMENTS_WRITE, req.DatasetExperiments)
def remove_dataset_from_experiments(ctx: ApiContext):
    view = datasets.remove_experiments(ctx.session, ctx.project_id, ctx.get("dataset_id"),
                                       ctx.get_list("experiment_ids"))
    return {"dataset": dataset_json(view)}
