"""What every MLflow API view shares: route declarations, the request's
context, JSON in, and the MLflow surface of the request pipeline (MLflow's
error JSON out, one transaction per request).

A view module declares its endpoints on a :class:`Routes` collector of its own
(``routes = Routes()``, ``@routes.route(..., schema=CreateRun)``), which
``blueprints.api`` gathers into the blueprint. The request's arguments are
loaded through the route's schema (``schemas.loading``) before the view runs:
a view sees values of the declared types (or ``None``), never raw JSON. The
view gets an ``ApiContext`` and returns a dict (sent as JSON, status 200) or a
Response.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from flask import Response, g, request, url_for
from marshmallow import Schema

from ...errors import InvalidParameter, MlflowError, PayloadTooLarge
from ...hooks import (
    READ_MODEL_EXPERIMENTS,
    READ_MODEL_REGISTRY,
    WRITE_MODEL_EXPERIMENTS,
    WRITE_MODEL_REGISTRY,
)
from ...http.pipeline import Access, Caller, Surface, serve
from ...http.responses import error_response, json_response
from ...http.urls import API_BLUEPRINT
from ...schemas.loading import loader_for
from ...state import get_state

EXPERIMENTS_READ = Access((READ_MODEL_EXPERIMENTS,))
EXPERIMENTS_WRITE = Access((READ_MODEL_EXPERIMENTS,), (WRITE_MODEL_EXPERIMENTS,))
REGISTRY_READ = Access((READ_MODEL_REGISTRY,))
REGISTRY_WRITE = Access((READ_MODEL_REGISTRY,), (WRITE_MODEL_REGISTRY,))

MLFLOW_PREFIX = "/api/2.0/mlflow/"
AJAX_PREFIX = "/ajax-api/2.0/mlflow/"  # what MLflow's own UI calls
V3_PREFIX = "/api/3.0/mlflow/"
AJAX_V3_PREFIX = "/ajax-api/3.0/mlflow/"  # MLflow serves every 3.0 endpoint here too (its UI's traces/get)
API_PREFIXES = (MLFLOW_PREFIX, AJAX_PREFIX, "/api/2.0/mlflow-artifacts/", V3_PREFIX, AJAX_V3_PREFIX)


def endpoint_key(rule: str) -> str:
    """A rule below its API prefix, as MLflow's protos name endpoints:
    ``/ajax-api/2.0/mlflow/runs/get`` -> ``runs/get``."""
    for prefix in API_PREFIXES:
        if rule.startswith(prefix):
            return rule[len(prefix):]
    return rule.lstrip("/")


@dataclass(frozen=True)
class RouteSpec:
    rule: str  # relative to the tracking URI, e.g. "/api/2.0/mlflow/runs/create"
    methods: tuple[str, ...]
    view: Callable[["ApiContext"], Any]
    access: Access
    json_body: bool = True  # parse the body as JSON (artifact uploads stream instead)
    schema: Optional[type[Schema]] = None  # the request's arguments (None: no arguments to load)
    # Checked before the project is even looked up (raise an MlflowError to refuse): a
    # credential of the URL's own, whose refusal must not depend on the project existing.
    precheck: Optional[Callable[[], None]] = None

    @property
    def endpoint(self) -> str:
        """The endpoint's name in the blueprint."""
        name = self.rule.strip("/")
        for old, new in (("/", "_"), ("-", "_"), (".", "_"), ("<", ""), (">", ""), (":", "_")):
            name = name.replace(old, new)
        return f"glml_{name}_" + "_".join(self.methods)


class Routes:
    """The MLflow endpoints one view module declares, in declaration order."""

    def __init__(self) -> None:
        self.specs: list[RouteSpec] = []

    def __iter__(self) -> Iterator[RouteSpec]:
        return iter(self.specs)

    def route(self, path: str, methods: Any = ("POST",), access: Access = EXPERIMENTS_READ, *, ajax: bool = True,
              json_body: bool = True, prefix: str = MLFLOW_PREFIX, schema: Optional[type[Schema]] = None,
              precheck: Optional[Callable[[], None]] = None):
        """Declare an MLflow endpoint taking the arguments of ``schema``; with
        ``ajax`` it is also served under ``/ajax-api/2.0/mlflow/`` (``/ajax-api/3.0/mlflow/`` for
        a 3.0 endpoint)."""
        if isinstance(methods, str):
            methods = (methods,)

        def decorate(view):
            self.specs.append(RouteSpec(prefix + path, tuple(methods), view, access, json_body, schema, precheck))
            alias = {MLFLOW_PREFIX: AJAX_PREFIX, V3_PREFIX: AJAX_V3_PREFIX}.get(prefix) if ajax else None
            if alias:
                self.specs.append(RouteSpec(alias + path, tuple(methods), view, access, json_body, schema, precheck))
            return view

        return decorate

    def url_for(self, view: Callable[..., Any], **values: Any) -> str:
        """The URL of the endpoint ``view`` is declared as (its first rule)."""
        spec = next(s for s in self.specs if s.view is view)
        return url_for(f"{API_BLUEPRINT}.{spec.endpoint}", **values)


@dataclass
class ApiContext:
    project: Any
    project_id: str
    user: Any
    args: dict = field(default_factory=dict)

    @property
    def session(self):
        return get_state().session

    def get(self, name: str, default: Any = None) -> Any:
        """The argument, or ``default`` when it is absent or null (JSON's ``null``
        and a missing field mean the same in protobuf's JSON)."""
        value = self.args.get(name)
        return default if value is None else value

    def get_list(self, name: str) -> list:
        value = self.args.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        return [value]


def _read_args(spec: RouteSpec) -> dict:
    args: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        args[key] = values if len(values) > 1 or key.endswith("_ids") else values[0]
    if not spec.json_body or request.method in ("GET", "HEAD"):
        return args
    limit = get_state().config.max_json_body
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body of {request.content_length} bytes exceeds the limit of {limit} bytes.")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
    if not raw.strip():
        return args
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidParameter(f"Malformed JSON in request body: {str(exc)[:200]}")
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    args.update(body)
    return args


def _result_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    return json_response(result if result is not None else {})


# Every MLflow endpoint answers MLflow's error JSON, never an HTML page or a stack trace.
MLFLOW_API = Surface(render_error=error_response, render_result=_result_response,
                     log=logging.getLogger("gl_ml_tracking.api"))


def make_view(spec: RouteSpec) -> Callable[..., Response]:
    load = loader_for(spec.schema)

    def view(**url_args: Any) -> Response:
        if spec.precheck is not None:
            try:
                spec.precheck()
            except MlflowError as refused:
                return error_response(refused)

        def run(caller: Caller) -> Any:
            # Loaded inside the pipeline: a bad argument answers MLflow's error JSON,
            # after authentication (an anonymous caller learns nothing from it).
            ctx = ApiContext(project=caller.project, project_id=caller.project_id, user=caller.user,
                             args=load(_read_args(spec)))
            ctx.args.update(url_args)
            return spec.view(ctx)

        return serve(MLFLOW_API, spec.access, g.glml_project_ref, run)

    view.__name__ = spec.endpoint
    return view
