"""The MLflow API blueprint, mounted under the tracking URI prefix
(``/api/v4/projects/<project_ref>/ml/mlflow`` by default)."""
from __future__ import annotations

from flask import Blueprint, g

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
