"""The MLflow API blueprint, mounted under the tracking URI prefix
(``/api/v4/projects/<project_ref>/ml/mlflow`` by default)."""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, url_for

from ...errors import MlflowError
from ...hooks import READ_MODEL_EXPERIMENTS
from ...http.converters import PATH_CONVERTER, add_converters
from ...http.pipeline import Access, serve
from ...http.responses import error_response
from ...http.urls import API_BLUEPRINT, UI_BLUEPRINT
from . import artifacts, logged_models, openapi_doc, registry, tracking
from . import datasets, scorers  # GenAI evaluation datasets and registered scorers (MLflow 3)
from . import legacy_artifacts  # issue 16
from . import webhooks  # issue 16
from . import trace_protocol, traces  # MLflow 3 tracing
from .framework import MLFLOW_API, RouteSpec, make_view

# Browsers follow MLflow's "View run" links without a token: pages browse as anonymous.
BROWSER_READ = Access((READ_MODEL_EXPERIMENTS,), authenticate=False)


def api_routes() -> list[RouteSpec]:
    """Every MLflow endpoint the blueprint serves, in declaration order (the source of
    its rules and of its OpenAPI document)."""
    declared = [spec for module in (tracking, artifacts, logged_models, registry, legacy_artifacts, webhooks,
                                    traces, trace_protocol)
                for spec in module.routes]
    declared += [spec for module in (datasets, scorers) for spec in module.routes]
    return declared + list(openapi_doc.document_routes(declared))


def make_blueprint() -> Blueprint:
    bp = Blueprint(API_BLUEPRINT, __name__)
    bp.record_once(add_converters)  # before the rules that use it

    @bp.url_value_preprocessor
    def pop_project_ref(endpoint, values):
        g.glml_project_ref = (values or {}).pop("project_ref", "")

    seen = set()
    for spec in api_routes():
        if (spec.rule, spec.methods) in seen:
            continue
        seen.add((spec.rule, spec.methods))
        bp.add_url_rule(spec.rule, endpoint=spec.endpoint, view_func=make_view(spec), methods=list(spec.methods))

    # MLflow prints "View run at <tracking URI>/#/experiments/..": send browsers to
    # our pages (the fragment survives the redirect). Unreadable: the usual 404.
    def tracking_root():
        def to_pages(caller):
            if UI_BLUEPRINT not in current_app.blueprints:
                raise MlflowError("The web UI is not enabled.", "ENDPOINT_NOT_FOUND", 404)
            return redirect(url_for(f"{UI_BLUEPRINT}.mlflow_link", project_path=caller.project.full_path))

        return serve(MLFLOW_API, BROWSER_READ, g.glml_project_ref, to_pages, read_only=True)

    bp.add_url_rule("/", endpoint="tracking_root", view_func=tracking_root)

    # Anything else under the API answers MLflow's JSON, never the host's HTML 404.
    def endpoint_not_found(**_kwargs):
        return error_response(MlflowError("Endpoint not found or method not allowed.", "ENDPOINT_NOT_FOUND", 404))

    # The catch-all also matches paths with encoded newlines (werkzeug's ``path`` does not).
    for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/2.0/mlflow-artifacts", "/api/3.0/mlflow",
                   "/ajax-api/3.0/mlflow"):
        bp.add_url_rule(prefix + f"/<{PATH_CONVERTER}:rest>", endpoint="not_found" + prefix.replace("/", "_").replace("-", "_").replace(".", "_"),
                        view_func=endpoint_not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
    return bp
