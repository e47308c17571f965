"""What operators poll and read, beside the three surfaces: the health check, the
Prometheus metrics (when enabled) and the request log (when enabled). Mounted under
``GL_ML_TRACKING_OPS_PREFIX`` (``/-/gl-ml-tracking``), a fixed path with no project in it."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from ..http.health import health
from ..http.metrics import install_metrics
from ..http.request_log import install_request_log
from ..state import get_state

OPS_BLUEPRINT = "gl_ml_tracking_ops"


def register_operations(app: Flask, settings: Any) -> None:
    bp = Blueprint(OPS_BLUEPRINT, __name__)
    bp.add_url_rule("/health", "health", health, methods=["GET"])
    install_request_log(app, bool(settings.request_log))
    if settings.metrics:
        metrics = install_metrics(app, lambda: get_state(app).db.engine)
        bp.add_url_rule("/metrics", "metrics", metrics.exposition, methods=["GET"])
    app.register_blueprint(bp, url_prefix=settings.ops_prefix)
