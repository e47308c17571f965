"""The artifact endpoints older MLflow clients and MLflow's own UI use, besides the proxy:

* ``<tracking URI>/api/2.0/mlflow/artifacts/list?run_id=&path=`` (and ``/ajax-api/``):
  ``{root_uri, files}``, each ``path`` relative to the run's root as MLflow lists them;
* ``<tracking URI>/get-artifact?run_id=&path=``: one file of a run;
* ``<tracking URI>/model-versions/get-artifact?name=&version=&path=``: one file of a
  registered version whose files are here (a version of a source kept elsewhere has none).

Everything is looked up in the request's project, through the same services as the proxy.
"""
from __future__ import annotations

from urllib.parse import urlparse

from flask import request

from ...errors import InvalidParameter, ResourceDoesNotExist
from ...hooks import READ_MODEL_EXPERIMENTS, READ_MODEL_REGISTRY, READ_PACKAGE
from ...http.files import file_response
from ...http.pipeline import Access
from ...schemas import artifacts as req
from ...services import artifacts as artifact_service
from ...services import lookups
from ...services import packages as pkg
from ...services.registered_models import get_model_version
from ...services.uris import run_artifact_uri
from .framework import ApiContext, Routes

routes = Routes()  # this module's endpoints, gathered by blueprints/api/__init__.py

RUN_FILES_READ = Access((READ_MODEL_EXPERIMENTS, READ_PACKAGE))
VERSION_FILES_READ = Access((READ_MODEL_REGISTRY, READ_PACKAGE))


def _relative(path: str) -> str:
    """A path inside a run: validated as the proxy does ('' is the root); refused with
    MLflow's message."""
    path = "/".join(part for part in str(path or "").split("/") if part not in ("", "."))
    try:
        return pkg.validate_file_path(path, allow_empty=True, what="artifact path")
    except InvalidParameter:
        raise InvalidParameter("Invalid path") from None


def _run_root(ctx: ApiContext) -> str:
    run_id = ctx.get("run_id") or ctx.get("run_uuid")
    run = lookups.get_run(ctx.session, ctx.project_id, run_id)
    return run_artifact_uri(run.experiment.iid, run.iid)


def _proxy_path(root: str, path: str) -> str:
    """The proxy path of ``path`` under an ``mlflow-artifacts:/`` root of this project."""
    base = urlparse(root).path.strip("/")
    return f"{base}/{path}" if path else base


@routes.route("artifacts/list", "GET", RUN_FILES_READ, json_body=False, schema=req.ListArtifacts)
def list_run_artifacts(ctx: ApiContext):
    path = _relative(ctx.get("path", ""))
    root = _run_root(ctx)
    files = artifact_service.list_path(ctx.session, ctx.project_id, _proxy_path(root, path))
    prefix = path + "/" if path else ""
    return {"root_uri": root, "files": [{**f, "path": prefix + f["path"]} for f in files]}


def _send(ctx: ApiContext, root: str, path: str):
    """The file at ``path`` under ``root``; MLflow's answers for a directory (400) and a
    missing file (404)."""
    name, version, file_path = artifact_service.resolve_artifact_path(ctx.session, ctx.project_id, _proxy_path(root, path))
    try:
        file = artifact_service.get_artifact_file(ctx.session, ctx.project_id, name, version, file_path)
    except ResourceDoesNotExist:
        if not path or artifact_service.list_artifacts(ctx.session, ctx.project_id, name, version, file_path):
            raise InvalidParameter(f"Artifact path refers to a directory, not a file: '{path}'") from None
        raise ResourceDoesNotExist(f"No such artifact: '{path}'") from None
    return file_response(file, head=request.method == "HEAD")


@routes.route("get-artifact", "GET", RUN_FILES_READ, ajax=False, json_body=False, prefix="/", schema=req.GetRunArtifact)
def get_run_artifact(ctx: ApiContext):
    path = _relative(ctx.get("path", ""))
    return _send(ctx, _run_root(ctx), path)


@routes.route("model-versions/get-artifact", "GET", VERSION_FILES_READ, ajax=False, json_body=False, prefix="/",
              schema=req.GetVersionArtifact)
def get_version_artifact(ctx: ApiContext):
    path = _relative(ctx.get("path", ""))  # checked first, as MLflow
    mv = get_model_version(ctx.session, ctx.project_id, ctx.get("name"), ctx.get("version"))
    root = mv.storage_location or ""
    if not root.startswith("mlflow-artifacts:"):
        raise ResourceDoesNotExist(
            f"The files of model version {mv.version} of {mv.registered_model.name} are not stored on this server "
            f"(source {mv.source}).")
    return _send(ctx, root, path)
