"""A small example forge that hosts gl-ml-tracking: ``create_app()``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from flask import Flask

from gl_ml_tracking import MLTracking

from .cli import forge_cli
from .hooks import register_hooks
from .models import db
from .secret import MissingSecretKey, choose_secret_key  # noqa: F401  (MissingSecretKey: the forge's error)
from .views import bp
from .projects import bp as projects_bp

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_PATH = REPO_ROOT / "instance"


def normalise_database_url(url: str) -> str:
    """Point plain PostgreSQL URLs at psycopg 3, the driver the project installs
    (SQLAlchemy would otherwise look for psycopg2)."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def _extension_settings_from_env() -> dict[str, Any]:
    """``GL_ML_TRACKING_*`` environment variables, so storage (S3 bucket, local
    path) and other extension settings need no code. Values are JSON when they
    parse as JSON (``false``, ``20``), else strings."""
    settings: dict[str, Any] = {}
    for key, value in os.environ.items():
        if key.startswith("GL_ML_TRACKING_"):
            try:
                settings[key] = json.loads(value)
            except ValueError:
                settings[key] = value
    return settings


def create_app(config: Optional[dict[str, Any]] = None) -> Flask:
    config = dict(config or {})
    app = Flask(__name__, instance_path=str(INSTANCE_PATH))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        # Lax keeps the session cookie off cross-site POSTs, which protects the
        # API (it accepts the session too) from forged requests.
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(_extension_settings_from_env())
    app.config.update(config)
    uri = app.config.get("SQLALCHEMY_DATABASE_URI") or os.environ.get("DATABASE_URL")
    if not uri:
        INSTANCE_PATH.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{INSTANCE_PATH / 'forge.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(uri)
    app.config["SECRET_KEY"] = choose_secret_key(app, INSTANCE_PATH)

    # The extension's pages render inside the forge's layout; its empty state
    # links to where users make a token.
    app.config.setdefault("GL_ML_TRACKING_BASE_TEMPLATE", "forge/ml_layout.html")
    app.config.setdefault("GL_ML_TRACKING_UI_TOKENS_URL", "/-/user_settings/personal_access_tokens")
    db.init_app(app)
    ml = MLTracking(app, db=db)
    register_hooks(ml)
    app.register_blueprint(bp)
    app.register_blueprint(projects_bp)  # New project: page, POST /api/v4/projects
    app.cli.add_command(forge_cli)
    return app
