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
MLflow-shaped JSON (``{"error_code", "message"}``).
"""
from __future__ import annotations

import logging
import re
from functools import wraps
from typing import Any, Callable
from urllib.parse import quote

from flask import Blueprint, Flask, abort, current_app, render_template, request, url_for

from .. import access
from ..errors import InvalidParameter, MlflowError
from ..state import get_state
from ..hooks import READ_BUILD, READ_MODEL_EXPERIMENTS
from ..services import ci_info
from ..services.merge_request_view import merge_request_view
from ..services.runs import get_run_by_iid
from .api_framework import error_response, json_response

log = logging.getLogger("gl_ml_tracking.ci")

BLUEPRINT_NAME = "gl_ml_tracking_ci"
MAX_RUNS_PAGE = 1000
_PROJECT_PATH = re.compile(r"<(?:[a-z]+:)?project_path>")


# -- helpers ----------------------------------------------------------------------------
def _project(project_path: str, *, need_build: bool) -> Any:
    access.current_user()  # resolve the caller once, before any permission check
    project = access.load_project(project_path)
    access.require_read(project, READ_MODEL_EXPERIMENTS)
    if need_build:
        access.require_read(project, READ_BUILD)
    return project


def ui_url(project: Any, suffix: str) -> str:
    """A page of this project under the configured UI prefix (the run and
    experiment pages belong to the UI blueprint; their paths follow GitLab)."""
    path = quote(project.full_path, safe="/")
    prefix = _PROJECT_PATH.sub(lambda _m: path, get_state().config.ui_prefix)
    return request.script_root + prefix + suffix


def _with_urls(project: Any, run: dict) -> dict:
    run["url"] = ui_url(project, f"/ml/candidates/{run['run_iid']}")
    return run


def _decorate(project: Any, view: dict) -> dict:
    iid = view["merge_request"]["iid"]
    view["url"] = url_for(f"{BLUEPRINT_NAME}.merge_request_page", project_path=project.full_path, iid=iid)
    view["json_url"] = url_for(f"{BLUEPRINT_NAME}.merge_request_json", project_path=project.full_path, iid=iid)
    for group in view["experiments"]:
        group["url"] = ui_url(project, f"/ml/experiments/{group['experiment_id']}")
        group["runs_url"] = group["url"] + f"?merge_request_iid={iid}"
        if group["baseline"] is not None:
            _with_urls(project, group["baseline"])
        for run in group["runs"]:
            _with_urls(project, run)
    return view


def _json_view(fn: Callable[..., Any]) -> Callable[..., Any]:
    """JSON out, errors as MLflow JSON; never an HTML page or a stack trace."""

    @wraps(fn)
    def view(**kwargs: Any):
        session = get_state().session
        try:
            return json_response(fn(**kwargs))
        except MlflowError as error:
            return error_response(error)
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            return error_response(MlflowError("An internal error occurred.", "INTERNAL_ERROR", 500))
        finally:
            session.rollback()  # read-only views: nothing to keep

    return view


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"'{name}' must be an integer, got {raw[:50]!r}.") from None
    if not low <= value <= high:
        raise InvalidParameter(f"'{name}' must be between {low} and {high}, got {value}.")
    return value


# -- views ------------------------------------------------------------------------------
def merge_request_json(project_path: str, iid: int):
    project = _project(project_path, need_build=True)
    return _decorate(project, merge_request_view(get_state().session, project, access.project_key(project), iid))


def merge_request_page(project_path: str, iid: int):
    try:
        project = _project(project_path, need_build=True)
        view = _decorate(project, merge_request_view(get_state().session, project, access.project_key(project), iid))
    except MlflowError as error:  # unreadable project, unknown MR: the host's 404 page
        abort(error.status if error.status in (400, 403, 404) else 500)
    return render_template(
        "gl_ml_tracking/merge_request.html",
        base_template=get_state().config.base_template,
        project=project,
        view=_table_rows(view),
        experiments_url=ui_url(project, "/ml/experiments"),
        stylesheet=_ui_stylesheet(),
        fmt_value=fmt_value,
        fmt_delta=fmt_delta,
        BASELINE_REASONS=BASELINE_REASONS,
        STATUS_BADGES=STATUS_BADGES,
    )


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
    try:
        from .ui_support import STATIC_BP_NAME
    except ImportError:
        return None
    if STATIC_BP_NAME in current_app.blueprints:
        try:
            return url_for(f"{STATIC_BP_NAME}.static", filename="ui.css")
        except Exception:  # the UI changed its static files: the page still works
            return None
    return None


def run_ci_json(project_path: str, iid: int):
    project = _project(project_path, need_build=False)
    run = get_run_by_iid(get_state().session, access.project_key(project), iid)
    visible = ci_info.can_view_ci(project)
    return {
        "run_id": run.run_uuid,
        "run_iid": run.iid,
        "can_read_build": visible,
        "ci": ci_info.ci_info_for_run(project, run) if visible else None,
    }


def ci_runs_json(project_path: str):
    project = _project(project_path, need_build=True)
    ci_filter = ci_info.CiFilter.from_args(request.args)
    if not ci_filter.active:
        raise InvalidParameter("Give 'pipeline_id' or 'merge_request_iid' (or both).")
    experiment_iid = _int_arg("experiment_id", 0, 0, 2**62) or None
    max_results = _int_arg("max_results", 100, 1, MAX_RUNS_PAGE)
    after = _int_arg("page_token", 0, 0, 2**62) or None
    session = get_state().session
    runs, next_after = ci_info.runs_for_ci_filter(session, project, access.project_key(project), ci_filter,
                                                  experiment_iid, max_results, after)
    infos = ci_info.ci_info_for_runs(project, runs)
    result: dict = {"runs": [
        _with_urls(project, {
            "run_id": run.run_uuid, "run_iid": run.iid, "name": run.name, "status": run.status,
            "experiment_id": str(run.experiment.iid), "start_time": run.start_time, "end_time": run.end_time,
            "ci": infos[run.id],
        }) for run in runs
    ]}
    if next_after is not None:
        result["next_page_token"] = str(next_after)
    return result


def make_blueprint() -> Blueprint:
    bp = Blueprint(BLUEPRINT_NAME, __name__, template_folder="../templates")
    bp.add_url_rule("/ml/merge_requests/<int:iid>", "merge_request_page", merge_request_page, methods=["GET"])
    bp.add_url_rule("/ml/merge_requests/<int:iid>.json", "merge_request_json", _json_view(merge_request_json),
                    methods=["GET"])
    bp.add_url_rule("/ml/candidates/<int:iid>/ci.json", "run_ci_json", _json_view(run_ci_json), methods=["GET"])
    bp.add_url_rule("/ml/ci/runs.json", "ci_runs_json", _json_view(ci_runs_json), methods=["GET"])
    try:  # the same headers (CSP, nosniff, framing) as the UI's pages
        from .ui_support import security_headers
    except ImportError:
        security_headers = None
    if security_headers is not None:
        bp.after_request(security_headers)
    return bp


def register_ci_views(app: Flask) -> None:
    """Mount the CI pages and JSON under the UI prefix (when the UI is enabled)."""
    if app.config["GL_ML_TRACKING_ENABLE_UI"]:
        app.register_blueprint(make_blueprint(), url_prefix=app.config["GL_ML_TRACKING_UI_PREFIX"])
