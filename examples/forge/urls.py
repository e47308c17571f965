"""Where the tracking extension mounts a project's pages and API, read from
its configured prefixes so the forge links stay right if a host moves them."""
from __future__ import annotations

import re

from flask import current_app

_PLACEHOLDER = re.compile(r"<(?:[a-z]+:)?(project_ref|project_path)>")


def _fill(config_key: str, value: str) -> str:
    return _PLACEHOLDER.sub(lambda _m: value, current_app.config[config_key])


def tracking_path(project) -> str:
    """``/api/v4/projects/<id>/ml/mlflow``: the MLflow tracking URI's path."""
    return _fill("GL_ML_TRACKING_API_PREFIX", str(project.id))


def experiments_path(project) -> str:
    return _fill("GL_ML_TRACKING_UI_PREFIX", project.full_path) + "/ml/experiments"


def packages_path(project) -> str:
    return _fill("GL_ML_TRACKING_UI_PREFIX", project.full_path) + "/packages"
