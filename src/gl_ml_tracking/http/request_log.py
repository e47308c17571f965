"""One structured log line per request of the extension (``GL_ML_TRACKING_REQUEST_LOG``):
a JSON object with a request id, method, route (the URL rule, not the URL: no project
names or ids in it), status and duration, on the logger ``gl_ml_tracking.requests`` at
INFO. The request id is the client's ``X-Request-Id`` when it is a sane token (a proxy's),
else a new one, and is sent back in ``X-Request-Id``.

The timing (``started``) is shared with the Prometheus metrics (``http/metrics.py``).
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Optional

from flask import Flask, Response, g, request

LOGGER = "gl_ml_tracking.requests"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def ours() -> bool:
    """True when the current request was routed to one of the extension's blueprints."""
    return bool(request.blueprint) and request.blueprint.startswith("gl_ml_tracking")


def route_label() -> str:
    """The URL rule that matched (``/api/v4/projects/<path:project_ref>/...``), or
    ``unmatched``: bounded cardinality, and no project names."""
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def started() -> Optional[float]:
    return g.get("_glml_started")


def _begin() -> None:
    g._glml_started = time.perf_counter()
    given = request.headers.get("X-Request-Id", "")
    g.glml_request_id = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


def _log_line(response: Response) -> Response:
    if not ours() or started() is None:
        return response
    line = {
        "request_id": g.glml_request_id,
        "method": request.method,
        "route": route_label(),
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started()) * 1000, 2),
        "remote_addr": request.remote_addr,
    }
    logging.getLogger(LOGGER).info(json.dumps(line, separators=(",", ":")))
    response.headers.setdefault("X-Request-Id", g.glml_request_id)
    return response


def install_request_log(app: Flask, enabled: bool) -> None:
    """Time every request (metrics read it too); log one line per request of ours when
    ``enabled``. A logger left without handlers writes to stderr (gunicorn's error log)."""
    app.before_request(_begin)
    if not enabled:
        return
    logger = logging.getLogger(LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO)
    app.after_request(_log_line)
