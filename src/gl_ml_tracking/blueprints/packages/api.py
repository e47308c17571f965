"""GitLab-compatible package registry API, mounted under GL_ML_TRACKING_PACKAGES_PREFIX
(``/api/v4/projects/<project_ref>/packages`` by default).

* ``PUT|GET|HEAD /generic/<name>/<version>/<file path>``: upload (streamed from the request
  body, 201), download (streamed; ``Range`` gives 206), metadata.
* ``GET /ml_models/<name>/<version>/<file path>``: download a file of a registered model
  version's package (``package_type`` ``ml_model``).
* ``GET ''``: the project's packages (``package_name`` substring, ``package_type``,
  ``package_version``, ``order_by``, ``sort``; ``page``/``per_page`` with GitLab's
  ``X-*``/``Link`` headers, or keyset with ``pagination=keyset`` / ``cursor``).
* ``GET /<id>``, ``GET /<id>/package_files``, ``GET /<id>/package_files/<file id>/download``,
  ``DELETE /<id>``, ``DELETE /<id>/package_files/<file id>``.

Authentication as the MLflow API: a user is required (401), a project the caller cannot
read is 404, ``read_package`` to read and ``write_package`` to write (403). Errors are
GitLab's ``{"message": ...}`` JSON, never an HTML page.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from typing import Any, Callable, Optional
from urllib.parse import urlencode

from flask import Blueprint, Response, g, request, url_for
from werkzeug.urls import iri_to_uri

from ...errors import (
    DataConflict,
    DataRejected,
    InternalError,
    InvalidParameter,
    MlflowError,
    PermissionDenied,
    ResourceDoesNotExist,
    TemporarilyUnavailable,
)
from ...state import get_state
from ...hooks import READ_PACKAGE, WRITE_PACKAGE
from ...http.args import int_arg
from ...http.converters import PATH_CONVERTER, add_converters
from ...http.files import file_response
from ...http.pipeline import Access, Surface, serve
from ...http.urls import PACKAGES_BLUEPRINT, UI_BLUEPRINT, endpoint_url
from ...models import Package, PackageFile
from ...services import artifacts as artifact_service
from ...services import package_writes
from ...services import packages as pkg

log = logging.getLogger("gl_ml_tracking.packages")

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
READ = Access((READ_PACKAGE,))
WRITE = Access((READ_PACKAGE,), (WRITE_PACKAGE,))


# --------------------------------------------------------------------------- JSON shapes


def _iso(ms: Optional[int]) -> Optional[str]:
    if ms is None:
        return None
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def package_json(project: Any, package: Package, file_count: Optional[int] = None) -> dict:
    # The package's page: the UI's, or where it would be when the UI is disabled.
    web_path = endpoint_url(UI_BLUEPRINT, "package", get_state().config.ui_prefix, f"/packages/{package.id}",
                            project_path=project.full_path, package_id=package.id)
    out = {
        "id": package.id,
        "name": package.name,
        "version": package.version,
        "package_type": package.package_type,
        "status": package.status,
        "_links": {
            "web_path": web_path,
            "delete_api_path": url_for(f"{PACKAGES_BLUEPRINT}.delete_package", project_ref=str(project.id),
                                       package_id=package.id),
        },
        "created_at": _iso(package.created_at),
        "updated_at": _iso(package.updated_at),
        "last_downloaded_at": None,
        "pipelines": [],
        "tags": [],
    }
    if file_count is not None:
        out["file_count"] = file_count
    return out


def package_file_json(file: PackageFile) -> dict:
    return {
        "id": file.id,
        "package_id": file.package_id,
        "created_at": _iso(file.created_at),
        "file_name": file.file_path,
        "size": file.size,
        "file_md5": file.md5,
        "file_sha1": None,
        "file_sha256": file.sha256,
        "content_type": file.content_type,
        "pipelines": [],
    }


def _json(payload: Any, status: int = 200, headers: Optional[dict] = None) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status=status, mimetype="application/json",
                    headers=headers)


def _message(status: int, message: str) -> Response:
    return _json({"message": message}, status)


# --------------------------------------------------------------------------- request plumbing


# GitLab's own wording for the failures every endpoint shares: (status, message).
_GITLAB_ANSWERS = {
    PermissionDenied: (403, "403 Forbidden"),
    DataConflict: (409, "The request conflicts with existing data; retry."),
    TemporarilyUnavailable: (503, None),  # the error's own words: the database or the storage
    DataRejected: (400, "The database rejected a value of the request."),
    InternalError: (500, "500 Internal Server Error"),
}


def gitlab_error(error: MlflowError) -> Response:
    """GitLab's error JSON, ``{"message": ...}``; MLflow's error code where GitLab has no wording."""
    for kind, (status, message) in _GITLAB_ANSWERS.items():
        if isinstance(error, kind):
            return _message(status, message or error.message)
    if error.status == 401:
        return _message(401, "401 Unauthorized")
    if error.status == 404 and isinstance(error, ResourceDoesNotExist) and error.message.startswith("404"):
        return _message(404, error.message)
    return _json({"message": error.message, "error_code": error.error_code}, error.status)


PACKAGES_API = Surface(render_error=gitlab_error, log=log)


def _endpoint(needed: Access, view: Callable[..., Response]) -> Callable[..., Response]:
    """``view(project, project_id, **url values)`` behind the pipeline."""
    @functools.wraps(view)
    def wrapper(**kwargs):
        return serve(PACKAGES_API, needed, g.glml_project_ref,
                     lambda caller: view(caller.project, caller.project_id, **kwargs))
    return wrapper


def _page_url(**changes: Any) -> str:
    args = request.args.to_dict()
    args.update({k: str(v) for k, v in changes.items() if v is not None})
    for k, v in changes.items():
        if v is None:
            args.pop(k, None)
    # iri_to_uri: the decoded path may hold non-ASCII (a ref like '%EF%BC%91'), which cannot go
    # into a header as is; the server would drop the whole response.
    return f"{iri_to_uri(request.base_url)}?{urlencode(args)}"


def _offset_headers(page: int, per_page: int, total: int) -> dict:
    pages = max(1, -(-total // per_page))
    headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(total),
               "X-Total-Pages": str(pages), "X-Next-Page": str(page + 1) if page < pages else "",
               "X-Prev-Page": str(page - 1) if page > 1 else ""}
    links = []
    if page > 1:
        links.append(f'<{_page_url(page=page - 1)}>; rel="prev"')
    if page < pages:
        links.append(f'<{_page_url(page=page + 1)}>; rel="next"')
    links.append(f'<{_page_url(page=1)}>; rel="first"')
    links.append(f'<{_page_url(page=pages)}>; rel="last"')
    headers["Link"] = ", ".join(links)
    return headers


def _upload_length() -> Optional[int]:
    return request.content_length


# --------------------------------------------------------------------------- views


def upload_generic(project: Any, project_id: str, name: str, version: str, file_path: str) -> Response:
    session = get_state().session
    stored = artifact_service.store_artifact(
        session, project_id, name, version, file_path, request.stream,
        request.headers.get("Content-Type"), project=project, content_length=_upload_length())
    body = {"message": "201 Created"}
    body.update(package_file_json(stored))
    return _json(body, 201)


def download(project: Any, project_id: str, name: str, version: str, file_path: str,
             package_type: str = pkg.GENERIC) -> Response:
    session = get_state().session
    pkg.validate_package_name(name, package_type)
    pkg.validate_version(version)
    pkg.validate_file_path(file_path)
    file = pkg.get_file(session, project_id, name, version, file_path, package_type)
    return file_response(file, head=request.method == "HEAD")


def list_view(project: Any, project_id: str) -> Response:
    session = get_state().session
    per_page = int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE, clamp=True)
    sort = (request.args.get("sort") or "asc").lower()
    if sort not in ("asc", "desc"):
        raise InvalidParameter("sort must be asc or desc.")
    package_type = request.args.get("package_type") or None
    filters = dict(package_name=request.args.get("package_name") or None, package_type=package_type,
                   package_version=request.args.get("package_version") or None)
    cursor = request.args.get("cursor")
    if cursor is not None or request.args.get("pagination") == "keyset":
        result = pkg.list_packages(session, project_id, **filters, sort=sort, per_page=per_page, keyset=True,
                                   cursor=cursor)
        headers = {"X-Per-Page": str(per_page)}
        if result.next_token is not None:
            token = result.next_token
            headers["X-Next-Cursor"] = token
            headers["Link"] = f'<{_page_url(cursor=token, pagination="keyset", page=None)}>; rel="next"'
    else:
        page = int_arg("page", 1, 1)
        result = pkg.list_packages(session, project_id, **filters, order_by=request.args.get("order_by") or "created_at",
                                   sort=sort, page=page, per_page=per_page)
        headers = _offset_headers(page, per_page, result.total or 0)
    counts = pkg.count_files(session, [p.id for p in result.packages])
    return _json([package_json(project, p, counts.get(p.id, 0)) for p in result.packages], headers=headers)


def get_view(project: Any, project_id: str, package_id: int) -> Response:
    session = get_state().session
    package = pkg.get_package(session, project_id, package_id)
    return _json(package_json(project, package, pkg.count_files(session, [package.id]).get(package.id, 0)))


def files_view(project: Any, project_id: str, package_id: int) -> Response:
    session = get_state().session
    package = pkg.get_package(session, project_id, package_id)
    files = pkg.package_files(session, package)
    per_page = int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE, clamp=True)
    page = int_arg("page", 1, 1)
    chunk = files[(page - 1) * per_page: page * per_page]
    pkg.fill_missing_md5(chunk)
    return _json([package_file_json(f) for f in chunk], headers=_offset_headers(page, per_page, len(files)))


def file_download_view(project: Any, project_id: str, package_id: int, file_id: int) -> Response:
    session = get_state().session
    package = pkg.get_package(session, project_id, package_id)
    return file_response(pkg.get_file_by_id(session, package, file_id), head=request.method == "HEAD")


def delete_view(project: Any, project_id: str, package_id: int) -> Response:
    session = get_state().session
    package_writes.delete_package(session, pkg.get_package(session, project_id, package_id))
    return Response(status=204)


def delete_file_view(project: Any, project_id: str, package_id: int, file_id: int) -> Response:
    session = get_state().session
    package = pkg.get_package(session, project_id, package_id)
    package_writes.delete_file(session, package, pkg.get_file_by_id(session, package, file_id))
    return Response(status=204)


def make_blueprint() -> Blueprint:
    bp = Blueprint(PACKAGES_BLUEPRINT, __name__)
    bp.record_once(add_converters)  # before the rules that use it

    @bp.url_value_preprocessor
    def pop_project_ref(endpoint, values):
        g.glml_project_ref = (values or {}).pop("project_ref", "")

    generic = f"/generic/<name>/<version>/<{PATH_CONVERTER}:file_path>"
    bp.add_url_rule(generic, "upload_generic", _endpoint(WRITE, upload_generic), methods=["PUT"])
    bp.add_url_rule(generic, "download_generic", _endpoint(READ, download), methods=["GET", "HEAD"])
    bp.add_url_rule(f"/ml_models/<name>/<version>/<{PATH_CONVERTER}:file_path>", "download_ml_model",
                    _endpoint(READ, functools.partial(download, package_type=pkg.ML_MODEL)), methods=["GET", "HEAD"])
    bp.add_url_rule("", "list_packages", _endpoint(READ, list_view), methods=["GET"])
    bp.add_url_rule("/", "list_packages_slash", _endpoint(READ, list_view), methods=["GET"])
    bp.add_url_rule("/<int:package_id>", "get_package", _endpoint(READ, get_view), methods=["GET"])
    bp.add_url_rule("/<int:package_id>", "delete_package", _endpoint(WRITE, delete_view), methods=["DELETE"])
    bp.add_url_rule("/<int:package_id>/package_files", "package_files", _endpoint(READ, files_view), methods=["GET"])
    bp.add_url_rule("/<int:package_id>/package_files/<int:file_id>/download", "download_package_file",
                    _endpoint(READ, file_download_view), methods=["GET", "HEAD"])
    bp.add_url_rule("/<int:package_id>/package_files/<int:file_id>", "delete_package_file",
                    _endpoint(WRITE, delete_file_view), methods=["DELETE"])

    def not_found(**_kwargs):
        return _message(404, "404 Not Found")

    # Anything else under the prefix (a generic path without a file, a bad id) is JSON too.
    bp.add_url_rule(f"/<{PATH_CONVERTER}:rest>", "not_found", not_found,
                    methods=["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"])
    return bp
