"""Blueprints: HTTP in, service calls, HTTP out. ``register_blueprints`` mounts
the ones enabled in config under their configured prefixes."""
from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    cfg = app.config
    if cfg["GL_ML_TRACKING_ENABLE_API"]:
        from .mlflow_api import make_blueprint as make_api

        app.register_blueprint(make_api(), url_prefix=cfg["GL_ML_TRACKING_API_PREFIX"])
    if cfg["GL_ML_TRACKING_ENABLE_PACKAGES"]:
        try:
            from .packages import make_blueprint as make_packages
        except ImportError:  # filled in by the registry work
            make_packages = None
        if make_packages:
            app.register_blueprint(make_packages(), url_prefix=cfg["GL_ML_TRACKING_PACKAGES_PREFIX"])
    if cfg["GL_ML_TRACKING_ENABLE_UI"]:
        try:
            from .ui import make_blueprint as make_ui
        except ImportError:
            make_ui = None
        if make_ui:
            app.register_blueprint(make_ui(), url_prefix=cfg["GL_ML_TRACKING_UI_PREFIX"])
    from .ci_views import register_ci_views  # CI: merge-request view, run CI info, runs by pipeline/MR
    register_ci_views(app)
