"""The machinery every MLflow API view shares: routing table, auth, the
project, JSON in, MLflow-shaped errors out, and one transaction per request.

A view module declares its endpoints with ``@api_route(...)``; the view gets
an ``ApiContext`` and returns a dict (sent as JSON, status 200) or a Response.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from flask import Response, current_app, g, request
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from .. import access
from ..errors import InvalidParameter, MlflowError, PayloadTooLarge
from ..state import get_state
from ..hooks import (
    READ_MODEL_EXPERIMENTS,
    READ_MODEL_REGISTRY,
    WRITE_MODEL_EXPERIMENTS,
    WRITE_MODEL_REGISTRY,
)
from ..schemas.mlflow_json import dumps

log = logging.getLogger("gl_ml_tracking.api")


@dataclass(frozen=True)
class Access:
    """Permissions an endpoint needs: all of ``read`` (else 404), then all of
    ``write`` (else 403). Classified by meaning, not by HTTP method."""

    read: tuple[str, ...]
    write: tuple[str, ...] = ()
    # False: no user is required; the view checks a credential of its own (a signed URL,
    # e.g. the multipart-upload part URLs, which the MLflow client PUTs to without its token).
    authenticate: bool = True


EXPERIMENTS_READ = Access((READ_MODEL_EXPERIMENTS,))
EXPERIMENTS_WRITE = Access((READ_MODEL_EXPERIMENTS,), (WRITE_MODEL_EXPERIMENTS,))
REGISTRY_READ = Access((READ_MODEL_REGISTRY,))
REGISTRY_WRITE = Access((READ_MODEL_REGISTRY,), (WRITE_MODEL_REGISTRY,))


@dataclass(frozen=True)
class RouteSpec:
    rule: str  # relative to the tracking URI, e.g. "/api/2.0/mlflow/runs/create"
    methods: tuple[str, ...]
    view: Callable[["ApiContext"], Any]
    access: Access
    json_body: bool = True  # parse the body as JSON (artifact uploads stream instead)


ROUTES: list[RouteSpec] = []


def api_route(path: str, methods: Any = ("POST",), access: Access = EXPERIMENTS_READ, *, ajax: bool = True, json_body: bool = True, prefix: str = "/api/2.0/mlflow/"):
    """Declare an MLflow endpoint; with ``ajax`` it is also served under
    ``/ajax-api/2.0/mlflow/`` (what MLflow's own UI calls)."""
    if isinstance(methods, str):
        methods = (methods,)

    def decorate(view):
        ROUTES.append(RouteSpec(prefix + path, tuple(methods), view, access, json_body))
        if ajax and prefix == "/api/2.0/mlflow/":
            ROUTES.append(RouteSpec("/ajax-api/2.0/mlflow/" + path, tuple(methods), view, access, json_body))
        return view

    return decorate


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
        return self.args.get(name, default)

    def get_list(self, name: str) -> list:
        value = self.args.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        return [value]


def error_response(error: MlflowError) -> Response:
    return Response(dumps(error.to_dict()), status=error.status, mimetype="application/json")


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(dumps(payload), status=status, mimetype="application/json")


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


def _check_access(project: Any, needed: Access) -> None:
    for permission in needed.read:
        access.require_read(project, permission)
    for permission in needed.write:
        if not access.can(project, permission):
            from ..errors import PermissionDenied

            raise PermissionDenied(f"The caller lacks the '{permission}' permission on this project.")


def make_view(spec: RouteSpec) -> Callable[..., Response]:
    def view(**_url_args: Any) -> Response:
        state = get_state()
        session = state.session
        try:
            user = access.require_user() if spec.access.authenticate else access.current_user()
            project = access.load_project(g.glml_project_ref)
            _check_access(project, spec.access)
            ctx = ApiContext(project=project, project_id=access.project_key(project), user=user, args=_read_args(spec))
            ctx.args.update(_url_args)
            result = spec.view(ctx)
            session.commit()
        except MlflowError as error:
            session.rollback()
            return error_response(error)
        except IntegrityError as exc:
            session.rollback()
            log.info("integrity error: %s", exc)
            return error_response(InvalidParameter("The request conflicts with existing data (a constraint was violated)."))
        except OperationalError as exc:
            session.rollback()
            log.warning("database unavailable: %s", exc)
            # 503: the MLflow client retries it with backoff (a locked SQLite, a dropped connection).
            return error_response(MlflowError("The database is busy or unavailable; retry.", "TEMPORARILY_UNAVAILABLE", 503))
        except DBAPIError as exc:
            session.rollback()
            log.info("database rejected input: %s", exc)
            return error_response(InvalidParameter("The database rejected a value of the request (out of range or malformed)."))
        except Exception:  # never an HTML page or a stack trace
            session.rollback()
            log.exception("unexpected error in %s", spec.rule)
            return error_response(MlflowError("An internal error occurred.", "INTERNAL_ERROR", 500))
        if isinstance(result, Response):
            return result
        return json_response(result if result is not None else {})

    view.__name__ = "glml_" + spec.rule.strip("/").replace("/", "_").replace("-", "_").replace(".", "_").replace("<", "").replace(">", "").replace(":", "_")
    return view
