"""Configuration keys, all under ``GL_ML_TRACKING_``, with their defaults.

``init_app`` copies every default the host did not set into ``app.config`` so
that the effective value is always visible there, then reads them once into a
``Settings`` object on the extension state (``get_state().config``): code reads
``config.max_file_size``, never a key with a default of its own. The README lists
them. A leaf module: it imports nothing of this package.
"""
from __future__ import annotations

from typing import Any, Mapping

PREFIX = "GL_ML_TRACKING_"

DEFAULTS: dict[str, object] = {
    # Where the MLflow API is mounted; <project_ref> is an id or URL-encoded full path.
    "GL_ML_TRACKING_API_PREFIX": "/api/v4/projects/<path:project_ref>/ml/mlflow",
    # Where the generic packages API is mounted.
    "GL_ML_TRACKING_PACKAGES_PREFIX": "/api/v4/projects/<path:project_ref>/packages",
    # Where the pages are mounted; <project_path> is the project's full path.
    "GL_ML_TRACKING_UI_PREFIX": "/<path:project_path>/-",
    # Register each blueprint (a host may mount only some).
    "GL_ML_TRACKING_ENABLE_API": True,
    "GL_ML_TRACKING_ENABLE_PACKAGES": True,
    "GL_ML_TRACKING_ENABLE_UI": True,
    # Template the pages extend; a host replaces it to embed pages in its layout.
    "GL_ML_TRACKING_BASE_TEMPLATE": "gl_ml_tracking/base.html",
    # Database URI used only when neither ``db`` nor a host Flask-SQLAlchemy exists.
    "GL_ML_TRACKING_DATABASE_URI": None,
    # Set WAL mode, a busy timeout and foreign keys (for cascading deletes) on SQLite connections.
    "GL_ML_TRACKING_SQLITE_PRAGMAS": True,
    # Storage of package files: "local" or "s3".
    "GL_ML_TRACKING_STORAGE": "local",
    # Local storage root (default: <instance_path>/ml_tracking_storage).
    "GL_ML_TRACKING_STORAGE_PATH": None,
    # S3 settings for the "s3" storage.
    "GL_ML_TRACKING_S3_BUCKET": None,
    "GL_ML_TRACKING_S3_PREFIX": "",
    "GL_ML_TRACKING_S3_ENDPOINT_URL": None,
    "GL_ML_TRACKING_S3_REGION": None,
    "GL_ML_TRACKING_S3_PRESIGNED_DOWNLOADS": False,
    # Largest package file accepted (bytes); 413 past it. Default 5 GiB, as GitLab.
    "GL_ML_TRACKING_MAX_FILE_SIZE": 5 * 1024**3,
    # Largest JSON request body for the MLflow API (bytes); 413 past it.
    "GL_ML_TRACKING_MAX_JSON_BODY": 16 * 1024**2,
    # Where the pages' own JS/CSS are served (a fixed prefix: the UI prefix has a variable).
    "GL_ML_TRACKING_UI_STATIC_PREFIX": "/-/gl-ml-tracking/static",
    # Content-Security-Policy of the pages (None: send none); no inline scripts are used.
    "GL_ML_TRACKING_UI_CSP": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'"
    ),
    # X-Frame-Options of the pages (None: send none).
    "GL_ML_TRACKING_UI_FRAME_OPTIONS": "SAMEORIGIN",
    # Where users make a personal access token (shown in the empty state's snippet).
    "GL_ML_TRACKING_UI_TOKENS_URL": None,
    # Refuse UI POSTs whose Origin is another host (turn off behind proxies that hide the host).
    "GL_ML_TRACKING_UI_CHECK_ORIGIN": True,
    # Page sizes.
    "GL_ML_TRACKING_UI_PAGE_SIZE": 20,
    "GL_ML_TRACKING_RUNS_PAGE_SIZE": 30,
    # Largest artifact previewed inline in the run page (bytes).
    "GL_ML_TRACKING_PREVIEW_MAX_BYTES": 1024**2,
    # Tell the MLflow client it may use multipart uploads for big files: "auto" where
    # the storage assembles parts itself (S3), not on local files (see Storage).
    "GL_ML_TRACKING_MULTIPART_UPLOADS": "auto",
    # -- production (issue 18)
    # Seconds a client is told to wait (Retry-After) on a 503: database or storage down.
    "GL_ML_TRACKING_RETRY_AFTER": 2,
    # How many proxies in front set X-Forwarded-* (werkzeug's ProxyFix); 0 trusts none.
    "GL_ML_TRACKING_TRUSTED_PROXIES": 0,
    # Where the health check (and the metrics) are served: a fixed path, no project in it.
    "GL_ML_TRACKING_OPS_PREFIX": "/-/gl-ml-tracking",
    # One JSON line per request on the logger "gl_ml_tracking.requests".
    "GL_ML_TRACKING_REQUEST_LOG": False,
    # Prometheus metrics at <OPS_PREFIX>/metrics (needs the "metrics" extra).
    "GL_ML_TRACKING_METRICS": False,
    # -- webhooks (issue 16) --
    # Run the in-process deliverer (a thread per worker, started by the first request);
    # False: deliver with `flask ml-tracking webhooks deliver [--loop]` (a separate process, cron).
    "GL_ML_TRACKING_WEBHOOKS_DELIVERER": True,
    # Allow webhook URLs that resolve to loopback, link-local or private addresses
    # (GitLab's "allow requests to the local network"); checked at creation and at delivery.
    "GL_ML_TRACKING_WEBHOOKS_ALLOW_LOCAL_NETWORK": False,
    # URL schemes a webhook may use (MLflow's default: https only).
    "GL_ML_TRACKING_WEBHOOKS_ALLOWED_SCHEMES": ("https",),
    # Seconds one delivery request may take.
    "GL_ML_TRACKING_WEBHOOKS_TIMEOUT": 10,
    # Attempts before a delivery is FAILED; retries back off exponentially from BACKOFF seconds up to BACKOFF_MAX.
    "GL_ML_TRACKING_WEBHOOKS_MAX_ATTEMPTS": 6,
    "GL_ML_TRACKING_WEBHOOKS_BACKOFF": 10,
    "GL_ML_TRACKING_WEBHOOKS_BACKOFF_MAX": 3600,
    # Seconds a claimed delivery stays the claimer's (past it, another deliverer takes it over).
    "GL_ML_TRACKING_WEBHOOKS_LEASE": 60,
    # Seconds the in-process deliverer sleeps when nothing woke it; deliveries claimed per round.
    "GL_ML_TRACKING_WEBHOOKS_POLL_INTERVAL": 5,
    "GL_ML_TRACKING_WEBHOOKS_BATCH": 20,
    # Days finished deliveries are kept (`flask ml-tracking webhooks prune`).
    "GL_ML_TRACKING_WEBHOOKS_RETENTION_DAYS": 30,
    # Largest OTLP span export (POST <tracking URI>/v1/traces) accepted (bytes); 413 past it.
    "GL_ML_TRACKING_MAX_TRACE_BODY": 64 * 1024**2,
    # A span larger than this (bytes, as OTLP) keeps its payload in the file storage, not in
    # its database row (which keeps a skeleton with long strings cut, for pages and search).
    "GL_ML_TRACKING_TRACE_SPAN_INLINE_MAX": 1024**2,
}


class Settings:
    """The effective ``GL_ML_TRACKING_*`` values of one app, read once by
    ``init_app``: ``GL_ML_TRACKING_MAX_FILE_SIZE`` is ``settings.max_file_size``.
    Change a value after ``init_app`` on this object (tests do), not in
    ``app.config``."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        for key, default in DEFAULTS.items():
            setattr(self, attribute_name(key), mapping.get(key, default))

    def __repr__(self) -> str:
        return f"Settings({vars(self)!r})"


def attribute_name(key: str) -> str:
    """``GL_ML_TRACKING_MAX_FILE_SIZE`` -> ``max_file_size``."""
    return key[len(PREFIX):].lower()
