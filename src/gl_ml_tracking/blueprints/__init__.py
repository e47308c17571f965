"""Blueprints: HTTP in, service calls, HTTP out. ``register_blueprints`` mounts
the ones enabled in config under their configured prefixes."""
from __future__ import annotations

from typing import Any

from flask import Flask

from .ci_views import register_ci_views
from .mlflow_api import make_blueprint as make_api
from .packages import make_blueprint as make_packages
from .ui import make_blueprint as make_ui


def register_blueprints(app: Flask, settings: Any) -> None:
    if settings.enable_api:
        app.register_blueprint(make_api(), url_prefix=settings.api_prefix)
    if settings.enable_packages:
        app.register_blueprint(make_packages(), url_prefix=settings.packages_prefix)
    if settings.enable_ui:
        app.register_blueprint(make_ui(), url_prefix=settings.ui_prefix)
    register_ci_views(app)  # CI: merge-request view, run CI info, runs by pipeline/MR
