"""Pages: a logged model (``/ml/logged-models/<model id>``) and a registered
model's version (``/ml/models/<name>/versions/<version>``, GitLab's shape), with
their files and signature; and the registry's edits made from them: register a
logged model as a version, a version's description, aliases, tags and stage,
deleting a version or a whole model.

Every edit is a CSRF-checked POST (``support.add_page(write=...)``) that calls the
same service as the MLflow API, then redirects back with a notice.
"""
from __future__ import annotations

from flask import request

from ... import hooks as perms
from ...errors import InvalidParameter, ResourceDoesNotExist
from ...http.files import file_response
from ...services import logged_models, lookups, model_aliases, model_files, model_versions, registered_models
from ...services import registry_describe, registry_search
from ...services import ui_queries as q
from ...services.common import user_key
from ...services.markdown_safe import render_markdown
from .support import PageContext, add_page, done, render

EXPERIMENTS = perms.READ_MODEL_EXPERIMENTS
REGISTRY = perms.READ_MODEL_REGISTRY
STAGES = ("None", "Staging", "Production", "Archived")
# A string, not <int:version>: a POST to ".../versions/x/aliases" must reach its view (and be
# refused there as not found), not fall through to the model page's GET rule (405).
VERSION = "/ml/models/<path:name>/versions/<version>"


def register(bp) -> None:
    write = perms.WRITE_MODEL_REGISTRY
    add_page(bp, "/ml/logged-models/<model_id>", "logged_model", logged_model_page)
    add_page(bp, "/ml/logged-models/<model_id>/files/raw", "logged_model_file", logged_model_file,
             read=(EXPERIMENTS, perms.READ_PACKAGE))
    add_page(bp, "/ml/logged-models/<model_id>/register", "register_logged_model", register_logged_model,
             read=(EXPERIMENTS, REGISTRY), write=write)
    add_page(bp, VERSION, "model_version", _numbered(version_page), read=(REGISTRY,))
    add_page(bp, VERSION + "/files/raw", "model_version_file", _numbered(version_file),
             read=(REGISTRY, perms.READ_PACKAGE))
    for suffix, endpoint, view in (
        ("/description", "version_description", version_description),
        ("/aliases", "version_alias_add", version_alias_add),
        ("/aliases/delete", "version_alias_delete", version_alias_delete),
        ("/tags", "version_tag_set", version_tag_set),
        ("/tags/delete", "version_tag_delete", version_tag_delete),
        ("/stage", "version_stage", version_stage),
        ("/delete", "version_delete", version_delete),
    ):
        add_page(bp, VERSION + suffix, endpoint, _numbered(view), read=(REGISTRY,), write=write)
    add_page(bp, "/ml/models/<path:name>/delete", "model_delete", model_delete, read=(REGISTRY,), write=write)


def _form(name: str) -> str:
    return (request.form.get(name) or "").strip()


def _numbered(view):
    """``view(ctx, name, version: int)`` for a URL whose version is text: anything but a
    version number names no version (404)."""
    def numbered(ctx: PageContext, name: str, version: str):
        if not version.isdecimal() or len(version) > 9:  # isdecimal, not isdigit: int("²") fails
            raise ResourceDoesNotExist(f"Model version {version[:20]!r} not found.")
        return view(ctx, name, int(version))
    return numbered


# --------------------------------------------------------------------------- logged model
def logged_model_page(ctx: PageContext, model_id: str):
    session = ctx.session
    model = lookups.get_logged_model(session, ctx.project_id, model_id, allow_deleted=True)
    data = logged_models.load_model_data(session, [model.id])[model.id]
    run = lookups.find_run_by_uuid(session, ctx.project_id, model.source_run_uuid)
    files = model_files.ModelFiles(None)
    files_error = None
    if ctx.can_read_packages:
        try:
            files = model_files.gather(session, ctx.project_id,
                                       model_files.logged_model_location(session, ctx.project_id, model),
                                       request.args.get("path") or "")
        except (InvalidParameter, ResourceDoesNotExist) as exc:
            files_error = exc.message
    versions = model_files.versions_of_logged_model(session, ctx.project_id, model.model_id) \
        if ctx.can_read_registry else []
    model_names = []
    if ctx.can_write_registry:
        found, _ = registry_search.search_registered_models(session, ctx.project_id, None, 100, ["name ASC"], None)
        model_names = [m.name for m in found]
    return render(
        "logged_model.html",
        model=model,
        experiment=model.experiment,
        run=run,
        params=data.params,
        tags=[(k, val) for k, val in data.tags if k != logged_models.MODEL_VERSIONS_TAG],
        metrics=data.metrics,
        files=files,
        files_error=files_error,
        versions=versions,
        model_names=model_names,
    )


def logged_model_file(ctx: PageContext, model_id: str):
    model = lookups.get_logged_model(ctx.session, ctx.project_id, model_id, allow_deleted=True)
    location = model_files.logged_model_location(ctx.session, ctx.project_id, model)
    return file_response(model_files.file_of(ctx.session, ctx.project_id, location, request.args.get("path", "")))


def register_logged_model(ctx: PageContext, model_id: str):
    """A new version of a registered model (created when the name is new) from this logged model."""
    session = ctx.session
    model = lookups.get_logged_model(session, ctx.project_id, model_id)
    name = _form("model_name")
    if not name:
        raise InvalidParameter("Give the registered model a name.")
    try:
        registered_models.get_registered_model(session, ctx.project_id, name)
    except ResourceDoesNotExist:
        registered_models.create_registered_model(session, ctx.project_id, name, user_id=user_key(ctx.user))
    mv = model_versions.create_model_version(
        session, ctx.project_id, name, f"models:/{model.model_id}", run_id=model.source_run_uuid,
        model_id=model.model_id, description=_form("description") or None, user_id=user_key(ctx.user))
    return done(f"Registered as version {mv.version} of model “{mv.registered_model.name}”.", "model_version",
                name=mv.registered_model.name, version=mv.version)


# --------------------------------------------------------------------------- model version
def version_page(ctx: PageContext, name: str, version: int):
    session = ctx.session
    mv = registered_models.get_model_version(session, ctx.project_id, name, version)
    view = registry_describe.describe_versions(session, [mv])[0]
    run = None
    if mv.run_uuid and ctx.can(EXPERIMENTS):
        run = q.runs_by_uuids(session, ctx.project_id, [mv.run_uuid]).get(mv.run_uuid)
    logged = None
    if mv.model_id and ctx.can(EXPERIMENTS):
        try:
            logged = lookups.get_logged_model(session, ctx.project_id, mv.model_id, allow_deleted=True)
        except ResourceDoesNotExist:
            logged = None
    files = model_files.ModelFiles(None)
    files_error = None
    if ctx.can_read_packages:
        try:
            files = model_files.gather(session, ctx.project_id, model_files.version_location(session, ctx.project_id, mv),
                                       request.args.get("path") or "")
        except (InvalidParameter, ResourceDoesNotExist) as exc:
            files_error = exc.message
    return render(
        "model_version.html",
        mv=mv,
        model=mv.registered_model,
        view=view,
        run=run,
        logged=logged,
        files=files,
        files_error=files_error,
        stages=STAGES,
        description_html=render_markdown(mv.description) if mv.description else None,
    )


def version_file(ctx: PageContext, name: str, version: int):
    mv = registered_models.get_model_version(ctx.session, ctx.project_id, name, version)
    location = model_files.version_location(ctx.session, ctx.project_id, mv)
    return file_response(model_files.file_of(ctx.session, ctx.project_id, location, request.args.get("path", "")))


def _back(message: str, mv) -> object:
    return done(message, "model_version", name=mv.registered_model.name, version=mv.version)


def version_description(ctx: PageContext, name: str, version: int):
    mv = model_versions.update_model_version(ctx.session, ctx.project_id, name, version,
                                             request.form.get("description", ""))
    return _back("Description saved.", mv)


def version_alias_add(ctx: PageContext, name: str, version: int):
    alias = _form("alias")
    model_aliases.set_alias(ctx.session, ctx.project_id, name, alias, version)
    mv = registered_models.get_model_version(ctx.session, ctx.project_id, name, version)
    return _back(f"Alias @{alias} now points to version {mv.version}.", mv)


def version_alias_delete(ctx: PageContext, name: str, version: int):
    mv = registered_models.get_model_version(ctx.session, ctx.project_id, name, version)
    alias = _form("alias")
    model_aliases.delete_alias(ctx.session, ctx.project_id, name, alias)
    return _back(f"Alias @{alias} removed.", mv)


def version_tag_set(ctx: PageContext, name: str, version: int):
    key = _form("key")
    model_versions.set_model_version_tag(ctx.session, ctx.project_id, name, version, key,
                                         request.form.get("value", ""))
    mv = registered_models.get_model_version(ctx.session, ctx.project_id, name, version)
    return _back(f"Tag “{key}” saved.", mv)


def version_tag_delete(ctx: PageContext, name: str, version: int):
    key = _form("key")
    model_versions.delete_model_version_tag(ctx.session, ctx.project_id, name, version, key)
    mv = registered_models.get_model_version(ctx.session, ctx.project_id, name, version)
    return _back(f"Tag “{key}” removed.", mv)


def version_stage(ctx: PageContext, name: str, version: int):
    stage = _form("stage")
    if stage not in STAGES:
        raise InvalidParameter(f"Stage must be one of {', '.join(STAGES)}.")
    mv = model_versions.transition_stage(ctx.session, ctx.project_id, name, version, stage)
    return _back(f"Stage set to {mv.current_stage}.", mv)


def version_delete(ctx: PageContext, name: str, version: int):
    mv = registered_models.get_model_version(ctx.session, ctx.project_id, name, version)
    model_name, number = mv.registered_model.name, mv.version
    model_versions.delete_model_version(ctx.session, ctx.project_id, name, version)
    return done(f"Version {number} of model “{model_name}” deleted.", "model", name=model_name)


def model_delete(ctx: PageContext, name: str):
    model = registered_models.get_registered_model(ctx.session, ctx.project_id, name)
    model_name = model.name
    registered_models.delete_registered_model(ctx.session, ctx.project_id, name)
    return done(f"Model “{model_name}” and its versions deleted.", "models")
