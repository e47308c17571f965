"""The MLflow API blueprint, mounted under the tracking URI prefix
(``/api/v4/projects/<project_ref>/ml/mlflow`` by default)."""
from __future__ import annotations

from flask import Blueprint, current_app, g

from ..errors import MlflowError
from .api_framework import ROUTES, error_response, make_view

# Importing the view modules fills ROUTES.
from . import tracking_views  # noqa: F401
from . import openapi_views  # noqa: F401  (GET .../api/2.0/mlflow/openapi.json)

from . import artifact_views  # noqa: F401

try:  # added by the models / registry work
    from . import model_views, registry_views  # noqa: F401
except ImportError:  # pragma: no cover
    pass


def make_blueprint() -> Blueprint:
    bp = Blueprint("gl_ml_tracking_api", __name__)

    @bp.url_value_preprocessor
    def pop_project_ref(endpoint, values):
        g.glml_project_ref = (values or {}).pop("project_ref", "")

    seen = set()
    for spec in ROUTES:
        if (spec.rule, spec.methods) in seen:
            continue
        seen.add((spec.rule, spec.methods))
        bp.add_url_rule(spec.rule, endpoint=make_view(spec).__name__ + "_" + "_".join(spec.methods), view_func=make_view(spec), methods=list(spec.methods))

    # MLflow prints "View run at <tracking URI>/#/experiments/..": send browsers to
    # our pages (the fragment survives the redirect). Unreadable: the usual 404.
    def tracking_root():
        from flask import redirect, url_for

        from .. import access
        from ..errors import ProjectNotFound

        try:
            project = access.load_project(g.glml_project_ref)
            access.require_read(project)
        except ProjectNotFound as error:
            return error_response(error)
        if "gl_ml_tracking_ui" not in current_app.blueprints:
            return error_response(MlflowError("The web UI is not enabled.", "ENDPOINT_NOT_FOUND", 404))
        return redirect(url_for("gl_ml_tracking_ui.mlflow_link", project_path=project.full_path))

    bp.add_url_rule("/", endpoint="tracking_root", view_func=tracking_root)

    # Anything else under the API answers MLflow's JSON, never the host's HTML 404.
    def endpoint_not_found(**_kwargs):
        return error_response(MlflowError("Endpoint not found or method not allowed.", "ENDPOINT_NOT_FOUND", 404))

    # The catch-all also matches paths with encoded newlines (werkzeug's ``path`` does not).
    from .packages import PATH_CONVERTER, AnyPathConverter

    bp.record_once(lambda state: state.app.url_map.converters.setdefault(PATH_CONVERTER, AnyPathConverter))
    for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/2.0/mlflow-artifacts", "/api/3.0/mlflow"):
        bp.add_url_rule(prefix + f"/<{PATH_CONVERTER}:rest>", endpoint="not_found" + prefix.replace("/", "_").replace("-", "_").replace(".", "_"),
                        view_func=endpoint_not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
    return bp
