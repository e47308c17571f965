"""CI pages and JSON, mounted under the UI prefix (``/<project full path>/-``):

| method and path (after the prefix)      | what                                              |
|-----------------------------------------|---------------------------------------------------|
| GET ``/ml/merge_requests/<iid>``        | page: the MR's runs and metric changes            |
| GET ``/ml/merge_requests/<iid>.json``   | the same as JSON, for a host's own MR page        |
| GET ``/ml/candidates/<iid>/ci.json``    | one run's CI info (``ci: null`` when hidden)      |
| GET ``/ml/ci/runs.json``                | runs of ``?pipeline_id=`` and/or ``?merge_request_iid=`` |

Callers are identified by the host's ``user_loader`` (browser session or
token headers), so a host page can fetch the JSON with its session and a
script with ``PRIVATE-TOKEN``/``Authorization: Bearer``. A project the caller
cannot read is 404; the MR view and the runs list also need ``read_build``
(404 without it, as GitLab hides what it does not let you see). Errors are
MLflow-shaped JSON (``{"error_code", "message"}``); the MR page shows the host's
error page.
"""
from __future__ import annotations

import logging
from functools import wraps
from typing import Any, Callable

from flask import Blueprint, Flask, abort, current_app, render_template, request, url_for

from ...errors import InvalidParameter, MlflowError
from ...state import get_state
from ...hooks import READ_BUILD, READ_MODEL_EXPERIMENTS
from ...http.args import int_arg
from ...http.pipeline import Access, Caller, Surface, serve
from ...http.responses import error_response, json_response
from ...http.urls import UI_BLUEPRINT
from ...services import ci_info
from ...services.merge_request_view import merge_request_view
from ...services.lookups import get_run_by_iid
from ... import access
from ... import hooks as perms
from .support import STATIC_BP_NAME, project_web_url, security_headers

log = logging.getLogger("gl_ml_tracking.ci")

BLUEPRINT_NAME = "gl_ml_tracking_ci"
MAX_RUNS_PAGE = 1000
# No token needed: a host's page fetches these with its session, a script with a token.
RUNS_READ = Access((READ_MODEL_EXPERIMENTS,), authenticate=False)
# The MR view and the runs list show pipelines and jobs, which GitLab hides without read_build.
BUILDS_READ = Access((READ_MODEL_EXPERIMENTS, READ_BUILD), authenticate=False)


# -- helpers ----------------------------------------------------------------------------
def ui_url(project: Any, endpoint: str, **values: Any) -> str:
    """A page of this project (the run and experiment pages belong to the UI
    blueprint, which is always registered with this one)."""
    return url_for(f"{UI_BLUEPRINT}.{endpoint}", project_path=project.full_path, **values)


def _with_urls(project: Any, run: dict) -> dict:
    run["url"] = ui_url(project, "run", iid=run["run_iid"])
    return run


def _decorate(project: Any, view: dict) -> dict:
    iid = view["merge_request"]["iid"]
    view["url"] = url_for(f"{BLUEPRINT_NAME}.merge_request_page", project_path=project.full_path, iid=iid)
    view["json_url"] = url_for(f"{BLUEPRINT_NAME}.merge_request_json", project_path=project.full_path, iid=iid)
    for group in view["experiments"]:
        group["url"] = ui_url(project, "experiment", iid=int(group["experiment_id"]))
        group["runs_url"] = group["url"] + f"?merge_request_iid={iid}"
        if group["baseline"] is not None:
            _with_urls(project, group["baseline"])
        for run in group["runs"]:
            _with_urls(project, run)
    return view


def _host_error_page(error: MlflowError):
    # Unreadable project, unknown MR: the host's own error page.
    abort(error.status if error.status in (400, 403, 404) else 500)


CI_JSON = Surface(render_error=error_response, render_result=json_response, log=log)
CI_PAGE = Surface(render_error=_host_error_page, log=log)


def _ci_view(surface: Surface, needed: Access, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(caller, **url values)`` behind the pipeline; these views only read."""

    @wraps(fn)
    def view(project_path: str, **kwargs: Any):
        return serve(surface, needed, project_path, lambda caller: fn(caller, **kwargs), read_only=True)

    return view


# -- views ------------------------------------------------------------------------------
def merge_request_json(caller: Caller, iid: int):
    return _decorate(caller.project, merge_request_view(get_state().session, caller.project, caller.project_id, iid))


def merge_request_page(caller: Caller, iid: int):
    project = caller.project
    view = merge_request_json(caller, iid)
    return render_template(
        "gl_ml_tracking/merge_request.html",
        base_template=get_state().config.base_template,
        project=project,
        view=_table_rows(view),
        experiments_url=ui_url(project, "experiments"),
        project_url=project_web_url(project),
        tabs=project_tabs(project),
        stylesheet=_ui_stylesheet(),
        fmt_value=fmt_value,
        fmt_delta=fmt_delta,
        BASELINE_REASONS=BASELINE_REASONS,
        STATUS_BADGES=STATUS_BADGES,
    )


def project_tabs(project: Any) -> list[tuple[str, str, bool]]:
    """The tab bar of the project's ML pages, as the other pages show it: (label, URL, active)."""
    tabs = [("Model experiments", ui_url(project, "experiments"), True)]
    if access.can(project, perms.READ_MODEL_REGISTRY):
        tabs.append(("Model registry", ui_url(project, "models"), False))
    if access.can(project, perms.READ_PACKAGE):
        tabs.append(("Package registry", ui_url(project, "packages"), False))
    if access.can(project, perms.WRITE_MODEL_EXPERIMENTS):
        tabs.append(("Trash", ui_url(project, "trash"), False))
    return tabs


# -- page formatting --------------------------------------------------------------------
STATUS_BADGES = {"RUNNING": "info", "SCHEDULED": "neutral", "FINISHED": "success", "FAILED": "danger",
                 "KILLED": "warning"}
BASELINE_REASONS = {
    "target_branch_unknown":
        "The target branch of this merge request is not known, so there is nothing to compare with.",
    "no_target_branch_jobs":
        "No CI jobs ran on the target branch yet, so there is nothing to compare with.",
    "no_finished_run_on_target_branch":
        "No finished run of this experiment was logged by a CI job on the target branch.",
}


def _table_rows(view: dict) -> dict:
    """Per experiment: the metric names (the table's columns) and each run's
    metrics by name, so the template draws one row per run."""
    for group in view["experiments"]:
        keys = set()
        for run in group["runs"]:
            run["by_key"] = {m["key"]: m for m in run["metrics"]}
            keys.update(run["by_key"])
        baseline = group["baseline"]
        if baseline is not None:
            baseline["by_key"] = {m["key"]: m for m in baseline["metrics"]}
            keys.update(baseline["by_key"])
        group["metric_keys"] = sorted(keys)
    return view


def fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):  # NaN, Infinity as MLflow writes them
        return value
    return f"{value:.6g}"


def fmt_delta(metric: dict) -> str:
    delta, relative = metric.get("delta"), metric.get("relative_delta")
    if delta is None:
        return ""
    if delta == 0:
        return "±0"
    text = f"{delta:+.4g}"
    if relative is not None:
        text += f" ({relative * 100:+.1f}%)"
    return text


def _ui_stylesheet() -> Any:
    """The UI's stylesheet, when the UI blueprint serves one, so this page
    looks like the others (it also carries its own few rules)."""
    if STATIC_BP_NAME in current_app.blueprints:
        try:
            return url_for(f"{STATIC_BP_NAME}.static", filename="ui.css")
        except Exception:  # the UI changed its static files: the page still works
            return None
    return None


def run_ci_json(caller: Caller, iid: int):
    project = caller.project
    run = get_run_by_iid(get_state().session, caller.project_id, iid)
    visible = ci_info.can_view_ci(project)
    return {
        "run_id": run.run_uuid,
        "run_iid": run.iid,
        "can_read_build": visible,
        "ci": ci_info.ci_info_for_run(project, run) if visible else None,
    }


def ci_runs_json(caller: Caller):
    project = caller.project
    ci_filter = ci_info.CiFilter.from_args(request.args)
    if not ci_filter.active:
        raise InvalidParameter("Give 'pipeline_id' or 'merge_request_iid' (or both).")
    experiment_iid = int_arg("experiment_id", 0, 0, 2**62) or None
    max_results = int_arg("max_results", 100, 1, MAX_RUNS_PAGE)
    session = get_state().session
    runs, next_token = ci_info.runs_for_ci_filter(session, project, caller.project_id, ci_filter,
                                                  experiment_iid, max_results, request.args.get("page_token"))
    infos = ci_info.ci_info_for_runs(project, runs)
    result: dict = {"runs": [
        _with_urls(project, {
            "run_id": run.run_uuid, "run_iid": run.iid, "name": run.name, "status": run.status,
            "experiment_id": str(run.experiment.iid), "start_time": run.start_time, "end_time": run.end_time,
            "ci": infos[run.id],
        }) for run in runs
    ]}
    if next_token is not None:
        result["next_page_token"] = next_token
    return result


def make_blueprint() -> Blueprint:
    bp = Blueprint(BLUEPRINT_NAME, __name__, template_folder="../templates")
    bp.add_url_rule("/ml/merge_requests/<int:iid>", "merge_request_page",
                    _ci_view(CI_PAGE, BUILDS_READ, merge_request_page), methods=["GET"])
    bp.add_url_rule("/ml/merge_requests/<int:iid>.json", "merge_request_json",
                    _ci_view(CI_JSON, BUILDS_READ, merge_request_json), methods=["GET"])
    bp.add_url_rule("/ml/candidates/<int:iid>/ci.json", "run_ci_json", _ci_view(CI_JSON, RUNS_READ, run_ci_json),
                    methods=["GET"])
    bp.add_url_rule("/ml/ci/runs.json", "ci_runs_json", _ci_view(CI_JSON, BUILDS_READ, ci_runs_json), methods=["GET"])
    bp.after_request(security_headers)  # the same headers (CSP, nosniff, framing) as the UI's pages
    return bp


def register_ci_views(app: Flask, settings: Any) -> None:
    """Mount the CI pages and JSON under the UI prefix (when the UI is enabled)."""
    if settings.enable_ui:
        app.register_blueprint(make_blueprint(), url_prefix=settings.ui_prefix)
