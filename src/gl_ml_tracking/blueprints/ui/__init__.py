"""The web UI: server-rendered pages for a project's experiments, runs,
comparisons, trash, models and packages.

``make_blueprint()`` is mounted under ``GL_ML_TRACKING_UI_PREFIX``
(``/<path:project_path>/-`` by default). Its static files (CSS, JS) are served
by a second, tiny blueprint at a fixed prefix, ``GL_ML_TRACKING_UI_STATIC_PREFIX``
(``/-/gl-ml-tracking/static`` by default), registered together with this one:
the UI prefix holds a path variable, which a static URL must not depend on.

Pages extend ``GL_ML_TRACKING_BASE_TEMPLATE`` (blocks ``title``, ``content``,
``scripts``), so a host shows them inside its own layout.
"""
from __future__ import annotations

import os

from flask import Blueprint, g

from ...state import get_state
from ..packages import pages as package_pages
from . import experiments, links, models, runs, trash
from . import editing  # issue 17: edit names, notes, tags, descriptions
from . import datasets as dataset_pages  # GenAI evaluation datasets
from . import prompts  # issue 16
from . import experiment_charts, model_pages
from . import webhooks  # issue 16
from . import traces  # MLflow 3 tracing pages
from .support import (
    BP_NAME,
    STATIC_BP_NAME,
    TemplateHelpers,
    security_headers,
)

# gl_ml_tracking/, which holds templates/ and static/ (this file is blueprints/ui/__init__.py).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_static_blueprint() -> Blueprint:
    bp = Blueprint(
        STATIC_BP_NAME,
        __name__,
        static_folder=os.path.join(_PACKAGE_DIR, "static"),
        static_url_path="",
    )
    bp.after_request(security_headers)
    return bp


def _register_static(state) -> None:
    app = state.app
    if STATIC_BP_NAME not in app.blueprints:
        prefix = get_state(app).config.ui_static_prefix
        app.register_blueprint(make_static_blueprint(), url_prefix=prefix)


def make_blueprint() -> Blueprint:
    bp = Blueprint(BP_NAME, __name__, template_folder=os.path.join(_PACKAGE_DIR, "templates"))

    @bp.url_value_preprocessor
    def pop_project_path(endpoint, values):
        g.glml_project_path = (values or {}).pop("project_path", "")

    @bp.url_defaults
    def add_project_path(endpoint, values):
        if "project_path" not in values and g.get("glml_project_path"):
            values["project_path"] = g.glml_project_path

    @bp.context_processor
    def helpers():
        return {"glml": TemplateHelpers, "base_template": get_state().config.base_template}

    bp.after_request(security_headers)  # errors are pages too: each view answers through ui.support.PAGES
    bp.record_once(_register_static)

    for module in (experiments, runs, trash, models, links, package_pages, prompts):
        module.register(bp)
    editing.register(bp)
    dataset_pages.register(bp)
    for module in (experiment_charts, model_pages, webhooks, traces):  # charts, model pages, webhooks, traces
        module.register(bp)
    return bp
