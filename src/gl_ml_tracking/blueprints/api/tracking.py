"""MLflow tracking endpoints: experiments, runs, metrics. Each view turns
request args (loaded through its route's schema, so of the declared types)
into one service call and the result into MLflow's JSON."""
from __future__ import annotations

import itertools
from typing import Any

from flask import Response, stream_with_context

from ...errors import InvalidParameter
from ...schemas.mlflow_json import dumps, experiment_json, metric_points_text, run_info_json, run_json
from ...services import experiments as exp_service
from ...services import lookups, metric_history, run_inputs, run_logging
from ...services import runs as run_service
from ...services.run_data import load_run_data
from ...services.common import user_key
from ...schemas import tracking as req  # the request schemas
from .framework import EXPERIMENTS_READ, EXPERIMENTS_WRITE, ApiContext, Routes

routes = Routes()  # this module's endpoints, gathered by blueprints/api/__init__.py


def _tag_pairs(tags: list[dict]) -> list[tuple[Any, Any]]:
    return [(tag.get("key"), tag.get("value")) for tag in tags]


def _view_type(ctx: ApiContext, name: str) -> str:
    value = ctx.get(name) or "ACTIVE_ONLY"
    mapping = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}
    value = mapping.get(str(value), str(value).upper())
    if value not in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        raise InvalidParameter(f"Invalid value '{value}' for '{name}': expected ACTIVE_ONLY, DELETED_ONLY or ALL.")
    return value


# -- experiments -----------------------------------------------------------------
@routes.route("experiments/create", "POST", EXPERIMENTS_WRITE, schema=req.CreateExperiment)
def create_experiment(ctx: ApiContext):
    experiment = exp_service.create_experiment(
        ctx.session, ctx.project_id, ctx.get("name"), _tag_pairs(ctx.get_list("tags")), user_id=user_key(ctx.user),
        project=ctx.project,
    )
    return {"experiment_id": str(experiment.iid)}


@routes.route("experiments/get", "GET", EXPERIMENTS_READ, schema=req.GetExperiment)
def get_experiment(ctx: ApiContext):
    return {"experiment": experiment_json(lookups.get_experiment(ctx.session, ctx.project_id, ctx.get("experiment_id")))}


@routes.route("experiments/get-by-name", "GET", EXPERIMENTS_READ, schema=req.GetExperimentByName)
def get_experiment_by_name(ctx: ApiContext):
    experiment = lookups.get_experiment_by_name(ctx.session, ctx.project_id, ctx.get("experiment_name"))
    return {"experiment": experiment_json(experiment)}


@routes.route("experiments/search", ("POST", "GET"), EXPERIMENTS_READ, schema=req.SearchExperiments)
def search_experiments(ctx: ApiContext):
    from ...services import search as search_service

    order_by = ctx.get_list("order_by")
    experiments, token = search_service.search_experiments(
        ctx.session,
        ctx.project_id,
        filter_string=ctx.get("filter") or "",
        view_type=_view_type(ctx, "view_type"),
        max_results=ctx.get("max_results", 1000),
        order_by=order_by,
        page_token=ctx.get("page_token"),
    )
    result: dict = {"experiments": [experiment_json(e) for e in experiments]}
    if token:
        result["next_page_token"] = token
    return result


@routes.route("experiments/list", "GET", EXPERIMENTS_READ, schema=req.ListExperiments)
def list_experiments(ctx: ApiContext):
    experiments = exp_service.list_experiments(ctx.session, ctx.project_id, _view_type(ctx, "view_type"))
    return {"experiments": [experiment_json(e) for e in experiments]}


@routes.route("experiments/update", "POST", EXPERIMENTS_WRITE, schema=req.UpdateExperiment)
def update_experiment(ctx: ApiContext):
    exp_service.rename_experiment(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("new_name"))
    return {}


@routes.route("experiments/delete", "POST", EXPERIMENTS_WRITE, schema=req.ExperimentId)
def delete_experiment(ctx: ApiContext):
    exp_service.delete_experiment(ctx.session, ctx.project_id, ctx.get("experiment_id"))
    return {}


@routes.route("experiments/restore", "POST", EXPERIMENTS_WRITE, schema=req.ExperimentId)
def restore_experiment(ctx: ApiContext):
    exp_service.restore_experiment(ctx.session, ctx.project_id, ctx.get("experiment_id"))
    return {}


@routes.route("experiments/set-experiment-tag", "POST", EXPERIMENTS_WRITE, schema=req.SetExperimentTag)
def set_experiment_tag(ctx: ApiContext):
    exp_service.set_experiment_tag(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("key"), ctx.get("value"))
    return {}


@routes.route("experiments/delete-experiment-tag", "POST", EXPERIMENTS_WRITE, schema=req.DeleteExperimentTag)
def delete_experiment_tag(ctx: ApiContext):
    exp_service.delete_experiment_tag(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("key"))
    return {}


# -- runs ------------------------------------------------------------------------
def _full_run(ctx: ApiContext, run) -> dict:
    return run_json(run, load_run_data(ctx.session, [run.id])[run.id])


@routes.route("runs/create", "POST", EXPERIMENTS_WRITE, schema=req.CreateRun)
def create_run(ctx: ApiContext):
    run = run_service.create_run(
        ctx.session,
        ctx.project_id,
        ctx.get("experiment_id") if ctx.get("experiment_id") not in (None, "") else "0",
        project=ctx.project,
        caller=ctx.user,
        user_id=ctx.get("user_id"),
        start_time=ctx.get("start_time"),
        tags=_tag_pairs(ctx.get_list("tags")),
        run_name=ctx.get("run_name"),
    )
    # A run made in this request has tags only: no params, metrics, inputs or outputs to look up.
    data = load_run_data(ctx.session, [run.id], params=False, metrics=False, inputs=False, outputs=False)[run.id]
    return {"run": run_json(run, data)}


@routes.route("runs/get", "GET", EXPERIMENTS_READ, schema=req.GetRun)
def get_run(ctx: ApiContext):
    run = lookups.get_run(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"))
    return {"run": _full_run(ctx, run)}


@routes.route("runs/update", "POST", EXPERIMENTS_WRITE, schema=req.UpdateRun)
def update_run(ctx: ApiContext):
    run = run_service.update_run(
        ctx.session,
        ctx.project_id,
        ctx.get("run_id") or ctx.get("run_uuid"),
        status=ctx.get("status"),
        end_time=ctx.get("end_time"),
        run_name=ctx.get("run_name"),
        project=ctx.project,
    )
    return {"run_info": run_info_json(run)}


@routes.route("runs/delete", "POST", EXPERIMENTS_WRITE, schema=req.RunId)
def delete_run(ctx: ApiContext):
    run_service.delete_run(ctx.session, ctx.project_id, ctx.get("run_id"))
    return {}


@routes.route("runs/restore", "POST", EXPERIMENTS_WRITE, schema=req.RunId)
def restore_run(ctx: ApiContext):
    run_service.restore_run(ctx.session, ctx.project_id, ctx.get("run_id"))
    return {}


@routes.route("runs/log-metric", "POST", EXPERIMENTS_WRITE, schema=req.LogMetric)
def log_metric(ctx: ApiContext):
    run_logging.log_metric(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"), ctx.args)
    return {}


@routes.route("runs/log-parameter", "POST", EXPERIMENTS_WRITE, schema=req.LogParam)
def log_param(ctx: ApiContext):
    run_logging.log_param(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"), ctx.get("key"), ctx.get("value"))
    return {}


@routes.route("runs/set-tag", "POST", EXPERIMENTS_WRITE, schema=req.SetTag)
def set_tag(ctx: ApiContext):
    run_logging.set_tag(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"), ctx.get("key"), ctx.get("value"),
                        project=ctx.project)
    return {}


@routes.route("runs/delete-tag", "POST", EXPERIMENTS_WRITE, schema=req.DeleteTag)
def delete_tag(ctx: ApiContext):
    run_logging.delete_tag(ctx.session, ctx.project_id, ctx.get("run_id"), ctx.get("key"))
    return {}


@routes.route("runs/log-batch", "POST", EXPERIMENTS_WRITE, schema=req.LogBatch)
def log_batch(ctx: ApiContext):
    run_logging.log_batch(ctx.session, ctx.project_id, ctx.get("run_id"), ctx.get("metrics"), ctx.get("params"), ctx.get("tags"),
                          project=ctx.project)
    return {}


@routes.route("runs/log-inputs", "POST", EXPERIMENTS_WRITE, schema=req.LogInputs)
def log_inputs(ctx: ApiContext):
    run_inputs.log_inputs(ctx.session, ctx.project_id, ctx.get("run_id"), ctx.get("datasets"), ctx.get("models"))
    return {}


@routes.route("runs/search", ("POST", "GET"), EXPERIMENTS_READ, schema=req.SearchRuns)
def search_runs(ctx: ApiContext):
    from ...services import search as search_service

    experiment_ids = ctx.get_list("experiment_ids")
    experiments = [lookups.get_experiment(ctx.session, ctx.project_id, e) for e in experiment_ids]
    runs, token = search_service.search_runs(
        ctx.session,
        ctx.project_id,
        [e.id for e in experiments],
        filter_string=ctx.get("filter") or "",
        run_view_type=_view_type(ctx, "run_view_type"),
        max_results=ctx.get("max_results", 1000),
        order_by=ctx.get_list("order_by"),
        page_token=ctx.get("page_token"),
    )
    data = load_run_data(ctx.session, [r.id for r in runs])
    result: dict = {"runs": [run_json(r, data[r.id]) for r in runs]}
    if token:
        result["next_page_token"] = token
    return result


# -- metrics -----------------------------------------------------------------------
@routes.route("metrics/get-history", "GET", EXPERIMENTS_READ, schema=req.GetMetricHistory)
def get_metric_history(ctx: ApiContext):
    run = lookups.get_run(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"), with_experiment=False)
    key = ctx.get("metric_key")
    if not key:
        raise InvalidParameter("Missing value for required parameter 'metric_key'.")
    if ctx.get("max_results") is None and not ctx.get("page_token"):
        # Old clients do not page: stream the whole history in bounded chunks.
        return _stream_history(ctx, run.id, key)
    rows, token = metric_history.history_page(ctx.session, run, key, ctx.get("max_results"), ctx.get("page_token"))
    # The JSON written directly (the same bytes as dumping the dict): pages hold up to 25,000 points.
    body = '{"metrics":[' + metric_points_text(key, rows) + "]"
    if token:
        body += ',"next_page_token":' + dumps(token)
    return Response(body + "}", mimetype="application/json")


def _stream_history(ctx: ApiContext, run_pk: int, key: str) -> Response:
    session = ctx.session

    def generate():
        yield '{"metrics":['
        first = True
        for rows in metric_history.iter_history_chunks(session, run_pk, key):
            if rows:
                yield ("" if first else ",") + metric_points_text(key, rows)
                first = False
        yield "]}"

    return Response(stream_with_context(generate()), mimetype="application/json")


@routes.route("metrics/get-history-bulk-interval", "GET", EXPERIMENTS_READ, schema=req.GetMetricHistoryBulkInterval)
def get_history_bulk_interval(ctx: ApiContext):
    run_ids = ctx.get_list("run_ids")
    if not run_ids:
        raise InvalidParameter("Missing value for required parameter 'run_ids'. "
                               "See the API docs for more information about request parameters.")
    key = ctx.get("metric_key")
    if not key:
        raise InvalidParameter("Missing value for required parameter 'metric_key'.")
    # The arguments are checked before any run is looked up, as MLflow.
    metric_history.interval_args(ctx.get("start_step"), ctx.get("end_step"), ctx.get("max_results"), len(run_ids))
    runs = lookups.get_runs(ctx.session, ctx.project_id, run_ids[: metric_history.MAX_BULK_RUNS + 1])
    points = metric_history.bulk_interval(ctx.session, runs, key, ctx.get("start_step"), ctx.get("end_step"), ctx.get("max_results"))
    # Up to 100 runs x 2,500 points: the JSON is written directly (the same bytes as dumping the dict).
    texts = []
    for run, group in itertools.groupby(points, key=lambda pair: pair[0]):
        texts.append(metric_points_text(key, [row for _run, row in group], run.run_uuid))
    return Response('{"metrics":[' + ",".join(t for t in texts if t) + "]}", mimetype="application/json")
