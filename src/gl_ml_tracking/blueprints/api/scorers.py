"""MLflow 3's registered scorers: ``/api/3.0/mlflow/scorers/*``."""
from __future__ import annotations

from ...schemas import genai as req  # the request schemas
from ...services import scorers
from .framework import EXPERIMENTS_READ, EXPERIMENTS_WRITE, ApiContext, Routes

routes = Routes()  # this module's endpoints, gathered by blueprints/api/__init__.py
V3 = "/api/3.0/mlflow/"


def scorer_json(entry: scorers.ScorerEntry) -> dict:
    """MLflow's ``Scorer`` message (its experiment id is a number there)."""
    return {"experiment_id": entry.experiment_iid, "scorer_name": entry.name, "scorer_version": entry.version,
            "serialized_scorer": entry.serialized_scorer, "creation_time": entry.creation_time,
            "scorer_id": entry.scorer_id}


def _route(path: str, methods, access, schema):
    return routes.route(path, methods, access, ajax=False, prefix=V3, schema=schema)


@_route("scorers/register", "POST", EXPERIMENTS_WRITE, req.RegisterScorer)
def register_scorer(ctx: ApiContext):
    entry = scorers.register_scorer(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("name"),
                                    ctx.get("serialized_scorer"))
    return {"version": entry.version, "scorer_id": entry.scorer_id, "experiment_id": str(entry.experiment_iid),
            "name": entry.name, "serialized_scorer": entry.serialized_scorer, "creation_time": entry.creation_time}


@_route("scorers/list", "GET", EXPERIMENTS_READ, req.ListScorers)
def list_scorers(ctx: ApiContext):
    entries = scorers.list_scorers(ctx.session, ctx.project_id, ctx.get("experiment_id"),
                                   ctx.get_list("experiment_ids"))
    return {"scorers": [scorer_json(e) for e in entries]}


@_route("scorers/versions", "GET", EXPERIMENTS_READ, req.ListScorerVersions)
def list_scorer_versions(ctx: ApiContext):
    entries = scorers.list_versions(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("name"))
    return {"scorers": [scorer_json(e) for e in entries]}


@_route("scorers/get", "GET", EXPERIMENTS_READ, req.ScorerVersionRef)
def get_scorer(ctx: ApiContext):
    entry = scorers.get_scorer(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("name"),
                               ctx.get("version"))
    return {"scorer": scorer_json(entry)}


@_route("scorers/delete", "DELETE", EXPERIMENTS_WRITE, req.ScorerVersionRef)
def delete_scorer(ctx: ApiContext):
    scorers.delete_scorer(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("name"), ctx.get("version"))
    return {}


@_route("scorers/online-configs", "GET", EXPERIMENTS_READ, req.OnlineScoringConfigs)
def get_online_scoring_configs(ctx: ApiContext):
    return {"configs": scorers.online_configs(ctx.session, ctx.project_id, ctx.get_list("scorer_ids"))}


@_route("scorers/online-config", "PUT", EXPERIMENTS_WRITE, req.UpsertOnlineScoringConfig)
def upsert_online_scoring_config(ctx: ApiContext):
    return {"config": scorers.upsert_online_config(ctx.session, ctx.project_id, ctx.get("experiment_id"),
                                                   ctx.get("name"), ctx.get("sample_rate"),
                                                   ctx.get("filter_string"))}
