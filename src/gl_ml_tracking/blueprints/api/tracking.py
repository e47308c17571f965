"""MLflow tracking endpoints: experiments, runs, metrics. Each view turns
request args into one service call and the result into MLflow's JSON."""
from __future__ import annotations

import itertools
from typing import Any

from flask import Response, current_app, stream_with_context

from ..errors import InvalidParameter
from ..schemas.mlflow_json import dumps, experiment_json, metric_points_text, run_info_json, run_json
from ..services import experiments as exp_service
from ..services import metric_history, runs as run_service
from ..services.ci_link import link_ci_job_from_tags
from ..services.run_data import load_run_data
from ..services.common import user_key
from ..services.validation import parse_int
from .api_framework import EXPERIMENTS_READ, EXPERIMENTS_WRITE, ApiContext, api_route
from .. import signals


def _tag_pairs(raw: Any) -> list[tuple[Any, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidParameter("'tags' must be a list of {key, value} objects.")
    pairs = []
    for tag in raw:
        if not isinstance(tag, dict):
            raise InvalidParameter("'tags' must be a list of {key, value} objects.")
        pairs.append((tag.get("key"), tag.get("value")))
    return pairs


def _view_type(ctx: ApiContext, name: str) -> str:
    value = ctx.get(name) or "ACTIVE_ONLY"
    mapping = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}
    value = mapping.get(str(value), str(value).upper())
    if value not in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        raise InvalidParameter(f"Invalid value '{value}' for '{name}': expected ACTIVE_ONLY, DELETED_ONLY or ALL.")
    return value


# -- experiments -----------------------------------------------------------------
@api_route("experiments/create", "POST", EXPERIMENTS_WRITE)
def create_experiment(ctx: ApiContext):
    experiment = exp_service.create_experiment(
        ctx.session, ctx.project_id, ctx.get("name"), _tag_pairs(ctx.get("tags")), user_id=user_key(ctx.user)
    )
    signals.experiment_created.send(current_app._get_current_object(), project=ctx.project, experiment=experiment)
    return {"experiment_id": str(experiment.iid)}


@api_route("experiments/get", "GET", EXPERIMENTS_READ)
def get_experiment(ctx: ApiContext):
    return {"experiment": experiment_json(exp_service.get_experiment(ctx.session, ctx.project_id, ctx.get("experiment_id")))}


@api_route("experiments/get-by-name", "GET", EXPERIMENTS_READ)
def get_experiment_by_name(ctx: ApiContext):
    experiment = exp_service.get_experiment_by_name(ctx.session, ctx.project_id, ctx.get("experiment_name"))
    return {"experiment": experiment_json(experiment)}


@api_route("experiments/search", ("POST", "GET"), EXPERIMENTS_READ)
def search_experiments(ctx: ApiContext):
    from ..services import search as search_service

    order_by = ctx.get_list("order_by")
    experiments, token = search_service.search_experiments(
        ctx.session,
        ctx.project_id,
        filter_string=ctx.get("filter") or "",
        view_type=_view_type(ctx, "view_type"),
        max_results=parse_int(ctx.get("max_results"), "max_results", default=1000),
        order_by=order_by,
        page_token=ctx.get("page_token"),
    )
    result: dict = {"experiments": [experiment_json(e) for e in experiments]}
    if token:
        result["next_page_token"] = token
    return result


@api_route("experiments/list", "GET", EXPERIMENTS_READ)
def list_experiments(ctx: ApiContext):
    experiments = exp_service.list_experiments(ctx.session, ctx.project_id, _view_type(ctx, "view_type"))
    return {"experiments": [experiment_json(e) for e in experiments]}


@api_route("experiments/update", "POST", EXPERIMENTS_WRITE)
def update_experiment(ctx: ApiContext):
    exp_service.rename_experiment(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("new_name"))
    return {}


@api_route("experiments/delete", "POST", EXPERIMENTS_WRITE)
def delete_experiment(ctx: ApiContext):
    exp_service.delete_experiment(ctx.session, ctx.project_id, ctx.get("experiment_id"))
    return {}


@api_route("experiments/restore", "POST", EXPERIMENTS_WRITE)
def restore_experiment(ctx: ApiContext):
    exp_service.restore_experiment(ctx.session, ctx.project_id, ctx.get("experiment_id"))
    return {}


@api_route("experiments/set-experiment-tag", "POST", EXPERIMENTS_WRITE)
def set_experiment_tag(ctx: ApiContext):
    exp_service.set_experiment_tag(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("key"), ctx.get("value"))
    return {}


@api_route("experiments/delete-experiment-tag", "POST", EXPERIMENTS_WRITE)
def delete_experiment_tag(ctx: ApiContext):
    exp_service.delete_experiment_tag(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("key"))
    return {}


# -- runs ------------------------------------------------------------------------
def _full_run(ctx: ApiContext, run) -> dict:
    return run_json(run, load_run_data(ctx.session, [run.id])[run.id])


@api_route("runs/create", "POST", EXPERIMENTS_WRITE)
def create_run(ctx: ApiContext):
    tags = _tag_pairs(ctx.get("tags"))
    run = run_service.create_run(
        ctx.session,
        ctx.project_id,
        ctx.get("experiment_id") if ctx.get("experiment_id") not in (None, "") else "0",
        user_id=ctx.get("user_id"),
        start_time=ctx.get("start_time"),
        tags=tags,
        run_name=ctx.get("run_name"),
        author_id=user_key(ctx.user),
    )
    link_ci_job_from_tags(ctx.session, ctx.project, run, dict((k, v) for k, v in tags if isinstance(k, str)), ctx.user, creating=True)
    signals.run_created.send(current_app._get_current_object(), project=ctx.project, run=run)
    # A run made in this request has tags only: no params, metrics, inputs or outputs to look up.
    data = load_run_data(ctx.session, [run.id], params=False, metrics=False, inputs=False, outputs=False)[run.id]
    return {"run": run_json(run, data)}


@api_route("runs/get", "GET", EXPERIMENTS_READ)
def get_run(ctx: ApiContext):
    run = run_service.get_run(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"))
    return {"run": _full_run(ctx, run)}


@api_route("runs/update", "POST", EXPERIMENTS_WRITE)
def update_run(ctx: ApiContext):
    run = run_service.update_run(
        ctx.session,
        ctx.project_id,
        ctx.get("run_id") or ctx.get("run_uuid"),
        status=ctx.get("status"),
        end_time=ctx.get("end_time"),
        run_name=ctx.get("run_name"),
    )
    if run.status in run_service.TERMINAL_STATUSES:
        signals.run_finished.send(current_app._get_current_object(), project=ctx.project, run=run)
    return {"run_info": run_info_json(run)}


@api_route("runs/delete", "POST", EXPERIMENTS_WRITE)
def delete_run(ctx: ApiContext):
    run_service.delete_run(ctx.session, ctx.project_id, ctx.get("run_id"))
    return {}


@api_route("runs/restore", "POST", EXPERIMENTS_WRITE)
def restore_run(ctx: ApiContext):
    run_service.restore_run(ctx.session, ctx.project_id, ctx.get("run_id"))
    return {}


@api_route("runs/log-metric", "POST", EXPERIMENTS_WRITE)
def log_metric(ctx: ApiContext):
    run_service.log_metric(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"), ctx.args)
    return {}


@api_route("runs/log-parameter", "POST", EXPERIMENTS_WRITE)
def log_param(ctx: ApiContext):
    run_service.log_param(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"), ctx.get("key"), ctx.get("value"))
    return {}


@api_route("runs/set-tag", "POST", EXPERIMENTS_WRITE)
def set_tag(ctx: ApiContext):
    run = run_service.set_tag(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"), ctx.get("key"), ctx.get("value"))
    link_ci_job_from_tags(ctx.session, ctx.project, run, {ctx.get("key"): ctx.get("value")}, ctx.user)
    return {}


@api_route("runs/delete-tag", "POST", EXPERIMENTS_WRITE)
def delete_tag(ctx: ApiContext):
    run_service.delete_tag(ctx.session, ctx.project_id, ctx.get("run_id"), ctx.get("key"))
    return {}


@api_route("runs/log-batch", "POST", EXPERIMENTS_WRITE)
def log_batch(ctx: ApiContext):
    tags = ctx.get("tags")
    run = run_service.log_batch(ctx.session, ctx.project_id, ctx.get("run_id"), ctx.get("metrics"), ctx.get("params"), tags)
    if tags:
        link_ci_job_from_tags(ctx.session, ctx.project, run, {t.get("key"): t.get("value") for t in tags}, ctx.user)
    return {}


@api_route("runs/log-inputs", "POST", EXPERIMENTS_WRITE)
def log_inputs(ctx: ApiContext):
    run_service.log_inputs(ctx.session, ctx.project_id, ctx.get("run_id"), ctx.get("datasets"))
    return {}


@api_route("runs/search", ("POST", "GET"), EXPERIMENTS_READ)
def search_runs(ctx: ApiContext):
    from ..services import search as search_service

    experiment_ids = ctx.get_list("experiment_ids")
    experiments = [exp_service.get_experiment(ctx.session, ctx.project_id, e) for e in experiment_ids]
    runs, token = search_service.search_runs(
        ctx.session,
        ctx.project_id,
        [e.id for e in experiments],
        filter_string=ctx.get("filter") or "",
        run_view_type=_view_type(ctx, "run_view_type"),
        max_results=parse_int(ctx.get("max_results"), "max_results", default=1000),
        order_by=ctx.get_list("order_by"),
        page_token=ctx.get("page_token"),
    )
    data = load_run_data(ctx.session, [r.id for r in runs])
    result: dict = {"runs": [run_json(r, data[r.id]) for r in runs]}
    if token:
        result["next_page_token"] = token
    return result


# -- metrics -----------------------------------------------------------------------
@api_route("metrics/get-history", "GET", EXPERIMENTS_READ)
def get_metric_history(ctx: ApiContext):
    run = run_service.get_run(ctx.session, ctx.project_id, ctx.get("run_id") or ctx.get("run_uuid"), with_experiment=False)
    key = ctx.get("metric_key")
    if not key:
        raise InvalidParameter("Missing value for required parameter 'metric_key'.")
    if ctx.get("max_results") in (None, "") and not ctx.get("page_token"):
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


@api_route("metrics/get-history-bulk-interval", "GET", EXPERIMENTS_READ)
def get_history_bulk_interval(ctx: ApiContext):
    run_ids = ctx.get_list("run_ids")
    if not run_ids:
        raise InvalidParameter("GetMetricHistoryBulkInterval request must specify at least one run_id.")
    key = ctx.get("metric_key")
    if not key:
        raise InvalidParameter("Missing value for required parameter 'metric_key'.")
    runs = run_service.get_runs(ctx.session, ctx.project_id, run_ids[: metric_history.MAX_BULK_RUNS + 1])
    points = metric_history.bulk_interval(ctx.session, runs, key, ctx.get("start_step"), ctx.get("end_step"), ctx.get("max_results"))
    # Up to 100 runs x 2,500 points: the JSON is written directly (the same bytes as dumping the dict).
    texts = []
    for run, group in itertools.groupby(points, key=lambda pair: pair[0]):
        texts.append(metric_points_text(key, [row for _run, row in group], run.run_uuid))
    return Response('{"metrics":[' + ",".join(t for t in texts if t) + "]}", mimetype="application/json")
