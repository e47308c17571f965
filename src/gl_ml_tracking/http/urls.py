"""URLs of our blueprints' endpoints: ``url_for`` on the registered rules, so a
URL follows wherever (and however) the host mounted the blueprint."""
from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for
from werkzeug.routing import Map, Rule

API_BLUEPRINT = "gl_ml_tracking_api"
PACKAGES_BLUEPRINT = "gl_ml_tracking_packages"
UI_BLUEPRINT = "gl_ml_tracking_ui"


def endpoint_url(blueprint: str, endpoint: str, configured_prefix: str, suffix: str = "", *,
                 external: bool = False, **values: Any) -> str:
    """``url_for("<blueprint>.<endpoint>", **values)``.

    A blueprint disabled on this app (``GL_ML_TRACKING_ENABLE_*``) has no rules to build
    from: then the URL is its configured prefix, filled in by werkzeug as ``url_for``
    would, followed by ``suffix`` (the endpoint's own part). That is where the endpoint
    would be, and where a host that serves its own pages instead keeps them (GitLab's paths).
    """
    if blueprint in current_app.blueprints:
        return url_for(f"{blueprint}.{endpoint}", _external=external, **values)
    rule = Rule(configured_prefix or "/", endpoint=endpoint)
    urls = Map([rule], converters=current_app.url_map.converters).bind(
        request.host, script_name=request.script_root or "/")
    path = urls.build(endpoint, {name: value for name, value in values.items() if name in rule.arguments})
    return (request.host_url.rstrip("/") if external else "") + path + suffix
