"""The health check a load balancer polls (``/-/gl-ml-tracking/health``): 200
``{"status": "ok"}`` when the database answers ``SELECT 1``, else 503 with
``Retry-After``. No credentials, no details (an anonymous caller learns nothing but
up or down)."""
from __future__ import annotations

import logging

from flask import Response, json
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..state import get_state

log = logging.getLogger("gl_ml_tracking.health")


def health() -> Response:
    state = get_state()
    try:
        with state.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health check: database unavailable: %s", exc)
        answer = Response(json.dumps({"status": "unavailable"}), status=503, mimetype="application/json")
        answer.headers["Retry-After"] = str(int(state.config.retry_after))
        return answer
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")
