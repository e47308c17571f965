"""Fuzzing the MLflow API from its own OpenAPI document (schemathesis +
hypothesis) against the WSGI app, on SQLite and PostgreSQL.

Every generated request - well-formed ones and deliberately wrong ones
(schemathesis' negative mode) - must get a status below 500, and every error
must be MLflow's ``{"error_code": ..., "message": ...}`` JSON.

Size: ``GLML_FUZZ_EXAMPLES`` generated requests per database (default 2,000,
which fits CI); ``make fuzz`` sets 20,000. ``GLML_FUZZ_REPORT=<file>`` writes
the figures (requests, statuses, operations) as JSON for docs/RELIABILITY.md.
"""
from __future__ import annotations

import collections
import json
import math
import os
import uuid
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

TOTAL_EXAMPLES = int(os.environ.get("GLML_FUZZ_EXAMPLES", "2000"))
REPORT_FILE = os.environ.get("GLML_FUZZ_REPORT")
API_PREFIX = "/api/v4/projects/1/ml/mlflow"


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the document, ajax twins left out
    (same views, and the budget is better spent elsewhere)."""
    from gl_ml_tracking.blueprints.api import api_routes
    from gl_ml_tracking.openapi import build_openapi

    doc = build_openapi(api_routes())
    return sorted((method.upper(), path) for path, item in doc["paths"].items() for method in item
                  if not path.startswith("/ajax-api/"))


OPERATIONS = _operations()
PER_OPERATION = max(4, math.ceil(TOTAL_EXAMPLES / max(1, len(OPERATIONS))))

# Field names whose generated values should often be real ids, so that requests
# get past "not found" into the services.
REAL_VALUE_FIELDS = ("run_id", "run_uuid", "experiment_id", "experiment_ids", "run_ids", "model_id", "name",
                     "artifact_path", "source_run_id", "experiment_name", "metric_key", "version")


def _mix_in(schema: dict, values: list) -> dict:
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return {**schema, "items": _mix_in(schema["items"], values)}
    return {"anyOf": [{"enum": values}, schema]}


def enrich(doc: Any, real: dict) -> Any:
    """Walk the document: every property or parameter named like a real id may be that id."""
    if isinstance(doc, dict):
        out = {k: enrich(v, real) for k, v in doc.items()}
        props = out.get("properties")
        if isinstance(props, dict):
            for name, sub in list(props.items()):
                if name in real and isinstance(sub, dict):
                    props[name] = _mix_in(sub, real[name])
        if out.get("in") in ("query", "path") and out.get("name") in real and isinstance(out.get("schema"), dict):
            out["schema"] = _mix_in(out["schema"], real[out["name"]])
        return out
    if isinstance(doc, list):
        return [enrich(v, real) for v in doc]
    return doc


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.statuses: collections.Counter = collections.Counter()
        self.by_operation: collections.Counter = collections.Counter()
        self.server_errors: list[str] = []


@pytest.fixture(scope="module")
def fuzz(forge, db_kind):
    client = forge.app.test_client()
    headers = {"Authorization": f"Bearer {forge.owner_token}"}

    def post(path, body):
        r = client.post(API_PREFIX + "/api/2.0/mlflow/" + path, json=body, headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    exp = post("experiments/create", {"name": "fuzz-" + uuid.uuid4().hex[:8]})["experiment_id"]
    run = post("runs/create", {"experiment_id": exp})["run"]
    run_id = run["info"]["run_id"]
    post("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "loss", "value": 0.1, "timestamp": 1, "step": i} for i in range(5)],
                            "params": [{"key": "lr", "value": "0.1"}]})
    model_id = post("logged-models", {"experiment_id": exp, "name": "fuzzmodel"})["model"]["info"]["model_id"]
    post("registered-models/create", {"name": "fuzz-registered"})
    post("model-versions/create", {"name": "fuzz-registered", "source": run["info"]["artifact_uri"], "run_id": run_id})
    artifact_dir = run["info"]["artifact_uri"].split(":/", 1)[1].lstrip("/")
    client.put(API_PREFIX + "/api/2.0/mlflow-artifacts/artifacts/" + artifact_dir + "/a.txt", data=b"x", headers=headers)

    served = client.get(API_PREFIX + "/api/2.0/mlflow/openapi.json", headers=headers)
    assert served.status_code == 200
    doc = served.get_json()
    assert doc["servers"][0]["url"].endswith(API_PREFIX)
    doc["servers"] = [{"url": API_PREFIX}]
    # Credentials are the auth matrix's business: generated tokens would only buy 401s here.
    doc.pop("security", None)
    doc.get("components", {}).pop("securitySchemes", None)
    real = {"run_id": [run_id], "run_uuid": [run_id], "run_ids": [run_id], "source_run_id": [run_id],
            "experiment_id": [exp, "0"], "experiment_ids": [exp], "model_id": [model_id],
            "name": ["fuzz-registered"], "experiment_name": ["Default"], "metric_key": ["loss"], "version": ["1"],
            "artifact_path": [artifact_dir, artifact_dir + "/a.txt", artifact_dir + "/new.txt"]}
    schema = schemathesis.openapi.from_dict(enrich(doc, real))
    schema.app = forge.app
    operations = {(r.ok().method.upper(), r.ok().path): r.ok() for r in schema.get_all_operations()}
    tally = Tally()
    yield {"operations": operations, "headers": headers, "tally": tally}
    report = {"db": db_kind, "requests": tally.requests, "operations": len(tally.by_operation),
              "per_operation_budget": PER_OPERATION, "statuses": dict(sorted(tally.statuses.items())),
              "server_errors": tally.server_errors[:50]}
    print(f"\nfuzz[{db_kind}]: {json.dumps(report)}")
    if REPORT_FILE:
        with open(REPORT_FILE, "a") as handle:
            handle.write(json.dumps(report) + "\n")


def check_response(response: Any, label: str) -> None:
    status = response.status_code
    assert status < 500, f"{label}: {status} {response.text[:300]}"
    if status >= 400:
        headers = {k.lower(): v for k, v in response.headers.items()}
        content_type = headers.get("content-type", "")
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/json"), f"{label}: {status} with {content_type}: {response.text[:200]}"
        body = json.loads(response.text)
        assert isinstance(body, dict) and isinstance(body.get("error_code"), str) and body["error_code"] \
            and isinstance(body.get("message"), str), f"{label}: not an MLflow error: {response.text[:200]}"


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_operation(fuzz, method, path):
    operation = fuzz["operations"][(method, path)]
    tally: Tally = fuzz["tally"]
    label = f"{method} {path}"
    half = max(2, PER_OPERATION // 2)

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        try:
            strategy = operation.as_strategy(generation_mode=mode)
        except Exception as exc:  # an operation with nothing to make wrong has no negative mode
            if mode is GenerationMode.NEGATIVE:
                continue
            raise exc

        @settings(max_examples=half, deadline=None, database=None, derandomize=False, print_blob=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def one(case):
            try:
                response = case.call(headers=dict(fuzz["headers"]))
            except ValueError as exc:
                # The test client cannot send a path holding a raw '?' (generated into a path
                # parameter): the request never exists, so there is nothing to check.
                if "Query string is defined in the path" in str(exc):
                    return
                raise
            tally.requests += 1
            tally.by_operation[label] += 1
            tally.statuses[response.status_code] += 1
            if response.status_code >= 500:
                tally.server_errors.append(f"{label}: {response.text[:200]}")
            check_response(response, label)

        try:
            one()
        except Unsatisfiable:
            # Negative mode needs something to make wrong; an endpoint without parameters has nothing.
            if mode is not GenerationMode.NEGATIVE:
                raise


def test_document_covers_every_route():
    from gl_ml_tracking.blueprints.api import api_routes
    from gl_ml_tracking.openapi import build_openapi

    routes = api_routes()
    doc = build_openapi(routes)
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    for spec in routes:
        path = spec.rule.replace("<path:", "<").replace("<int:", "<").replace("<", "{").replace(">", "}")
        for method in spec.methods:
            assert (method, path) in documented, (method, spec.rule)


def _proto_requests() -> dict[str, Any]:
    """Endpoint path below the API prefix -> the request message of MLflow's protos."""
    from mlflow.protos import databricks_pb2, mlflow_artifacts_pb2, model_registry_pb2, service_pb2

    found = {}
    for module in (service_pb2, model_registry_pb2, mlflow_artifacts_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                for endpoint in method.GetOptions().Extensions[databricks_pb2.rpc].endpoints:
                    path = endpoint.path.lstrip("/")
                    for prefix in ("mlflow-artifacts/", "mlflow/"):
                        if path.startswith(prefix):
                            path = path[len(prefix):]
                            break
                    found[f"{endpoint.method} {_normal(path)}"] = method.input_type
    return found


def _normal(path: str) -> str:
    import re

    return re.sub(r"\{(\w+)\}|<(?:\w+:)?(\w+)>", lambda m: "{" + (m.group(1) or m.group(2)) + "}", path)


# Required in the proto but not enforced by MLflow's server handler (a missing run tag
# value is stored as ""): we follow the server.
HANDLER_OPTIONAL = {"runs/set-tag": {"value"}}


def test_request_schemas_follow_mlflow_protos():
    """Field names and required flags are MLflow's (a typo here would make the
    published document and the fuzzer lie)."""
    pytest.importorskip("mlflow")
    from mlflow.protos import databricks_pb2

    from gl_ml_tracking.blueprints.api import api_routes
    from gl_ml_tracking.blueprints.api.framework import endpoint_key

    protos = _proto_requests()
    checked, problems = 0, []
    for spec in api_routes():
        for method in spec.methods:
            message = protos.get(f"{method} {_normal(endpoint_key(spec.rule))}")
            schema = spec.schema
            if message is None or schema is None:
                continue
            checked += 1
            path_params = set(__import__("re").findall(r"<(?:\w+:)?(\w+)>", spec.rule))
            proto_fields = {f.name: f for f in message.fields}
            ours = schema._declared_fields
            extra = set(ours) - set(proto_fields)
            if extra:
                problems.append(f"{method} {spec.rule}: fields not in {message.name}: {sorted(extra)}")
            proto_required = {n for n, f in proto_fields.items()
                              if f.GetOptions().Extensions[databricks_pb2.validate_required]} - path_params
            proto_required -= HANDLER_OPTIONAL.get(spec.rule.rsplit("/mlflow/", 1)[-1], set())
            our_required = {n for n, f in ours.items() if f.required}
            if proto_required != our_required:
                problems.append(f"{method} {spec.rule}: required {sorted(our_required)} but proto says {sorted(proto_required)}")
            for name, field in ours.items():
                if name in proto_fields and proto_fields[name].is_repeated != (type(field).__name__ == "List"):
                    problems.append(f"{method} {spec.rule}: {name} repeated mismatch")
    assert checked >= 40, checked
    problems = [p for p in problems if not p.startswith(DELIBERATE_PROTO_DIFFERENCES)]
    assert not problems, "\n".join(problems)


# MLflow 3 tracing: one URL serves the V3 start-trace call (``trace``) and the v2 one
# (``experiment_id``, ``timestamp_ms``, ...) of older clients; the view tells them apart.
DELIBERATE_PROTO_DIFFERENCES = tuple(f"POST {prefix}/traces:" for prefix in
                                     ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/3.0/mlflow",
                                                            "/ajax-api/3.0/mlflow"))
