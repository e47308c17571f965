"""Pages: a run (GitLab's "candidate") with its charts and artifacts; the
bounded chart-data endpoint; artifact downloads; the run's delete, restore
and promote-to-model-version POSTs."""
from __future__ import annotations

import posixpath
from typing import Any, Optional

from flask import jsonify, request

from ... import hooks as perms
from ...errors import InvalidParameter, MlflowError, ResourceDoesNotExist
from ...models import ACTIVE
from ...services import artifact_previews as previews
from ...services import artifacts as artifact_service
from ...services import logged_model_search, lookups
from ...services import metric_charts
from ...services import model_versions, registered_models, registry_search
from ...services import packages as pkg
from ...services import runs as run_service
from ...services import ui_queries as q
from ...services.ci_link import resolve_job
from ...services.common import user_key
from ...services.markdown_safe import render_markdown
from ...services.run_data import load_run_data
from ...services.uris import experiment_package_name, run_artifact_uri
from ...http.args import int_arg
from ...http.files import file_response
from ...http.pipeline import Surface
from .traces import linked_traces
from .support import (
    PAGES,
    PageContext,
    add_page,
    done,
    present_user,
    render,
    settings,
)

NOTE_TAG = "mlflow.note.content"
HTML_ARTIFACT_CSP = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                     "frame-ancestors 'self'")
MAX_CHART_METRICS = 24  # charts on one run page (more keys: pick from the list)
MAX_ARTIFACT_ENTRIES = 1000  # entries of one artifacts directory shown


def register(bp) -> None:
    write = perms.WRITE_MODEL_EXPERIMENTS
    add_page(bp, "/ml/candidates/<int:iid>", "run", run_page)
    add_page(bp, "/ml/candidates/<int:iid>/chart-data", "chart_data", chart_data, surface=CHART_DATA)
    add_page(bp, "/ml/candidates/<int:iid>/artifacts/raw", "artifact_raw", artifact_raw,
             read=(perms.READ_MODEL_EXPERIMENTS, perms.READ_PACKAGE))
    add_page(bp, "/ml/candidates/<int:iid>/delete", "delete_run", delete_run, write=write)
    add_page(bp, "/ml/candidates/<int:iid>/restore", "restore_run", restore_run, write=write)
    add_page(bp, "/ml/candidates/<int:iid>/promote", "promote_run", promote_run,
             read=(perms.READ_MODEL_REGISTRY,), write=perms.WRITE_MODEL_REGISTRY)


def _package_of(run) -> tuple[str, str]:
    return experiment_package_name(run.experiment.iid), str(run.iid)


def _clean_path(raw: Optional[str]) -> str:
    path = (raw or "").strip().strip("/")
    if not path:
        return ""
    return pkg.validate_file_path(path, allow_empty=True, what="artifact path")


# --------------------------------------------------------------------------- run page
def _artifacts(ctx: PageContext, run) -> dict:
    """The artifacts browser: one directory's entries, the run's package, and a
    preview of the selected file (size-limited)."""
    if not ctx.can_read_packages:
        return {"allowed": False}
    name, version = _package_of(run)
    result: dict[str, Any] = {"allowed": True, "error": None, "entries": [], "preview": None, "package": None}
    try:
        directory = _clean_path(request.args.get("path"))
        selected = _clean_path(request.args.get("file"))
    except InvalidParameter as exc:
        result["error"] = exc.message
        directory, selected = "", ""
    if selected and "path" not in request.args:
        directory = posixpath.dirname(selected)  # a preview opens in its folder
    result["path"] = directory
    result["crumbs"] = _path_crumbs(directory)
    result["package"] = pkg.find_package(ctx.session, ctx.project_id, name, version)
    if result["package"] is None:
        return result
    entries = artifact_service.list_artifacts(ctx.session, ctx.project_id, name, version, directory)
    result["truncated"] = len(entries) > MAX_ARTIFACT_ENTRIES
    result["entries"] = [
        dict(e, full_path=f"{directory}/{e['path']}" if directory else e["path"]) for e in entries[:MAX_ARTIFACT_ENTRIES]
    ]
    if selected:
        result["preview"] = previews.preview(ctx.session, ctx.project_id, name, version, selected,
                                             int(settings().preview_max_bytes), int_arg("table_page", 1, 1, lenient=True))
    return result


def _path_crumbs(directory: str) -> list[tuple[str, str]]:
    crumbs, acc = [], []
    for part in directory.split("/") if directory else []:
        acc.append(part)
        crumbs.append((part, "/".join(acc)))
    return crumbs


def _split_tags(tags: list) -> tuple[list, list, Optional[str]]:
    """(user tags, system tags, note) — MLflow's own tags start with ``mlflow.``."""
    user, system, note = [], [], None
    for key, value in tags:
        if key == NOTE_TAG:
            note = value
        elif key.startswith("mlflow."):
            system.append((key, value))
        else:
            user.append((key, value))
    return user, system, note


def run_page(ctx: PageContext, iid: int):
    session = ctx.session
    run = lookups.get_run_by_iid(session, ctx.project_id, iid)
    experiment = run.experiment
    data = load_run_data(session, [run.id])[run.id]
    user_tags, system_tags, note = _split_tags(data.tags)
    parent = q.runs_by_pks(session, ctx.project_id, [run.parent_id]).get(run.parent_id) if run.parent_id else None
    children, child_count = q.child_runs(session, ctx.project_id, run)
    ci_job = resolve_job(ctx.project, run.ci_job_id) if run.ci_job_id and ctx.can_read_builds else None
    logged_models, _ = logged_model_search.search(
        session, ctx.project_id, [str(experiment.iid)], filter_string=f"source_run_id = '{run.run_uuid}'",
        max_results=50)
    versions = []
    if ctx.can_read_registry:
        versions, _ = registry_search.search_model_versions(session, ctx.project_id, f"run_id = '{run.run_uuid}'", 50)
    metric_keys = [m[0] for m in data.metrics]
    chart_keys = request.args.getlist("charts") or metric_keys[:MAX_CHART_METRICS]
    chart_keys = [k for k in chart_keys if k in set(metric_keys)][:MAX_CHART_METRICS]
    model_names = []
    if ctx.can_write_registry:
        found, _ = registry_search.search_registered_models(session, ctx.project_id, None, 100, ["name ASC"], None)
        model_names = [m.name for m in found]
    return render(
        "run.html",
        run=run,
        experiment=experiment,
        author=present_user(run.author_id),
        params=data.params,
        metrics=data.metrics,
        user_tags=user_tags,
        system_tags=system_tags,
        note_html=render_markdown(note) if note else None,
        note_source=note or "",
        parent=parent,
        children=children,
        child_count=child_count,
        datasets=data.inputs,
        logged_models=logged_models,
        versions=versions,
        ci_job=ci_job,
        show_ci=ctx.can_read_builds,
        artifacts=_artifacts(ctx, run),
        artifact_uri=run_artifact_uri(experiment.iid, run.iid),
        metric_keys=metric_keys,
        chart_keys=chart_keys,
        model_names=model_names,
        logged_model_names=sorted({m.name for m in logged_models}),
        is_active=run.lifecycle_stage == ACTIVE,
        **linked_traces(session, ctx.project_id, run),
    )


# --------------------------------------------------------------------------- chart data
def _chart_error(error: MlflowError):
    # What the page may not see is simply not found, as on the pages themselves.
    status = 404 if isinstance(error, ResourceDoesNotExist) or error.status in (403, 404) else error.status
    return jsonify({"error_code": error.error_code, "message": error.message}), status


# The chart data is the pages' JSON: the pages' checks, errors as JSON.
CHART_DATA = Surface(render_error=_chart_error, enter=PAGES.enter, passthrough=PAGES.passthrough)


def chart_data(ctx: PageContext, iid: int):
    """JSON for one metric's chart: at most ``buckets`` (≤ 1000) points of
    min/max/last, whatever the history's length."""
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    key = request.args.get("key", "")
    if not key:
        raise InvalidParameter("Missing value for required parameter 'key'.")
    x, buckets, start, end = metric_charts.parse_chart_args(
        request.args.get("x"), request.args.get("buckets"), request.args.get("start"), request.args.get("end"))
    data = metric_charts.chart_buckets(ctx.session, run.id, key, x=x, buckets=buckets, start=start, end=end)
    payload = metric_charts.buckets_json(data)
    payload.update(run_iid=run.iid, run_name=run.name or f"Run {run.iid}")
    response = jsonify(payload)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# --------------------------------------------------------------------------- artifact download
def artifact_raw(ctx: PageContext, iid: int):
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    path = _clean_path(request.args.get("path"))
    if not path:
        raise ResourceDoesNotExist("No such artifact")
    name, version = _package_of(run)
    file = artifact_service.get_artifact_file(ctx.session, ctx.project_id, name, version, path)
    ext = posixpath.splitext(path)[1].lower()
    inline = request.args.get("inline") == "1" and ext in previews.INLINE_IMAGES
    as_page = request.args.get("inline") == "1" and ext in previews.HTML_FILES
    response = file_response(file, allow_redirect=not (inline or as_page))
    if inline:
        response.headers["Content-Disposition"] = "inline"
        response.headers["Content-Type"] = previews.INLINE_IMAGES[ext]
    elif as_page and response.status_code == 200:
        # An HTML artifact (sklearn's estimator.html) shown in the run page's frame: a
        # sandbox (unique origin: no script runs, no cookie or storage of ours is
        # reachable, no form posts, no navigation of the page), no network at all,
        # only this page may frame it.
        response.headers["Content-Disposition"] = "inline"
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        response.headers["Content-Security-Policy"] = HTML_ARTIFACT_CSP
    return response


# --------------------------------------------------------------------------- mutations
def delete_run(ctx: PageContext, iid: int):
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    experiment_iid = run.experiment.iid
    run_service.delete_run(ctx.session, ctx.project_id, run.run_uuid)
    return done(f"Run {iid} moved to the trash.", "experiment", iid=experiment_iid)


def restore_run(ctx: PageContext, iid: int):
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    run_service.restore_run(ctx.session, ctx.project_id, run.run_uuid)
    return done(f"Run {iid} restored.", "run", iid=iid)


def promote_run(ctx: PageContext, iid: int):
    """Register the run (or one of its logged models) as a new version of a
    registered model, creating the model when the name is new."""
    if not ctx.can(perms.READ_MODEL_EXPERIMENTS):
        raise ResourceDoesNotExist("Not found")
    session = ctx.session
    run = lookups.get_run_by_iid(session, ctx.project_id, iid)
    name = (request.form.get("model_name") or "").strip()
    sub_path = (request.form.get("artifact_path") or "").strip().strip("/")
    description = (request.form.get("description") or "").strip() or None
    if not name:
        raise InvalidParameter("Give the model a name.")
    if any(segment in ("", ".", "..") for segment in sub_path.split("/")) and sub_path:
        raise InvalidParameter("The artifact path may not contain empty, '.' or '..' segments.")
    source = f"runs:/{run.run_uuid}/{sub_path}" if sub_path else f"runs:/{run.run_uuid}"
    try:
        registered_models.get_registered_model(session, ctx.project_id, name)
    except ResourceDoesNotExist:
        registered_models.create_registered_model(session, ctx.project_id, name, user_id=user_key(ctx.user))
    version = model_versions.create_model_version(session, ctx.project_id, name, source, run_id=run.run_uuid,
                                            description=description, user_id=user_key(ctx.user))
    return done(f"Run {iid} registered as version {version.version} of model “{name}”.", "model", name=name)
