"""Blueprints, one folder per HTTP surface: HTTP in, service calls, HTTP out.

* ``api/``: the MLflow REST API under the tracking URI;
* ``packages/``: GitLab's packages API, and the package pages;
* ``ui/``: the pages (and the CI pages and JSON mounted beside them).

``register_blueprints`` mounts the ones enabled in config under their configured prefixes.
"""
from __future__ import annotations

from typing import Any

from flask import Flask

from .api import make_blueprint as make_api
from .packages.api import make_blueprint as make_packages
from .ui import make_blueprint as make_ui
from .ui.ci import register_ci_views


def register_blueprints(app: Flask, settings: Any) -> None:
    if settings.enable_api:
        app.register_blueprint(make_api(), url_prefix=settings.api_prefix)
    if settings.enable_packages:
        app.register_blueprint(make_packages(), url_prefix=settings.packages_prefix)
    if settings.enable_ui:
        app.register_blueprint(make_ui(), url_prefix=settings.ui_prefix)
    register_ci_views(app, settings)  # CI: merge-request view, run CI info, runs by pipeline/MR
