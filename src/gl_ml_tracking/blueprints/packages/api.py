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

import base64
import binascii
import datetime as dt
import functools
import json
import logging
import posixpath
import re
from typing import Any, Callable, Optional
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, redirect, request, stream_with_context
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from werkzeug.routing import PathConverter
from werkzeug.urls import iri_to_uri
from werkzeug.wsgi import wrap_file

from .. import access
from ..errors import InvalidParameter, MlflowError, ResourceDoesNotExist
from ..state import get_state
from ..hooks import READ_PACKAGE, WRITE_PACKAGE
from ..models import Package, PackageFile
from ..registry.storage import DEFAULT_CHUNK_SIZE, content_disposition
from ..services import artifacts as artifact_service
from ..services import packages as pkg

log = logging.getLogger("gl_ml_tracking.packages")

DEFAULT_PER_PAGE = 20
PATH_CONVERTER = "glml_anypath"
MAX_PER_PAGE = 100


# --------------------------------------------------------------------------- JSON shapes


def _iso(ms: Optional[int]) -> Optional[str]:
    if ms is None:
        return None
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _fill_prefix(config_key: str, value: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?(project_ref|project_path)>", lambda _m: value, current_app.config[config_key])


def api_base(project: Any) -> str:
    return request.script_root + _fill_prefix("GL_ML_TRACKING_PACKAGES_PREFIX", str(project.id))


def package_json(project: Any, package: Package, file_count: Optional[int] = None) -> dict:
    web = _fill_prefix("GL_ML_TRACKING_UI_PREFIX", project.full_path)
    out = {
        "id": package.id,
        "name": package.name,
        "version": package.version,
        "package_type": package.package_type,
        "status": package.status,
        "_links": {
            "web_path": f"{request.script_root}{web}/packages/{package.id}",
            "delete_api_path": f"{api_base(project)}/{package.id}",
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


# --------------------------------------------------------------------------- file responses


def _etag(file: PackageFile) -> str:
    return f'"{file.sha256}"'


def file_response(file: PackageFile, *, head: bool = False, allow_redirect: bool = True) -> Response:
    """Stream a stored file: 200, or 206 for a single satisfiable ``Range``, 416 for an
    unsatisfiable one, 304 for a matching ``If-None-Match``; with
    GL_ML_TRACKING_S3_PRESIGNED_DOWNLOADS a redirect to the storage instead.

    Always ``Content-Disposition: attachment`` and ``nosniff``: user-uploaded HTML must never
    render on the forge's origin.
    """
    storage = get_state().get_storage()
    name = posixpath.basename(file.file_path)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": _etag(file),
        "Content-Disposition": content_disposition(name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, no-cache",
    }
    if request.if_none_match and request.if_none_match.contains(file.sha256):
        return Response(status=304, headers=headers)
    if allow_redirect and not head and get_state().config.s3_presigned_downloads:
        url = storage.presigned_url(file.storage_key, filename=name)
        if url:
            return redirect(url, code=302)
    size = int(file.size)
    start, end, status = 0, size - 1, 200
    rng = request.range
    if rng is not None and len(rng.ranges) == 1 and rng.units == "bytes":
        span = rng.range_for_length(size)
        if span is None:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status=416, headers=headers)
        start, end, status = span[0], span[1] - 1, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1 if size else 0
    headers["Content-Length"] = str(length)
    mimetype = file.content_type or "application/octet-stream"
    if head or length == 0:
        response = Response(b"", status=status, headers=headers, content_type=mimetype)
        response.headers["Content-Length"] = str(length)  # HEAD tells the real size
        return response
    whole = pkg.open_whole_file(file, storage) if status == 200 else None  # raises now if missing
    if whole is not None:
        # A local file, whole: the WSGI server's file wrapper (gunicorn sends it with
        # sendfile, sized by Content-Length; no copy through Python). Ranges stay on the
        # generator, which stops at the range's end.
        body = wrap_file(request.environ, whole, buffer_size=DEFAULT_CHUNK_SIZE)
        return Response(body, status=status, headers=headers, content_type=mimetype, direct_passthrough=True)
    chunks = pkg.open_file(file, start, end, storage)  # raises now if the object is missing
    return Response(stream_with_context(chunks), status=status, headers=headers, content_type=mimetype,
                    direct_passthrough=True)


# --------------------------------------------------------------------------- request plumbing


def _run(view: Callable[..., Response], *, write: bool, kwargs: dict) -> Response:
    """Auth, project, permissions, one transaction, GitLab-shaped errors."""
    session = get_state().session
    try:
        access.require_user()
        project = access.load_project(g.glml_project_ref)
        access.require_read(project, READ_PACKAGE)
        if write and not access.can(project, WRITE_PACKAGE):
            return _message(403, "403 Forbidden")
        result = view(project, access.project_key(project), **kwargs)
        session.commit()
        return result
    except MlflowError as error:
        session.rollback()
        status = error.status
        if status == 401:
            return _message(401, "401 Unauthorized")
        if error.status == 404 and isinstance(error, ResourceDoesNotExist) and error.message.startswith("404"):
            return _message(404, error.message)
        return _json({"message": error.message, "error_code": error.error_code}, status)
    except IntegrityError:
        session.rollback()
        return _message(409, "The request conflicts with existing data; retry.")
    except OperationalError:
        session.rollback()
        log.warning("database unavailable", exc_info=True)
        return _message(503, "The database is busy or unavailable; retry.")
    except DBAPIError:
        session.rollback()
        return _message(400, "The database rejected a value of the request.")
    except Exception:  # never an HTML page or a stack trace
        session.rollback()
        log.exception("unexpected error in the packages API")
        return _message(500, "500 Internal Server Error")


def _endpoint(write: bool = False):
    def decorate(view):
        @functools.wraps(view)
        def wrapper(**kwargs):
            return _run(view, write=write, kwargs=kwargs)
        return wrapper
    return decorate


def _int_arg(name: str, default: int, minimum: int = 1, maximum: Optional[int] = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer.") from None
    if value < minimum:
        raise InvalidParameter(f"{name} must be at least {minimum}.")
    return min(value, maximum) if maximum else value


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": last_id}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(data["id"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidParameter("Invalid cursor.") from None


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
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    sort = (request.args.get("sort") or "asc").lower()
    if sort not in ("asc", "desc"):
        raise InvalidParameter("sort must be asc or desc.")
    package_type = request.args.get("package_type") or None
    filters = dict(package_name=request.args.get("package_name") or None, package_type=package_type,
                   package_version=request.args.get("package_version") or None)
    cursor = request.args.get("cursor")
    if cursor is not None or request.args.get("pagination") == "keyset":
        result = pkg.list_packages(session, project_id, **filters, sort=sort, per_page=per_page, keyset=True,
                                   after_id=_decode_cursor(cursor) if cursor else None)
        headers = {"X-Per-Page": str(per_page)}
        if result.next_cursor is not None:
            token = _encode_cursor(result.next_cursor)
            headers["X-Next-Cursor"] = token
            headers["Link"] = f'<{_page_url(cursor=token, pagination="keyset", page=None)}>; rel="next"'
    else:
        page = _int_arg("page", 1)
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
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    page = _int_arg("page", 1)
    chunk = files[(page - 1) * per_page: page * per_page]
    pkg.fill_missing_md5(chunk)
    return _json([package_file_json(f) for f in chunk], headers=_offset_headers(page, per_page, len(files)))


def file_download_view(project: Any, project_id: str, package_id: int, file_id: int) -> Response:
    session = get_state().session
    package = pkg.get_package(session, project_id, package_id)
    return file_response(pkg.get_file_by_id(session, package, file_id), head=request.method == "HEAD")


def delete_view(project: Any, project_id: str, package_id: int) -> Response:
    session = get_state().session
    pkg.delete_package(session, pkg.get_package(session, project_id, package_id))
    return Response(status=204)


def delete_file_view(project: Any, project_id: str, package_id: int, file_id: int) -> Response:
    session = get_state().session
    package = pkg.get_package(session, project_id, package_id)
    pkg.delete_file(session, package, pkg.get_file_by_id(session, package, file_id))
    return Response(status=204)


class AnyPathConverter(PathConverter):
    """Werkzeug's ``path`` also matching newlines, so that a path with an encoded control
    character reaches our validation (a JSON 400) instead of the host's HTML 404."""

    regex = "[^/](?:.|\\n)*?"


def make_blueprint() -> Blueprint:
    bp = Blueprint("gl_ml_tracking_packages", __name__)

    @bp.record_once
    def add_converter(state):  # runs before the rules below are added
        state.app.url_map.converters.setdefault(PATH_CONVERTER, AnyPathConverter)

    @bp.url_value_preprocessor
    def pop_project_ref(endpoint, values):
        g.glml_project_ref = (values or {}).pop("project_ref", "")

    generic = f"/generic/<name>/<version>/<{PATH_CONVERTER}:file_path>"
    bp.add_url_rule(generic, "upload_generic", _endpoint(write=True)(upload_generic), methods=["PUT"])
    bp.add_url_rule(generic, "download_generic", _endpoint()(download), methods=["GET", "HEAD"])
    bp.add_url_rule(f"/ml_models/<name>/<version>/<{PATH_CONVERTER}:file_path>", "download_ml_model",
                    _endpoint()(functools.partial(download, package_type=pkg.ML_MODEL)), methods=["GET", "HEAD"])
    bp.add_url_rule("", "list_packages", _endpoint()(list_view), methods=["GET"])
    bp.add_url_rule("/", "list_packages_slash", _endpoint()(list_view), methods=["GET"])
    bp.add_url_rule("/<int:package_id>", "get_package", _endpoint()(get_view), methods=["GET"])
    bp.add_url_rule("/<int:package_id>", "delete_package", _endpoint(write=True)(delete_view), methods=["DELETE"])
    bp.add_url_rule("/<int:package_id>/package_files", "package_files", _endpoint()(files_view), methods=["GET"])
    bp.add_url_rule("/<int:package_id>/package_files/<int:file_id>/download", "download_package_file",
                    _endpoint()(file_download_view), methods=["GET", "HEAD"])
    bp.add_url_rule("/<int:package_id>/package_files/<int:file_id>", "delete_package_file",
                    _endpoint(write=True)(delete_file_view), methods=["DELETE"])

    def not_found(**_kwargs):
        return _message(404, "404 Not Found")

    # Anything else under the prefix (a generic path without a file, a bad id) is JSON too.
    bp.add_url_rule(f"/<{PATH_CONVERTER}:rest>", "not_found", not_found,
                    methods=["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"])
    return bp
