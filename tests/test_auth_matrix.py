"""The authorization matrix: every endpoint × every kind of caller × public and
private project, generated from tables, on SQLite and PostgreSQL.

* Endpoints are discovered from ``app.url_map`` (the MLflow API, the artifacts
  proxy, the packages API and every UI route), so endpoints added later are
  covered without touching this file; ``api_routes()`` says which MLflow endpoints
  declare themselves reads or writes, and a test checks that declaration
  against what the endpoint does.
* Identities are made directly in the example forge's tables: users with each
  role, expired / revoked / read_api tokens, a CI job token.
* Expected, per (identity, visibility): ``LEVELS`` below. Unreadable means the
  very same answer as a project that does not exist (status, body, type);
  read-only means 403 on API writes, and on pages no mutation control and a
  refused POST that changes nothing.
* Leaks: the private project's names, params, tags, metric keys, artifact and
  package names carry a unique marker; no response (body or header) that the
  caller may not see - and no response about the public project - contains it.
"""
from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Optional
from urllib.parse import quote, urlencode

import pytest

MISSING_ID = "987654"
MISSING_PATH = "demo/no-such-project-x"

# -- identities -----------------------------------------------------------------------
# level per visibility: "unauth" (API: 401), "none" (cannot read: like a missing
# project), "read", "write".
LEVELS: dict[str, dict[str, str]] = {
    "anonymous": {"public": "unauth", "private": "unauth"},
    "invalid_token": {"public": "unauth", "private": "unauth"},
    "expired_token": {"public": "unauth", "private": "unauth"},
    "revoked_token": {"public": "unauth", "private": "unauth"},
    "read_api_token": {"public": "read", "private": "read"},  # a maintainer, token limited to read_api
    "outsider": {"public": "read", "private": "none"},
    "guest": {"public": "read", "private": "read"},
    "reporter": {"public": "read", "private": "read"},
    "developer": {"public": "write", "private": "write"},
    "maintainer": {"public": "write", "private": "write"},
    # A job of the private project: its token reaches that project only.
    "ci_job_token": {"public": "none", "private": "write"},
}
IDENTITIES = list(LEVELS)

# Webhooks (issue 16): every endpoint, reads included, also needs admin_model_registry
# (maintainers, as GitLab's project hooks): where a caller may write, a developer and a
# CI job token (a developer's) may only read, so their requests there are refused (403).
ADMIN_ONLY_KEYS = {"webhooks", "webhooks/<webhook_id>", "webhooks/<webhook_id>/test"}
NOT_ADMINS = {"developer", "ci_job_token"}


def admin_level(identity: str, level: str) -> str:
    return "read" if level == "write" and identity in NOT_ADMINS else level
VISIBILITIES = ("public", "private")
PROJECT_IDS = {"public": 1, "private": 2}
PROJECT_PATHS = {"public": "demo/mnist", "private": "demo/secret"}


def ui_level(identity: str, visibility: str, surface: str = "ui") -> str:
    """Pages need no token: a caller without valid credentials browses as anonymous.
    The CI panels (``surface`` "ci") need ``read_build``, which a guest of a private
    project lacks (GitLab's rule: guests see no pipelines)."""
    level = LEVELS[identity][visibility]
    if level == "unauth":
        return "read" if visibility == "public" else "none"
    if surface == "ci" and identity == "guest" and visibility == "private":
        return "read_limited"  # the run's CI panel says "no access"; project-wide CI lists answer 404
    return level


@dataclass
class Identity:
    name: str
    headers: dict = field(default_factory=dict)


@dataclass
class Planted:
    """What was created in one project, to point requests at."""

    marker: str
    experiment_id: str = ""
    experiment_name: str = ""
    run_id: str = ""
    run_iid: int = 0
    metric_key: str = ""
    tag_key: str = ""
    artifact_dir: str = ""
    artifact_path: str = ""
    logged_model_id: str = ""
    registered_model: str = ""
    package_name: str = ""
    package_version: str = "1.0.0"
    package_file: str = ""
    package_id: int = 0
    package_file_id: int = 0
    dataset_id: str = ""  # a GenAI evaluation dataset (and a scorer named <marker>-scorer)


# -- talking to the app -----------------------------------------------------------------
def call(client, method: str, url: str, headers: Optional[dict] = None, json_body: Any = None,
         query: Optional[dict] = None, data: Optional[bytes] = None):
    if query:
        url = url + ("&" if "?" in url else "?") + urlencode(query, doseq=True)
    kwargs: dict[str, Any] = {"headers": dict(headers or {})}
    if json_body is not None:
        kwargs["json"] = json_body
    elif data is not None:
        kwargs["data"] = data
    return client.open(url, method=method, **kwargs)


def api_url(project_ref: Any, path: str) -> str:
    return f"/api/v4/projects/{project_ref}/ml/mlflow{path}"


def owner_headers(forge) -> dict:
    return {"Authorization": f"Bearer {forge.owner_token}"}


def ok_json(response) -> dict:
    assert response.status_code < 300, (response.status_code, response.get_data(as_text=True)[:500])
    return response.get_json() if response.is_json else {}


def plant(forge, client, visibility: str, marker: str) -> Planted:
    """Create, as the owner, one of everything in the project, named with ``marker``."""
    pid = PROJECT_IDS[visibility]
    h = owner_headers(forge)
    p = Planted(marker=marker)

    def post(path, body):
        return ok_json(call(client, "POST", api_url(pid, "/api/2.0/mlflow/" + path), h, body))

    p.experiment_name = f"{marker}-experiment"
    p.experiment_id = post("experiments/create", {"name": p.experiment_name,
                                                  "tags": [{"key": f"{marker}-etag", "value": marker}]})["experiment_id"]
    run = post("runs/create", {"experiment_id": p.experiment_id, "run_name": f"{marker}-run",
                               "tags": [{"key": f"{marker}-tag", "value": f"{marker}-tagvalue"}], "start_time": 1000})["run"]
    p.run_id = run["info"]["run_id"]
    p.metric_key, p.tag_key = f"{marker}-metric", f"{marker}-tag"
    post("runs/log-batch", {"run_id": p.run_id,
                            "metrics": [{"key": p.metric_key, "value": 0.5, "timestamp": 1000, "step": s} for s in range(3)],
                            "params": [{"key": f"{marker}-param", "value": f"{marker}-pvalue"}]})
    post("runs/log-inputs", {"run_id": p.run_id, "datasets": [{"dataset": {
        "name": f"{marker}-dataset", "digest": "abc123", "source_type": "local", "source": f"{marker}-source"}}]})
    artifact_uri = run["info"]["artifact_uri"]
    p.artifact_dir = artifact_uri.split(":/", 1)[1].lstrip("/")
    p.artifact_path = f"{p.artifact_dir}/{marker}-file.txt"
    ok_json(call(client, "PUT", api_url(pid, "/api/2.0/mlflow-artifacts/artifacts/" + p.artifact_path), h,
                 data=f"artifact content {marker}".encode()))
    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Run

    with forge.app.app_context():
        p.run_iid = get_state().session.query(Run).filter_by(run_uuid=p.run_id).one().iid
    model = post("logged-models", {"experiment_id": p.experiment_id, "name": f"{marker}-lmodel",
                                   "source_run_id": p.run_id, "params": [{"key": f"{marker}-lparam", "value": marker}]})
    p.logged_model_id = model["model"]["info"]["model_id"]
    p.registered_model = f"{marker}-regmodel"
    post("registered-models/create", {"name": p.registered_model, "description": f"{marker} description",
                                      "tags": [{"key": f"{marker}-rtag", "value": marker}]})
    post("model-versions/create", {"name": p.registered_model, "source": artifact_uri, "run_id": p.run_id,
                                   "description": f"{marker} version"})
    post("registered-models/alias", {"name": p.registered_model, "alias": "champion", "version": "1"})
    p.package_name, p.package_file = f"{marker}-package", f"{marker}-notes.txt"
    upload = call(client, "PUT", f"/api/v4/projects/{pid}/packages/generic/{p.package_name}/{p.package_version}/{p.package_file}",
                  h, data=f"package content {marker}".encode())
    assert upload.status_code == 201, upload.get_data(as_text=True)
    listing = ok_json(call(client, "GET", f"/api/v4/projects/{pid}/packages", h, query={"package_name": p.package_name}))
    p.package_id = listing[0]["id"]
    files = call(client, "GET", f"/api/v4/projects/{pid}/packages/{p.package_id}/package_files", h).get_json()
    p.package_file_id = files[0]["id"]
    plant_genai(client, pid, h, p)
    return p


def plant_genai(client, pid: int, headers: dict, p: Planted) -> None:
    """A GenAI evaluation dataset (name, tag and a record carrying the marker) and a scorer."""
    import json

    def post(path, body):
        return ok_json(call(client, "POST", api_url(pid, "/api/3.0/mlflow/" + path), headers, body))

    m = p.marker
    p.dataset_id = post("datasets/create", {"name": f"{m}-evalset", "experiment_ids": [p.experiment_id],
                                            "tags": json.dumps({f"{m}-dtag": m})})["dataset"]["dataset_id"]
    post(f"datasets/{p.dataset_id}/records", {"records": json.dumps([{"inputs": {"q": f"{m}-input"}}])})
    post("scorers/register", {"experiment_id": p.experiment_id, "name": f"{m}-scorer",
                              "serialized_scorer": json.dumps({"name": f"{m}-scorer"})})


def genai_values(p: Planted, bogus: bool) -> dict:
    return {"dataset_id": "d-" + "0" * 32 if bogus else p.dataset_id, "key": "nokey" if bogus else f"{p.marker}-dtag"}


def genai_api_args(p: Planted) -> dict:
    """Plausible arguments of the GenAI dataset and scorer endpoints."""
    e, scorer = p.experiment_id, f"{p.marker}-scorer"
    return {
        "datasets/create": {"name": f"{p.marker}-second-evalset"},
        "datasets/<dataset_id>/tags": {"tags": '{"k": "v"}'},
        "datasets/<dataset_id>/records": {"records": '[{"inputs": {"q": "new"}}]'},
        "datasets/<dataset_id>/add-experiments": {"experiment_ids": [e]},
        "datasets/<dataset_id>/remove-experiments": {"experiment_ids": [e]},
        "scorers/register": {"experiment_id": e, "name": f"{scorer}-2", "serialized_scorer": "{}"},
        "scorers/list": {"experiment_id": e},
        "scorers/versions": {"experiment_id": e, "name": scorer},
        "scorers/get": {"experiment_id": e, "name": scorer},
        "scorers/delete": {"experiment_id": e, "name": scorer},
        "scorers/online-configs": {"scorer_ids": ["x"]},
    }


def make_identities(app) -> dict[str, Identity]:
    """Users, memberships, tokens and a CI job, written straight into the forge's tables."""
    from examples.forge import auth
    from examples.forge.models import Job, Membership, Pipeline, PersonalAccessToken, Role, User, db, utcnow
    from sqlalchemy import select

    tokens: dict[str, str] = {}
    with app.app_context():
        def user(name: str) -> User:
            row = User(username=f"m-{name}", name=name.title(), email=f"{name}@matrix.example", password_hash="!")
            db.session.add(row)
            return row

        def member(row: User, role: Role) -> None:
            for project_id in PROJECT_IDS.values():
                db.session.add(Membership(user=row, project_id=project_id, role=int(role)))

        roles = {"guest": Role.GUEST, "reporter": Role.REPORTER, "developer": Role.DEVELOPER,
                 "maintainer": Role.MAINTAINER}
        users = {}
        for name, role in roles.items():
            users[name] = user(name)
            member(users[name], role)
        for name in ("expired", "revoked", "readapi"):
            users[name] = user(name)
            member(users[name], Role.MAINTAINER)
        db.session.flush()
        for name in roles:
            _row, tokens[name] = auth.create_personal_access_token(users[name], "matrix", ("api",))
        _row, tokens["read_api_token"] = auth.create_personal_access_token(users["readapi"], "matrix", ("read_api",))
        _row, tokens["expired_token"] = auth.create_personal_access_token(
            users["expired"], "matrix", ("api",), expires_at=utcnow() - timedelta(days=1))
        row, tokens["revoked_token"] = auth.create_personal_access_token(users["revoked"], "matrix", ("api",))
        row.revoked = True
        pipeline = Pipeline(project_id=PROJECT_IDS["private"], ref="main", sha="0" * 40, user_id=users["developer"].id)
        db.session.add(pipeline)
        db.session.flush()
        tokens["ci_job_token"] = auth.new_token(auth.JOB_TOKEN_PREFIX)
        db.session.add(Job(project_id=PROJECT_IDS["private"], pipeline_id=pipeline.id, name="train", status="running",
                           token_digest=auth.token_digest(tokens["ci_job_token"]), user_id=users["developer"].id))
        db.session.commit()
        # Stored hashed: no token's clear text is anywhere in the tables.
        digests = set(db.session.scalars(select(PersonalAccessToken.token_digest)))
        assert all(t not in digests and auth.token_digest(t) in digests
                   for k, t in tokens.items() if k not in ("ci_job_token",))

    basic = base64.b64encode(f"m-developer:{tokens['developer']}".encode()).decode()
    from tests.support.liveserver import OUTSIDER_TOKEN

    # Every way a token may travel is used by someone.
    return {
        "anonymous": Identity("anonymous"),
        "invalid_token": Identity("invalid_token", {"Authorization": "Bearer glpat-not-a-real-token-000000000"}),
        "expired_token": Identity("expired_token", {"PRIVATE-TOKEN": tokens["expired_token"]}),
        "revoked_token": Identity("revoked_token", {"Authorization": f"Bearer {tokens['revoked_token']}"}),
        "read_api_token": Identity("read_api_token", {"PRIVATE-TOKEN": tokens["read_api_token"]}),
        "outsider": Identity("outsider", {"Authorization": f"Bearer {OUTSIDER_TOKEN}"}),
        "guest": Identity("guest", {"PRIVATE-TOKEN": tokens["guest"]}),
        "reporter": Identity("reporter", {"Authorization": f"Bearer {tokens['reporter']}"}),
        "developer": Identity("developer", {"Authorization": f"Basic {basic}"}),
        "maintainer": Identity("maintainer", {"Authorization": f"Bearer {tokens['maintainer']}"}),
        "ci_job_token": Identity("ci_job_token", {"JOB-TOKEN": tokens["ci_job_token"]}),
    }


# -- endpoints ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    surface: str  # "api" (MLflow + artifacts), "packages", "ui", "ci" (the CI panels' pages and JSON)
    rule: str  # the full Flask rule
    method: str
    write: bool
    authenticate: bool = True  # False: the endpoint checks a credential of its own (signed part URLs)
    spec_rule: str = ""  # for the MLflow API: the rule below the tracking URI

    @property
    def key(self) -> str:
        from gl_ml_tracking.blueprints.api.framework import endpoint_key

        return endpoint_key(self.spec_rule) if self.spec_rule else self.rule

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


# POSTs of the MLflow API that only read (searches): everything else that is not a
# GET is a mutation. Used to check each route's declared access.
READ_ONLY_POSTS = {"experiments/search", "runs/search", "logged-models/search", "registered-models/search",
                   "model-versions/search", "registered-models/get-latest-versions"}
READ_ONLY_POSTS |= {"datasets/search"}  # GenAI evaluation datasets
READ_ONLY_POSTS |= {"traces/search", "traces/batchGetInfos", "traces/metrics", "issues/search",
                    "traces/calculate-filter-correlation"}  # MLflow 3 tracing


def discover_endpoints(app) -> list[Endpoint]:
    from gl_ml_tracking.blueprints.api import api_routes

    routes = api_routes()

    found = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else ""
        if not blueprint.startswith("gl_ml_tracking") or "static" in blueprint or rule.endpoint.endswith(".not_found") \
                or ".not_found_" in rule.endpoint or rule.endpoint.endswith(".tracking_root"):
            # tracking_root: the browser redirect for MLflow's "View run" links (test_mlflow_links.py).
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if "<path:project_ref>" in rule.rule and blueprint == "gl_ml_tracking_api":
                spec = next(s for s in routes if rule.rule.endswith(s.rule) and method in s.methods)
                found.append(Endpoint("api", rule.rule, method, bool(spec.access.write), spec.access.authenticate, spec.rule))
            elif "<path:project_ref>" in rule.rule:
                found.append(Endpoint("packages", rule.rule, method, method != "GET"))
            elif "<path:project_path>" in rule.rule:
                found.append(Endpoint("ci" if blueprint == "gl_ml_tracking_ci" else "ui", rule.rule, method, method != "GET"))
    return sorted(found, key=str)


def _fill(rule: str, values: dict) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(2)
        value = values.get(name, "1" if match.group(1) == "int" else "x")
        return str(value) if match.group(1) in ("path", "glml_anypath") else quote(str(value), safe="")

    return re.sub(r"<(?:(\w+):)?(\w+)>", replace, rule)


def path_values(p: Planted, bogus: bool) -> dict:
    """Values for URL placeholders: the planted objects, or (for writes that must
    not destroy them) ones that exist nowhere."""
    if bogus:
        return {"model_id": "m-" + "0" * 32, "tag_key": "nokey", "artifact_path": "ml_experiment_999999/1/none.txt",
                "part_number": 1, "name": "no-such-name", "version": "9.9.9", "file_path": "none.txt",
                "package_id": 999999, "file_id": 999999, "iid": 999999, **genai_values(p, True)}
    return {"model_id": p.logged_model_id, "tag_key": f"{p.marker}-ltag", "artifact_path": p.artifact_path,
            "part_number": 1, "name": p.package_name, "version": p.package_version, "file_path": p.package_file,
            "package_id": p.package_id, "file_id": p.package_file_id, "iid": p.run_iid, **genai_values(p, False)}


def ui_values(endpoint: Endpoint, p: Planted, bogus: bool) -> dict:
    if bogus:
        return path_values(p, True)
    values = path_values(p, False)
    # /ml/experiments/<iid> is an experiment, /ml/candidates/<iid> a run, /merge_requests/<iid> one of the host's.
    if "/ml/experiments/" in endpoint.rule or "/trash/experiments/" in endpoint.rule:
        values["iid"] = int(p.experiment_id)
    if "/ml/models/" in endpoint.rule:
        values["name"] = p.registered_model
    return values


def api_args(key: str, method: str, p: Planted) -> dict:
    """Plausible arguments per MLflow endpoint (by path below the prefix)."""
    m, e, r, lm, rm = p.marker, p.experiment_id, p.run_id, p.logged_model_id, p.registered_model
    table = {
        "experiments/get": {"experiment_id": e},
        "experiments/get-by-name": {"experiment_name": p.experiment_name},
        "experiments/search": {"max_results": 100},
        "experiments/delete": {"experiment_id": e},
        "experiments/restore": {"experiment_id": e},
        "experiments/update": {"experiment_id": e, "new_name": f"{m}-renamed"},
        "experiments/set-experiment-tag": {"experiment_id": e, "key": "k", "value": "v"},
        "experiments/delete-experiment-tag": {"experiment_id": e, "key": f"{m}-etag"},
        "runs/create": {"experiment_id": e},
        "runs/get": {"run_id": r},
        "runs/update": {"run_id": r, "status": "KILLED"},
        "runs/delete": {"run_id": r},
        "runs/restore": {"run_id": r},
        "runs/log-metric": {"run_id": r, "key": "new", "value": 1.0, "timestamp": 5, "step": 9},
        "runs/log-parameter": {"run_id": r, "key": "newp", "value": "1"},
        "runs/set-tag": {"run_id": r, "key": p.tag_key, "value": "overwritten"},
        "runs/delete-tag": {"run_id": r, "key": p.tag_key},
        "runs/log-batch": {"run_id": r, "metrics": [{"key": "new", "value": 2.0, "timestamp": 5, "step": 1}]},
        "runs/log-inputs": {"run_id": r, "datasets": [{"dataset": {"name": "d2", "digest": "d2", "source_type": "local", "source": "s"}}]},
        "runs/outputs": {"run_id": r, "models": [{"model_id": lm, "step": 0}]},
        "runs/log-model": {"run_id": r, "model_json": '{"artifact_path": "m", "flavors": {}, "utc_time_created": "x", "run_id": "%s"}' % r},
        "runs/search": {"experiment_ids": [e]},
        "metrics/get-history": {"run_id": r, "metric_key": p.metric_key},
        "metrics/get-history-bulk-interval": {"run_ids": [r], "metric_key": p.metric_key},
        "artifacts/list": {"run_id": r},
        "logged-models": {"experiment_id": e, "name": "new-model"},
        "logged-models/search": {"experiment_ids": [e]},
        "logged-models/<model_id>": {"status": "LOGGED_MODEL_READY"} if method == "PATCH" else {},
        "logged-models/<model_id>/tags": {"tags": [{"key": "k", "value": "v"}]},
        "logged-models/<model_id>/params": {"params": [{"key": "k2", "value": "v"}]},
        "registered-models/create": {"name": f"{m}-second"},
        "registered-models/get": {"name": rm},
        "registered-models/rename": {"name": rm, "new_name": f"{m}-renamed-model"},
        "registered-models/update": {"name": rm, "description": "changed"},
        "registered-models/delete": {"name": rm},
        "registered-models/search": {},
        "registered-models/get-latest-versions": {"name": rm},
        "registered-models/set-tag": {"name": rm, "key": "k", "value": "v"},
        "registered-models/delete-tag": {"name": rm, "key": f"{m}-rtag"},
        "registered-models/alias": {"name": rm, "alias": "champion", **({"version": "1"} if method == "POST" else {})},
        "model-versions/create": {"name": rm, "source": f"mlflow-artifacts:/{p.artifact_dir}", "run_id": r},
        "model-versions/get": {"name": rm, "version": "1"},
        "model-versions/update": {"name": rm, "version": "1", "description": "changed"},
        "model-versions/delete": {"name": rm, "version": "1"},
        "model-versions/search": {"filter": f"name='{rm}'"},
        "model-versions/set-tag": {"name": rm, "version": "1", "key": "k", "value": "v"},
        "model-versions/delete-tag": {"name": rm, "version": "1", "key": "k"},
        "model-versions/get-download-uri": {"name": rm, "version": "1"},
        "model-versions/transition-stage": {"name": rm, "version": "1", "stage": "Production", "archive_existing_versions": False},
        "artifacts": {"path": p.artifact_dir},
        "mpu/create/<path:artifact_path>": {"path": "big.bin", "num_parts": 1},
        "mpu/complete/<path:artifact_path>": {"path": "big.bin", "upload_id": "x", "parts": [{"part_number": 1, "etag": "e"}]},
        "mpu/abort/<path:artifact_path>": {"path": "big.bin", "upload_id": "x"},
        "mpu/part/<int:part_number>": {"upload_id": "not-a-signed-token"},
        # issue 16: the legacy artifact endpoints
        "get-artifact": {"run_id": r, "path": p.artifact_path.rsplit("/", 1)[-1]},
        "model-versions/get-artifact": {"name": rm, "version": "1", "path": p.artifact_path.rsplit("/", 1)[-1]},
    }
    table.update(genai_api_args(p))
    return dict(table.get(key, {}))


# -- the world the matrix runs in ----------------------------------------------------
@dataclass
class World:
    forge: Any
    client: Any
    identities: dict
    planted: dict  # visibility -> Planted
    endpoints: list

    @property
    def secret_marker(self) -> str:
        return self.planted["private"].marker


@pytest.fixture(scope="module")
def world(forge):
    client = forge.app.test_client()
    planted = {
        "public": plant(forge, client, "public", "pubmark" + uuid.uuid4().hex[:10]),
        "private": plant(forge, client, "private", "secretmark" + uuid.uuid4().hex[:10]),
    }
    world = World(forge, client, make_identities(forge.app), planted, discover_endpoints(forge.app))
    yield world
    surfaces = {s: sum(1 for e in world.endpoints if e.surface == s) for s in ("api", "packages", "ui", "ci")}
    print(f"\nauth matrix: {len(world.endpoints)} endpoints {surfaces} x {len(IDENTITIES)} identities x "
          f"{len(VISIBILITIES)} visibilities; {SENT['requests']} requests sent")
    SENT["requests"] = 0


SENT = {"requests": 0}


@dataclass
class Exchange:
    endpoint: Endpoint
    url: str
    status: int
    body: str
    headers: dict
    content_type: str


def send(world: World, endpoint: Endpoint, identity: Identity, visibility: Optional[str], bogus: bool,
         cookies: Optional[dict] = None, form: Optional[dict] = None) -> Exchange:
    """One request. ``visibility`` None: the same request aimed at a missing project."""
    p = world.planted[visibility or "private"]
    if endpoint.surface in ("ui", "ci"):
        values = ui_values(endpoint, p, bogus)
        values["project_path"] = PROJECT_PATHS[visibility] if visibility else MISSING_PATH
    else:
        values = path_values(p, bogus)
        values["project_ref"] = PROJECT_IDS[visibility] if visibility else MISSING_ID
    url = _fill(endpoint.rule, values)
    headers = dict(identity.headers)
    json_body = query = data = None
    if endpoint.surface == "api":
        args = {} if (bogus and endpoint.write) else api_args(endpoint.key, endpoint.method, p)
        if endpoint.method == "GET" or endpoint.key in ("mpu/part/<int:part_number>",):
            query = args
        if endpoint.method == "PUT":
            data = b"uploaded by the matrix"
        elif endpoint.method != "GET":
            json_body = args
    elif endpoint.surface == "packages" and endpoint.method == "PUT":
        data = b"uploaded by the matrix"
    SENT["requests"] += 1
    client = world.forge.app.test_client()
    for name, value in (cookies or {}).items():
        client.set_cookie(name, value)
    try:
        if form is not None:
            response = client.open(url, method=endpoint.method, headers=headers, data=form)
        else:
            response = call(client, endpoint.method, url, headers, json_body, query, data)
    except Exception as exc:  # TESTING propagates a view's exception: record it as the 500 it would be
        return Exchange(endpoint, url, 500, f"exception: {exc!r}"[:300], {}, "")
    body = response.get_data(as_text=True)
    return Exchange(endpoint, url, response.status_code, body, dict(response.headers), response.content_type or "")


def normalised(exchange: Exchange, visibility: Optional[str]) -> tuple:
    """What must be identical between an unreadable and a missing project."""
    body = exchange.body
    real = PROJECT_PATHS.get(visibility or "", "\0")
    # Both spellings: a host layout may echo the path URL-encoded (a sign-in link's ``next=``).
    for ref in (real, quote(real, safe=""), MISSING_PATH, quote(MISSING_PATH, safe="")):
        body = body.replace(ref, "<project>")
    # Per-session CSRF tokens (the host layout's sign-out form) differ on every request.
    body = re.sub(r'(name="csrf_token" value=")[^"]*', r"\1<token>", body)
    headers = {k: v for k, v in exchange.headers.items() if k.lower() not in ("content-length", "date", "set-cookie")}
    return exchange.status, body, exchange.content_type, sorted(headers.items())


def leaks(exchange: Exchange, marker: str) -> list[str]:
    found = []
    # The host's layout may echo the caller's own URL (a sign-in link's ``next=``):
    # that repeats what the caller sent, it reveals nothing of the project.
    from urllib.parse import quote, urlsplit

    path = urlsplit(exchange.url).path
    body = exchange.body
    for echo in {path, quote(path, safe=""), quote(path, safe="/"), path.replace("/", "%2F")}:
        body = body.replace(echo, "")
    if marker in body:
        found.append("body")
    for name, value in exchange.headers.items():
        if marker in name or marker in value:
            found.append(f"header {name}")
    return found


def mutation_forms(html: str) -> list[str]:
    """Actions of POST forms pointing into the extension's pages (the host's own sign-out is not ours)."""
    actions = []
    for form in re.finditer(r"<form\b[^>]*>", html, re.I):
        tag = form.group(0)
        if re.search(r"method\s*=\s*['\"]?post", tag, re.I):
            action = re.search(r"action\s*=\s*['\"]([^'\"]*)", tag, re.I)
            target = action.group(1) if action else ""
            if "/-/ml/" in target or "/-/packages" in target or not target:
                actions.append(target)
    return actions


def session_cookie_with_csrf(app, token: str) -> dict:
    """A browser session holding a known CSRF token, signed with the app's key:
    lets a read-only caller send an otherwise perfect form."""
    from gl_ml_tracking.services import csrf

    serializer = app.session_interface.get_signing_serializer(app)
    return {app.config.get("SESSION_COOKIE_NAME", "session"): serializer.dumps({csrf.SESSION_KEY: token})}


# -- the matrix --------------------------------------------------------------------------
def run_matrix(world: World, identity_name: str, visibility: str) -> tuple[list[str], list[Exchange]]:
    """Every endpoint for one identity and one project; returns the failures."""
    from gl_ml_tracking.services import csrf

    identity = world.identities[identity_name]
    failures: list[str] = []
    seen: list[Exchange] = []
    csrf_token = "matrix-csrf-" + "x" * 40
    for endpoint in world.endpoints:
        level = ui_level(identity_name, visibility, endpoint.surface) if endpoint.surface in ("ui", "ci") \
            else LEVELS[identity_name][visibility]
        if endpoint.surface == "api" and endpoint.key in ADMIN_ONLY_KEYS:
            level = admin_level(identity_name, level)
        like_missing = level in ("unauth", "none") or (endpoint.surface == "api" and not endpoint.authenticate)
        writer_write = endpoint.write and level == "write"
        cookies = form = None
        if endpoint.surface in ("ui", "ci") and endpoint.write:
            # A complete form from a real session: only the permission check may refuse it.
            cookies = session_cookie_with_csrf(world.forge.app, csrf_token)
            form = {csrf.FORM_FIELD: csrf_token}
            if writer_write:
                cookies = form = None  # writers: no CSRF token, so nothing is changed (refused for CSRF)
        ex = send(world, endpoint, identity, visibility, bogus=writer_write, cookies=cookies, form=form)
        seen.append(ex)
        where = f"{identity_name} × {visibility} × {endpoint} -> {ex.status}"
        if ex.status >= 500:
            failures.append(f"{where}: server error {ex.body[:200]}")
            continue
        if like_missing:
            missing = send(world, endpoint, identity, None, bogus=writer_write, cookies=cookies, form=form)
            if normalised(ex, visibility) != normalised(missing, None):
                failures.append(f"{where}: differs from a missing project ({missing.status} {missing.body[:150]!r} vs {ex.body[:150]!r})")
            expected_status = 401 if level == "unauth" and endpoint.surface in ("api", "packages") and endpoint.authenticate else 404
            if endpoint.surface == "api" and not endpoint.authenticate:
                expected_status = 403  # a signed URL whose signature does not verify, before any project lookup
            if ex.status != expected_status:
                failures.append(f"{where}: expected {expected_status}")
        elif endpoint.write and level in ("read", "read_limited"):
            if endpoint.surface in ("ui", "ci"):
                if ex.status not in (403, 404):
                    failures.append(f"{where}: a read-only caller's form was not refused")
            elif ex.status != 403:
                failures.append(f"{where}: expected 403 for a read-only caller ({ex.body[:150]})")
            elif endpoint.surface == "api" and (ex.content_type != "application/json" or ex.body.find("PERMISSION_DENIED") < 0):
                failures.append(f"{where}: not MLflow's PERMISSION_DENIED error: {ex.body[:150]}")
        else:
            if ex.status in (401, 403) and not (endpoint.surface in ("ui", "ci") and writer_write):
                failures.append(f"{where}: refused an allowed caller ({ex.body[:150]})")
            project_404 = send(world, endpoint, identity, None, bogus=writer_write) if ex.status == 404 else None
            if project_404 is not None and level != "read_limited" and normalised(ex, visibility) == normalised(project_404, None) \
                    and "Project Not Found" in ex.body:
                failures.append(f"{where}: answered 'project not found' to a caller who may read it")
        can_see_secret = visibility == "private" and level in ("read", "read_limited", "write")
        if not can_see_secret:
            for part in leaks(ex, world.secret_marker):
                failures.append(f"{where}: private marker in the {part}")
        if endpoint.surface in ("ui", "ci") and endpoint.method == "GET" and level == "read" and ex.status == 200 \
                and "html" in ex.content_type and mutation_forms(ex.body):
            failures.append(f"{where}: read-only page shows mutation controls {mutation_forms(ex.body)}")
    return failures, seen


def assert_planted_intact(world: World, visibility: str) -> None:
    """Refused writes changed nothing."""
    p = world.planted[visibility]
    pid = PROJECT_IDS[visibility]
    h = owner_headers(world.forge)
    run = ok_json(call(world.client, "GET", api_url(pid, "/api/2.0/mlflow/runs/get"), h, query={"run_id": p.run_id}))["run"]
    assert run["info"]["lifecycle_stage"] == "active" and run["info"]["status"] == "RUNNING"
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}[p.tag_key] == f"{p.marker}-tagvalue"
    assert {m["key"] for m in run["data"]["metrics"]} == {p.metric_key}
    assert {x["key"] for x in run["data"]["params"]} == {f"{p.marker}-param"}
    exp = ok_json(call(world.client, "GET", api_url(pid, "/api/2.0/mlflow/experiments/get"), h,
                       query={"experiment_id": p.experiment_id}))["experiment"]
    assert exp["name"] == p.experiment_name and exp["lifecycle_stage"] == "active"
    model = ok_json(call(world.client, "GET", api_url(pid, "/api/2.0/mlflow/registered-models/get"), h,
                         query={"name": p.registered_model}))["registered_model"]
    assert model["name"] == p.registered_model
    art = call(world.client, "GET", api_url(pid, "/api/2.0/mlflow-artifacts/artifacts/" + p.artifact_path), h)
    assert art.status_code == 200 and art.get_data() == f"artifact content {p.marker}".encode()
    pkg = call(world.client, "GET", f"/api/v4/projects/{pid}/packages/{p.package_id}", h)
    assert pkg.status_code == 200


MATRIX = [(i, v) for i in IDENTITIES for v in VISIBILITIES]


@pytest.mark.parametrize("identity_name,visibility", MATRIX, ids=[f"{i}-{v}" for i, v in MATRIX])
def test_matrix(world, identity_name, visibility):
    failures, seen = run_matrix(world, identity_name, visibility)
    assert not failures, f"{len(failures)} of {len(seen)} requests wrong:\n" + "\n".join(failures[:60])
    assert_planted_intact(world, visibility)
    assert_planted_intact(world, "public" if visibility == "private" else "private")


def test_matrix_covers_every_surface(world):
    surfaces = {e.surface for e in world.endpoints}
    assert {"api", "packages"} <= surfaces
    keys = {e.key for e in world.endpoints if e.surface == "api"}
    for must in ("experiments/create", "runs/log-batch", "runs/search", "artifacts/<path:artifact_path>",
                 "openapi.json", "server-info"):
        assert must in keys
    # Ajax twins are routed like the API proper.
    assert any(e.rule.endswith("/ajax-api/2.0/mlflow/runs/search") for e in world.endpoints)


def test_declared_access_matches_meaning(world):
    """A mutating MLflow endpoint must declare a write permission (or the matrix
    would let read-only callers through it), and a read must not demand one."""
    wrong = []
    for e in world.endpoints:
        if e.surface != "api" or not e.authenticate:
            continue
        base = e.key
        mutating = e.method in ("PUT", "PATCH", "DELETE") or (e.method == "POST" and base not in READ_ONLY_POSTS)
        mutating = mutating or base in ADMIN_ONLY_KEYS  # declared "write": they need admin_model_registry
        if mutating != e.write:
            wrong.append(f"{e}: declared {'write' if e.write else 'read'}")
    assert not wrong, "\n".join(wrong)


def test_positive_controls(world):
    """The leak checks are not vacuous: readers of the private project do see the
    marker in API answers, pages and the CSV export, and writers get controls."""
    reader = world.identities["reporter"]
    hits = [ex for ex in run_matrix(world, "reporter", "private")[1] if world.secret_marker in ex.body]
    surfaces = {ex.endpoint.surface for ex in hits}
    assert "api" in surfaces and "packages" in surfaces
    if any(e.surface == "ui" for e in world.endpoints):
        assert "ui" in surfaces
        assert any(ex.url.endswith(".csv") for ex in hits), "the CSV export should show the private run to a reader"
        experiment_page = next(e for e in world.endpoints if e.surface == "ui" and e.rule.endswith("/ml/experiments/<int:iid>"))
        page = send(world, experiment_page, world.identities["maintainer"], "private", bogus=False)
        assert page.status == 200 and mutation_forms(page.body), "writers should get delete/restore controls"
        page = send(world, experiment_page, reader, "private", bogus=False)
        assert page.status == 200 and not mutation_forms(page.body)


def test_unreadable_project_by_full_path_is_a_missing_project(world):
    """Refs by URL-encoded full path answer like ids: the outsider cannot tell
    ``demo/secret`` from a path that does not exist."""
    outsider = world.identities["outsider"]
    for path in ("/api/2.0/mlflow/experiments/search", "/api/2.0/mlflow/runs/get"):
        secret = call(world.client, "GET", api_url(quote("demo/secret", safe=""), path), outsider.headers)
        missing = call(world.client, "GET", api_url(quote(MISSING_PATH, safe=""), path), outsider.headers)
        assert secret.status_code == missing.status_code == 404
        assert secret.get_data() == missing.get_data()
    listing = call(world.client, "GET", f"/api/v4/projects/{quote('demo/secret', safe='')}/packages", outsider.headers)
    assert listing.status_code == 404 and world.secret_marker not in listing.get_data(as_text=True)


def test_cross_project_ids_are_not_found(world):
    """A run id, experiment id or model of the private project, asked for through
    the public project (readable), is not found there and reveals nothing."""
    secret = world.planted["private"]
    maintainer = world.identities["maintainer"]
    checks = [
        ("GET", "/api/2.0/mlflow/runs/get", {"run_id": secret.run_id}),
        ("GET", "/api/2.0/mlflow/metrics/get-history", {"run_id": secret.run_id, "metric_key": secret.metric_key}),
        ("GET", "/api/2.0/mlflow/registered-models/get", {"name": secret.registered_model}),
        ("GET", f"/api/2.0/mlflow/logged-models/{secret.logged_model_id}", {}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/" + secret.artifact_path, {}),
        ("GET", f"/api/3.0/mlflow/datasets/{secret.dataset_id}", {}),
        ("GET", f"/api/3.0/mlflow/datasets/{secret.dataset_id}/records", {}),
    ]
    fake = "nosuch" + uuid.uuid4().hex[:14]
    for method, path, query in checks:
        r = call(world.client, method, api_url(1, path), maintainer.headers, query=query)
        assert r.status_code in (400, 404), (path, r.status_code)
        # The answer may echo what was asked; it must be the answer for an id that exists nowhere.
        swap = lambda text: text.replace(secret.marker, fake)  # noqa: E731
        other = call(world.client, method, api_url(1, swap(path)), maintainer.headers,
                     query={k: swap(v) for k, v in query.items()})
        assert r.status_code == other.status_code, path
        assert swap(r.get_data(as_text=True)) == other.get_data(as_text=True), path
    body = call(world.client, "POST", api_url(1, "/api/2.0/mlflow/runs/search"), maintainer.headers,
                {"experiment_ids": [secret.experiment_id], "filter": f"tags.`{secret.tag_key}` != ''"})
    assert world.secret_marker not in body.get_data(as_text=True)
    # A job token of the private project cannot write into the public one either.
    job = world.identities["ci_job_token"]
    r = call(world.client, "POST", api_url(1, "/api/2.0/mlflow/experiments/create"), job.headers, {"name": "from-job"})
    assert r.status_code == 404
