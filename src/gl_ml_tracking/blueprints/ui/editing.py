"""Pages' edits, where MLflow's UI allows them: rename a run, its note
(Markdown, with a preview), its tags; an experiment's description and tags.

Every edit is a CSRF-checked POST needing ``write_model_experiments`` (a
caller who may not write gets 404, as on every page POST), answered by a
redirect back to the page (PRG); the change goes through ``services.editing``,
i.e. the same services as the MLflow API."""
from __future__ import annotations

from flask import jsonify, request

from ...errors import MlflowError, ResourceDoesNotExist
from ...http.pipeline import Surface

from ... import hooks as perms
from ...services import editing, lookups
from ...services import ui_queries as q
from ...services.markdown_safe import render_markdown
from .support import PAGES, FormRejected, PageContext, add_page, done

WRITE = perms.WRITE_MODEL_EXPERIMENTS
PREVIEW_MAX_CHARS = 100_000


def _json_error(error: MlflowError):
    # A refused token is said (403); what the caller may not see or do is simply not found.
    status = error.status
    if not isinstance(error, FormRejected) and (isinstance(error, ResourceDoesNotExist) or status in (403, 404)):
        status = 404
    return jsonify({"error_code": error.error_code, "message": error.message}), status


# The preview's JSON: the pages' checks, errors as JSON.
PREVIEW_JSON = Surface(render_error=_json_error, enter=PAGES.enter, passthrough=PAGES.passthrough)


def register(bp) -> None:
    add_page(bp, "/ml/candidates/<int:iid>/rename", "rename_run", rename_run, write=WRITE)
    add_page(bp, "/ml/candidates/<int:iid>/note", "edit_run_note", edit_run_note, write=WRITE)
    add_page(bp, "/ml/candidates/<int:iid>/tags", "add_run_tag", add_run_tag, write=WRITE)
    add_page(bp, "/ml/candidates/<int:iid>/tags/delete", "delete_run_tag", delete_run_tag, write=WRITE)
    add_page(bp, "/ml/experiments/<int:iid>/description", "edit_experiment_description",
             edit_experiment_description, write=WRITE)
    add_page(bp, "/ml/experiments/<int:iid>/tags", "add_experiment_tag", add_experiment_tag, write=WRITE)
    add_page(bp, "/ml/experiments/<int:iid>/tags/delete", "delete_experiment_tag", delete_experiment_tag,
             write=WRITE)
    # JSON for the note and description editors' Preview tab (CSRF-checked like any POST).
    add_page(bp, "/ml/markdown-preview", "markdown_preview", markdown_preview, write=WRITE, surface=PREVIEW_JSON)


# --------------------------------------------------------------------------- runs
def rename_run(ctx: PageContext, iid: int):
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    editing.rename_run(ctx.session, ctx.project_id, run, request.form.get("name"), project=ctx.project)
    return done(f"Run {iid} renamed to “{run.name}”.", "run", iid=iid)


def edit_run_note(ctx: PageContext, iid: int):
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    kept = editing.set_run_note(ctx.session, ctx.project_id, run, request.form.get("note"))
    return done("Note saved." if kept else "Note removed.", "run", iid=iid, _anchor="note")


def add_run_tag(ctx: PageContext, iid: int):
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    key = editing.set_run_tag(ctx.session, ctx.project_id, run, request.form.get("key"), request.form.get("value"),
                              project=ctx.project)
    return done(f"Tag “{key}” saved.", "run", iid=iid, _anchor="tags")


def delete_run_tag(ctx: PageContext, iid: int):
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    key = editing.delete_run_tag(ctx.session, ctx.project_id, run, request.form.get("key"))
    return done(f"Tag “{key}” deleted.", "run", iid=iid, _anchor="tags")


# --------------------------------------------------------------------------- experiments
def edit_experiment_description(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    kept = editing.set_experiment_description(ctx.session, ctx.project_id, experiment,
                                              request.form.get("description"))
    return done("Description saved." if kept else "Description removed.", "experiment", iid=iid)


def add_experiment_tag(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    key = editing.set_experiment_tag(ctx.session, ctx.project_id, experiment, request.form.get("key"),
                                     request.form.get("value"))
    return done(f"Tag “{key}” saved.", "experiment", iid=iid, _anchor="experiment-tags")


def delete_experiment_tag(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    key = editing.delete_experiment_tag(ctx.session, ctx.project_id, experiment, request.form.get("key"))
    return done(f"Tag “{key}” deleted.", "experiment", iid=iid, _anchor="experiment-tags")


# --------------------------------------------------------------------------- preview
def markdown_preview(ctx: PageContext):
    """The Markdown as the page will show it (the same safe renderer)."""
    text = (request.form.get("text") or "")[:PREVIEW_MAX_CHARS]
    response = jsonify({"html": str(render_markdown(text))})
    response.headers["Cache-Control"] = "no-store"
    return response
