"""An OpenAPI 3 document of the MLflow API this app serves, built from the
routes it is given (``blueprints.api.api_routes()``), each with the request
schema it declares (the one the request's arguments are loaded with).

What it is for: clients and tools can see exactly which MLflow endpoints a
forge answers, and the fuzzer (``tests/test_fuzz_api.py``) generates requests
from it. Paths are relative to the project's tracking URI, which is the one
``servers`` entry.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

_PLACEHOLDER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
# Endpoints that stream a raw body instead of JSON: the artifact upload and a multipart part.
_BINARY_BODY = ("PUT",)


def _path_and_params(rule: str) -> tuple[str, list[dict]]:
    params: list[dict] = []

    def replace(match: re.Match) -> str:
        converter, name = match.group("converter"), match.group("name")
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 0} if converter == "int" else {"type": "string", "minLength": 1}
        )
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
        return "{" + name + "}"

    return _PLACEHOLDER.sub(replace, rule), params


def _operation_id(method: str, rule: str) -> str:
    return method.lower() + "_" + re.sub(r"[^A-Za-z0-9]+", "_", rule).strip("_")


def _error_schema() -> dict:
    return {
        "type": "object",
        "required": ["error_code", "message"],
        "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
    }


def build_openapi(routes: Iterable[Any], server_url: str = "/",
                  title: str = "gl-ml-tracking MLflow API") -> dict:
    """The OpenAPI 3.0 document (a dict) for ``routes`` (``RouteSpec``s)."""
    try:
        from apispec import APISpec
        from apispec.ext.marshmallow import MarshmallowPlugin
    except ImportError as exc:  # pragma: no cover - apispec is a declared dependency
        raise RuntimeError("Publishing the OpenAPI document needs the 'apispec' package.") from exc
    from .version import __version__

    spec = APISpec(
        title=title,
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=lambda schema: _schema_name(schema))],
        servers=[{"url": server_url, "description": "the project's MLflow tracking URI"}],
        security=[{"bearer": []}, {"private_token": []}, {"job_token": []}, {"basic": []}],
        info={"description": "MLflow REST API served per project (MLflow 3.x compatible). Errors are "
                             "MLflow's JSON: {\"error_code\": ..., \"message\": ...}."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
    spec.components.security_scheme("private_token", {"type": "apiKey", "in": "header", "name": "PRIVATE-TOKEN"})
    spec.components.security_scheme("job_token", {"type": "apiKey", "in": "header", "name": "JOB-TOKEN"})
    spec.components.schema("Error", _error_schema())
    error_ref = {"description": "An MLflow error",
                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    paths: dict[str, dict] = {}
    seen = set()
    for route in routes:
        for method in route.methods:
            if (route.rule, method) in seen:
                continue
            seen.add((route.rule, method))
            path, path_params = _path_and_params(route.rule)
            operation: dict[str, Any] = {
                "operationId": _operation_id(method, route.rule),
                "tags": [_tag(route.rule)],
                "parameters": list(path_params),
                "responses": {
                    "200": {"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "default": error_ref,
                },
            }
            schema = route.schema
            path_names = {p["name"] for p in path_params}
            if method in _BINARY_BODY and not route.json_body:
                binary = {"type": "string", "format": "binary"}
                operation["requestBody"] = {"content": {"application/octet-stream": {"schema": binary}}}
                if schema is not None and schema._declared_fields:
                    operation["parameters"].append({"in": "query", "schema": schema})
            elif method in ("GET", "HEAD") or not route.json_body:
                if schema is not None and schema._declared_fields:
                    query = schema(exclude=[n for n in schema._declared_fields if n in path_names])
                    operation["parameters"].append({"in": "query", "schema": query})
            else:
                body_schema: Any = schema if schema is not None else {"type": "object"}
                operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": body_schema}}}
            paths.setdefault(path, {})[method.lower()] = operation
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path])
    return spec.to_dict()


def _schema_name(schema: Any) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    if not isinstance(schema, type) and (getattr(schema, "exclude", None) or getattr(schema, "only", None)):
        # A schema used with some fields excluded (path parameters) gets its own name.
        name += "_" + "_".join(sorted(schema.exclude or ()))
    return name


def _tag(rule: str) -> str:
    if "/mlflow-artifacts/" in rule:
        return "artifacts"
    if rule.startswith("/ajax-api/"):
        return "ajax"
    part = rule.split("/mlflow/", 1)[-1].split("/", 1)[0]
    return part or "mlflow"
