"""Stored package files as HTTP responses: streamed, with ``Range``, ``ETag``
and safe download headers (the packages API, the MLflow artifacts proxy and
the pages' downloads all answer with them)."""
from __future__ import annotations

import posixpath

from flask import Response, redirect, request, stream_with_context
from werkzeug.wsgi import wrap_file

from ..models import PackageFile
from ..registry.storage import DEFAULT_CHUNK_SIZE, content_disposition
from ..services import packages as pkg
from ..state import get_state


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
        "ETag": f'"{file.sha256}"',
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
