"""MLflow's artifacts proxy (``<tracking URI>/api/2.0/mlflow-artifacts/...``) on the package
registry, and ``/api/3.0/mlflow/server-info``.

Paths are mapped onto packages by :mod:`gl_ml_tracking.services.artifacts`. Multipart uploads
(used by the client for big files once server-info enables them) go through our own part
endpoint: the client PUTs parts to the URLs we hand out *without* its token, so each URL
carries a signed, expiring upload token instead (HMAC with the app's SECRET_KEY) naming the
project, the package file and the storage upload it belongs to. No state is kept in the
process, so any worker can take any part.
"""
from __future__ import annotations

from typing import Any

from flask import current_app, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ...errors import InvalidParameter, PermissionDenied, ProjectNotFound, ResourceDoesNotExist
from ...state import get_state
from ...hooks import READ_MODEL_EXPERIMENTS, READ_PACKAGE, WRITE_MODEL_EXPERIMENTS, WRITE_PACKAGE
from ...services import artifacts as artifact_service
from ...services import package_writes
from ...services import packages as pkg
from ...http.files import file_response
from ...http.pipeline import Access
from ...http.responses import json_response
from ...schemas import artifacts as req  # the request schemas
from ...schemas.common import NoParameters
from .framework import ApiContext, Routes

ARTIFACTS = "/api/2.0/mlflow-artifacts/"
ARTIFACTS_READ = Access((READ_MODEL_EXPERIMENTS, READ_PACKAGE))
ARTIFACTS_WRITE = Access((READ_MODEL_EXPERIMENTS, READ_PACKAGE), (WRITE_MODEL_EXPERIMENTS, WRITE_PACKAGE))
# Part uploads authenticate with the signed upload token in their URL.
SIGNED_PART = Access((), (), authenticate=False)
SERVER_INFO = Access((READ_MODEL_EXPERIMENTS,))

UPLOAD_TOKEN_MAX_AGE = 24 * 3600
_SALT = "gl-ml-tracking.mlflow-multipart-upload"

routes = Routes()  # this module's endpoints, gathered by blueprints/api/__init__.py


# --------------------------------------------------------------------------- plain files


@routes.route("artifacts/<path:artifact_path>", "PUT", ARTIFACTS_WRITE, ajax=False, json_body=False, prefix=ARTIFACTS, schema=NoParameters)
def upload_artifact(ctx: ApiContext):
    name, version, file_path = artifact_service.resolve_artifact_path(ctx.session, ctx.project_id, ctx.get("artifact_path"))
    if not file_path:
        raise InvalidParameter("The artifact path must name a file inside a run, logged model or trace.")
    # No md5 on the way in: the MLflow client never asks for it, and md5 (one core, ~830 MB/s
    # here) held a 256 MB save to ~500 MB/s in-process (~950 without it) and made uploads
    # through the client slower than the reference server's. The package files API computes
    # it when it first lists the file.
    artifact_service.store_artifact(ctx.session, ctx.project_id, name, version, file_path, request.stream,
                                    request.headers.get("Content-Type"), project=ctx.project,
                                    content_length=request.content_length, with_md5=False)
    return {}


@routes.route("artifacts/<path:artifact_path>", "GET", ARTIFACTS_READ, ajax=False, json_body=False, prefix=ARTIFACTS, schema=NoParameters)
def download_artifact(ctx: ApiContext):
    name, version, file_path = artifact_service.resolve_artifact_path(ctx.session, ctx.project_id, ctx.get("artifact_path"))
    file = artifact_service.get_artifact_file(ctx.session, ctx.project_id, name, version, file_path)
    return file_response(file, head=request.method == "HEAD")


@routes.route("artifacts/<path:artifact_path>", "DELETE", ARTIFACTS_WRITE, ajax=False, json_body=False, prefix=ARTIFACTS, schema=NoParameters)
def delete_artifact(ctx: ApiContext):
    # The client deletes a whole run as "<root>/" (a directory): accept the trailing slash.
    path = str(ctx.get("artifact_path") or "")
    path = path[:-1] if path.endswith("/") else path
    name, version, file_path = artifact_service.resolve_artifact_path(ctx.session, ctx.project_id, path)
    artifact_service.delete_artifacts(ctx.session, ctx.project_id, name, version, file_path)
    return {}


@routes.route("artifacts", "GET", ARTIFACTS_READ, ajax=False, json_body=False, prefix=ARTIFACTS, schema=req.ListProxiedArtifacts)
def list_artifacts(ctx: ApiContext):
    path = ctx.get("path", "")  # a string: given twice, the schema refused it
    # The client lists "<root>/." to download a whole run ("." = the directory itself).
    path = "/".join(part for part in path.split("/") if part not in ("", "."))
    return {"files": artifact_service.list_path(ctx.session, ctx.project_id, path)}


# --------------------------------------------------------------------------- server-info


@routes.route("server-info", "GET", SERVER_INFO, ajax=False, json_body=False, prefix="/api/3.0/mlflow/", schema=NoParameters)
def server_info(ctx: ApiContext):
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": _multipart_enabled(),
        # Downloads are streamed (with Range support) by the proxy itself.
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


# --------------------------------------------------------------------------- multipart uploads


def _multipart_enabled() -> bool:
    setting = get_state().config.multipart_uploads
    if setting == "auto":
        return get_state().get_storage().assembles_parts_cheaply
    return bool(setting)


def _serializer() -> URLSafeTimedSerializer:
    secret = current_app.config.get("SECRET_KEY")
    if not secret:
        raise InvalidParameter("Multipart uploads need the application's SECRET_KEY to be set.")
    return URLSafeTimedSerializer(secret, salt=_SALT)


BAD_SIGNATURE = ("The upload URL's signature did not verify: it was signed with another SECRET_KEY "
                 "(every host must share one) or altered.")


def verify_part_url() -> None:
    """A part URL's token, checked before its project is looked up: a token that does
    not verify or has expired answers 403 saying so, the same for every project (a
    refusal that named a missing project would tell which private projects exist)."""
    token = request.args.get("upload_id")
    if not token:
        raise PermissionDenied("The upload URL carries no upload token (upload_id).")
    try:
        _serializer().loads(token, max_age=UPLOAD_TOKEN_MAX_AGE)
    except SignatureExpired:
        raise PermissionDenied("The upload URL has expired; start the upload again.") from None
    except BadSignature:
        raise PermissionDenied(BAD_SIGNATURE) from None


def _load_token(ctx: ApiContext, token: Any, anonymous: bool = False) -> dict:
    """The data of a valid upload token of this project. For an ``anonymous`` caller (a part
    upload, whose signature ``verify_part_url`` checked first) a token of another project
    answers like a missing project, so the endpoint cannot be used to probe which private
    projects exist."""
    def refuse(message: str) -> Exception:
        return ProjectNotFound() if anonymous else ResourceDoesNotExist(message)

    if not isinstance(token, str) or not token:
        raise refuse("Missing value for required parameter 'upload_id'.")
    try:
        data = _serializer().loads(token, max_age=UPLOAD_TOKEN_MAX_AGE)
    except SignatureExpired:
        raise refuse("The multipart upload has expired.") from None
    except BadSignature:
        raise refuse("No such multipart upload.") from None
    if not isinstance(data, dict) or data.get("project") != ctx.project_id:
        raise refuse("No such multipart upload.")
    return data


def _target(ctx: ApiContext) -> tuple[str, str, str]:
    """Package, version and file path the multipart request is about: the directory in the
    URL plus the base name of the client's local file (as MLflow's server does)."""
    if not _multipart_enabled():
        # The client falls back to a plain PUT on exactly this message.
        raise InvalidParameter("Multipart upload is not supported for the current artifact repository")
    name, version, directory = artifact_service.resolve_artifact_path(ctx.session, ctx.project_id, ctx.get("artifact_path"))
    file_name = artifact_service.mlflow_file_name(ctx.get("path"))
    file_path = f"{directory}/{file_name}" if directory else file_name
    pkg.validate_file_path(file_path)
    return name, version, file_path


def _check_token_target(data: dict, target: tuple[str, str, str]) -> None:
    if (data.get("name"), data.get("version"), data.get("file")) != target:
        raise InvalidParameter("The upload id belongs to another artifact path.")


def _part_url(ctx: ApiContext, part_number: int, token: str) -> str:
    return routes.url_for(upload_part, project_ref=str(ctx.project.id), part_number=part_number, upload_id=token,
                          _external=True)


@routes.route("mpu/create/<path:artifact_path>", "POST", ARTIFACTS_WRITE, ajax=False, prefix=ARTIFACTS, schema=req.CreateMultipartUpload)
def create_multipart(ctx: ApiContext):
    name, version, file_path = _target(ctx)
    num_parts = ctx.get("num_parts", 1)
    if not 1 <= num_parts <= 10_000:
        raise InvalidParameter("num_parts must be between 1 and 10000.")
    key, upload_id = package_writes.begin_multipart(ctx.project_id)
    token = _serializer().dumps({"project": ctx.project_id, "key": key, "upload": upload_id,
                                 "name": name, "version": version, "file": file_path})
    return {"upload_id": token,
            "credentials": [{"url": _part_url(ctx, n, token), "part_number": n, "headers": {}}
                            for n in range(1, num_parts + 1)]}


@routes.route("mpu/part/<int:part_number>", "PUT", SIGNED_PART, ajax=False, json_body=False, prefix=ARTIFACTS,
              schema=req.UploadPart, precheck=verify_part_url)
def upload_part(ctx: ApiContext):
    data = _load_token(ctx, ctx.get("upload_id"), anonymous=True)
    etag = package_writes.upload_part(data["key"], data["upload"], int(ctx.get("part_number")), request.stream)
    response = json_response({})
    response.headers["ETag"] = f'"{etag}"'
    return response


def _parts(raw: list[dict]) -> list[tuple[int, str]]:
    # The schema made these {part_number: int, etag: str} objects; both are needed here.
    if not raw or any(part.get("part_number") is None or part.get("etag") is None for part in raw):
        raise InvalidParameter("'parts' must be a non-empty list of {part_number, etag}.")
    return [(part["part_number"], part["etag"]) for part in raw]


@routes.route("mpu/complete/<path:artifact_path>", "POST", ARTIFACTS_WRITE, ajax=False, prefix=ARTIFACTS, schema=req.CompleteMultipartUpload)
def complete_multipart(ctx: ApiContext):
    target = _target(ctx)
    data = _load_token(ctx, ctx.get("upload_id"))
    _check_token_target(data, target)
    name, version, file_path = target
    artifact_service.complete_artifact_upload(ctx.session, ctx.project_id, name, version, file_path, data["key"],
                                              data["upload"], _parts(ctx.get_list("parts")), project=ctx.project)
    return {}


@routes.route("mpu/abort/<path:artifact_path>", "POST", ARTIFACTS_WRITE, ajax=False, prefix=ARTIFACTS, schema=req.AbortMultipartUpload)
def abort_multipart(ctx: ApiContext):
    target = _target(ctx)
    data = _load_token(ctx, ctx.get("upload_id"))
    _check_token_target(data, target)
    package_writes.abort_multipart(data["key"], data["upload"])
    return {}
