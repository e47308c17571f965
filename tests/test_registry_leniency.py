"""Differential tests against the reference ``mlflow server`` (the pinned MLflow, SQLite):
which model-version sources are accepted and what is stored, the length limits of tags
and params, the wording of validation errors, run model inputs, a logged model's
``source_run_id`` and the ``mlflow.modelVersions`` tag. Each test uses a fresh project of
ours (SQLite and PostgreSQL); ids that differ between the servers are substituted.

Plus ours only: the legacy artifact endpoints, and that a stored reference to another
project's run never exposes its files.
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.support.projects import new_project
from tests.support.reference import reference_server


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    try:
        with reference_server(tmp_path_factory.mktemp("ref")) as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


class Api:
    def __init__(self, base: str, token: str = ""):
        self.base = base
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def post(self, path: str, body: dict) -> requests.Response:
        return self.session.post(f"{self.base}/api/2.0/mlflow/{path}", json=body)

    def get(self, endpoint: str, **params) -> requests.Response:
        return self.session.get(f"{self.base}/api/2.0/mlflow/{endpoint}", params=params)

    def ok(self, path: str, body: dict) -> dict:
        r = self.post(path, body)
        assert r.status_code == 200, (path, r.text)
        return r.json()

    def world(self) -> dict:
        """An experiment, a run with a file, a logged model and a registered model."""
        exp = self.ok("experiments/create", {"name": "e" + uuid.uuid4().hex[:8]})["experiment_id"]
        info = self.ok("runs/create", {"experiment_id": exp})["run"]["info"]
        other = self.ok("runs/create", {"experiment_id": exp})["run"]["info"]
        model = self.ok("logged-models", {"experiment_id": exp, "name": "model"})["model"]["info"]
        name = "rm" + uuid.uuid4().hex[:8]
        self.ok("registered-models/create", {"name": name})
        return {"exp": exp, "run": info["run_id"], "root": info["artifact_uri"], "other_run": other["run_id"],
                "model": model["model_id"], "model_root": model["artifact_uri"], "name": name}


@pytest.fixture
def ours(forge):
    return Api(forge.tracking_uri(new_project(forge)), forge.owner_token)


# (source, run_id, model_id); placeholders are filled from each server's world.
SOURCE_CASES = [
    ("runs:/run_id/model", "run_id", None),
    ("runs:/run_id/model", "run_id_1", None),
    ("runs:/run_id/model", None, None),
    ("runs:/{run}/model", "{run}", None),
    ("runs:/{run}/model", "{other_run}", None),
    ("runs://host/{run}/model", "{run}", None),
    ("mlflow-artifacts:/models", None, None),
    ("mlflow-artifacts:/models", "abc", None),
    ("{root}/model", "{run}", None),
    ("{root}/model", "{other_run}", None),
    ("{root}/../x", "{run}", None),
    ("{model_root}", None, "{model}"),
    ("models:/{model}", None, "{model}"),
    ("models:/{model}", None, None),
    ("models:/{model}", "{run}", None),
    ("s3://bucket/x", None, None),
    ("s3://bucket/../x", None, None),
    ("s3://bucket", None, None),
    ("gs://b/x", None, None),
    ("dbfs:/x", None, None),
    ("wasbs://c@a.blob.core.windows.net/x", None, None),
    ("path/to/model", None, None),
    ("path/to/model", "run_id", None),
    ("/abs/path", None, None),
    ("file:///abs/path", None, None),
    ("dummy-source", None, None),
    ("http://example.com/x", None, None),
    ("https://example.com/api/2.0/mlflow-artifacts/artifacts/x", None, None),
    ("hdfs://namenode/x", None, None),
    ("ftp://h/x", None, None),
    ("mlflow-artifacts://host/x", None, None),
    ("models:/{name}/1", None, None),
    ("models:/{name}/1", "other", None),
    ("models:/nonexist/1", None, None),
]


def _fill(value, world):
    return value.format(**world) if isinstance(value, str) else value


def _source_outcomes(api: Api) -> list:
    world = api.world()
    api.ok("model-versions/create", {"name": world["name"], "source": "s3://first/version", "run_id": "first"})
    back = {v: k for k, v in world.items() if k in ("run", "other_run", "model", "root", "model_root", "name")}
    outcomes = []
    for source, run_id, model_id in SOURCE_CASES:
        body = {"name": world["name"], "source": _fill(source, world)}
        if run_id is not None:
            body["run_id"] = _fill(run_id, world)
        if model_id is not None:
            body["model_id"] = _fill(model_id, world)
        r = api.post("model-versions/create", body)
        out = r.json()
        if r.status_code == 200:
            mv = out["model_version"]
            stored = [mv["source"], mv.get("run_id", "")]
            for value, key in sorted(back.items(), key=lambda kv: -len(kv[0])):
                stored = [s.replace(value, "{" + key + "}") for s in stored]
            outcomes.append((source, run_id, 200, tuple(stored)))
        else:
            outcomes.append((source, run_id, r.status_code, out.get("error_code")))
    return outcomes


def test_version_sources_as_reference(reference, ours):
    expected = _source_outcomes(Api(reference))
    got = _source_outcomes(ours)
    assert len(got) == len(SOURCE_CASES)
    assert sum(1 for o in got if o[2] == 200) >= 10  # the lenient ones really are accepted
    assert got == expected


def _limits(api: Api) -> dict:
    world = api.world()
    run, name = world["run"], world["name"]
    out = {}
    for n in (8000, 8001, 20000):
        out[f"tag{n}"] = api.post("runs/set-tag", {"run_id": run, "key": f"t{n}", "value": "x" * n}).status_code
    for n in (6000, 6001):
        out[f"param{n}"] = api.post("runs/log-parameter", {"run_id": run, "key": f"p{n}", "value": "y" * n}).status_code
    out["batch"] = api.post("runs/log-batch", {"run_id": run, "params": [{"key": "bp", "value": "z" * 7000}],
                                               "tags": [{"key": "bt", "value": "z" * 9000}]}).status_code
    data = api.get("runs/get", run_id=run).json()["run"]["data"]
    out["stored_tags"] = {t["key"]: len(t["value"]) for t in data["tags"] if not t["key"].startswith("mlflow.")}
    out["stored_params"] = {p["key"]: len(p["value"]) for p in data["params"]}
    for kind, path, body, n in (
        ("exp", "experiments/set-experiment-tag", {"experiment_id": world["exp"]}, 20000),
        ("rm", "registered-models/set-tag", {"name": name}, 100000),
    ):
        for size in (n, n + 1):
            r = api.post(path, {**body, "key": f"k{size}", "value": "v" * size})
            out[f"{kind}{size}"] = (r.status_code, r.json().get("message"))
    api.ok("model-versions/create", {"name": name, "source": "s3://b/x"})
    r = api.post("model-versions/set-tag", {"name": name, "version": "1", "key": "k", "value": "v" * 100001})
    out["mv100001"] = (r.status_code, r.json().get("message"))
    return out


def test_limits_as_reference(reference, ours):
    expected, got = _limits(Api(reference)), _limits(ours)
    assert got["stored_tags"]["t8001"] == 8000 and got["stored_params"]["p6001"] == 6000
    assert got["exp20001"][0] == 400 and got["rm100001"][0] == 400
    assert got == expected


def _wording(api: Api) -> list:
    world = api.world()
    run = world["run"]
    cases = [
        ("runs/set-tag", {"run_id": run, "key": "k" * 251, "value": "x"}),
        ("runs/log-parameter", {"run_id": run, "key": "k" * 251, "value": "x"}),
        ("runs/set-tag", {"run_id": run, "value": "a"}),
        ("runs/set-tag", {"run_id": run, "key": "novalue"}),
        ("runs/log-metric", {"run_id": run, "key": "m", "value": "abc", "timestamp": 1}),
        ("runs/log-metric", {"run_id": run, "key": "m", "value": 1, "timestamp": "x"}),
        ("runs/log-metric", {"run_id": run, "key": "m", "timestamp": 1}),
        ("experiments/create", {}),
        ("experiments/create", {"name": 5}),
        ("experiments/create", {"name": ["a", "b"]}),
        ("registered-models/create", {}),
        ("model-versions/create", {"name": world["name"]}),
        ("experiments/set-experiment-tag", {"experiment_id": world["exp"], "key": "k" * 251, "value": "v"}),
    ]
    out = []
    for path, body in cases:
        r = api.post(path, body)
        out.append((path, r.status_code, r.json().get("error_code"), r.json().get("message")))
    tags = {t["key"]: t["value"] for t in api.get("runs/get", run_id=run).json()["run"]["data"]["tags"]}
    out.append(("stored", tags.get("novalue")))
    return out


def test_validation_wording_as_reference(reference, ours):
    expected, got = _wording(Api(reference)), _wording(ours)
    assert any("Missing value for required parameter 'name'" in str(o[-1]) for o in got)
    assert got == expected


def _model_io(api: Api) -> dict:
    world = api.world()
    run, model = world["run"], world["model"]
    models = [{"model_id": model}, {"model_id": model}, {"model_id": "m-0123456789abcdef0123456789abcdef"},
              {"model_id": "nonsense"}]
    api.ok("runs/log-inputs", {"run_id": run, "models": models})
    got = api.get("runs/get", run_id=run).json()["run"]
    ids = [m["model_id"].replace(model, "{model}") for m in got["inputs"].get("model_inputs", [])]
    lm = api.post("logged-models", {"experiment_id": world["exp"], "name": "m2", "source_run_id": "runinnowhere"})
    # A version registered from a logged model: the server records it on the model's tag.
    api.ok("model-versions/create", {"name": world["name"], "source": f"models:/{model}", "model_id": model})
    info = api.get(f"logged-models/{model}").json()["model"]["info"]
    tags = {t["key"]: t["value"] for t in info.get("tags", [])}
    versions = [{**v, "name": "{name}"} for v in json.loads(tags["mlflow.modelVersions"])]
    return {"model_inputs": sorted(ids), "lm_status": lm.status_code,
            "lm_source_run": lm.json()["model"]["info"].get("source_run_id"), "versions": versions}


def test_model_inputs_logged_model_run_and_version_tag_as_reference(reference, ours):
    expected, got = _model_io(Api(reference)), _model_io(ours)
    assert got["model_inputs"] == sorted(["{model}", "m-0123456789abcdef0123456789abcdef", "nonsense"])
    assert got["versions"] == [{"name": "{name}", "version": 1}]
    assert got == expected


def test_legacy_artifact_endpoints(forge, ours):
    world = ours.world()
    run, root, name = world["run"], world["root"], world["name"]
    base = ours.base
    for path, data in (("dir/a.txt", b"hello"), ("b.txt", b"top")):
        key = root.split(":/", 1)[1].lstrip("/")
        r = ours.session.put(f"{base}/api/2.0/mlflow-artifacts/artifacts/{key}/{path}", data=data)
        assert r.status_code == 200, r.text
    listed = ours.get("artifacts/list", run_id=run).json()
    assert listed == {"root_uri": root, "files": [{"path": "b.txt", "is_dir": False, "file_size": 3},
                                                  {"path": "dir", "is_dir": True}]}
    assert ours.get("artifacts/list", run_id=run, path="dir").json()["files"] == [
        {"path": "dir/a.txt", "is_dir": False, "file_size": 5}]
    assert ours.session.get(f"{base}/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": run}).json() == listed
    assert ours.get("artifacts/list", run_id=run, path="../x").status_code == 400
    assert ours.get("artifacts/list", run_id="f" * 32).status_code == 404
    got = ours.session.get(f"{base}/get-artifact", params={"run_id": run, "path": "dir/a.txt"})
    assert (got.status_code, got.content) == (200, b"hello")
    assert ours.session.get(f"{base}/get-artifact", params={"run_id": run, "path": "dir"}).json()["error_code"] == \
        "INVALID_PARAMETER_VALUE"
    assert ours.session.get(f"{base}/get-artifact", params={"run_id": run, "path": "nope"}).status_code == 404
    ours.ok("model-versions/create", {"name": name, "source": f"{root}/dir", "run_id": run})
    ours.ok("model-versions/create", {"name": name, "source": "s3://b/x"})
    got = ours.session.get(f"{base}/model-versions/get-artifact", params={"name": name, "version": "1", "path": "a.txt"})
    assert (got.status_code, got.content) == (200, b"hello")
    elsewhere = ours.session.get(f"{base}/model-versions/get-artifact", params={"name": name, "version": "2", "path": "a.txt"})
    assert elsewhere.status_code == 404 and elsewhere.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # Without credentials: 401, as the rest of the API.
    assert requests.get(f"{base}/get-artifact", params={"run_id": run, "path": "b.txt"}).status_code == 401


def test_reference_to_another_projects_run_exposes_nothing(forge):
    a = Api(forge.tracking_uri(new_project(forge)), forge.owner_token)
    b_id = new_project(forge)
    b = Api(forge.tracking_uri(b_id), forge.owner_token)
    wa, wb = a.world(), b.world()
    key = wa["root"].split(":/", 1)[1].lstrip("/")
    assert a.session.put(f"{a.base}/api/2.0/mlflow-artifacts/artifacts/{key}/model/MLmodel", data=b"secret").ok
    # As MLflow: runs:/ with a matching run_id is stored as given, even for a run not here...
    mv = b.ok("model-versions/create", {"name": wb["name"], "source": f"runs:/{wa['run']}/model", "run_id": wa["run"]})
    assert mv["model_version"]["source"] == f"runs:/{wa['run']}/model"
    # ...but no file of project A is reachable through it.
    assert b.get("model-versions/get-download-uri", name=wb["name"], version="1").json()["artifact_uri"] == \
        f"runs:/{wa['run']}/model"
    r = b.session.get(f"{b.base}/model-versions/get-artifact", params={"name": wb["name"], "version": "1", "path": "MLmodel"})
    assert r.status_code == 404 and b"secret" not in r.content
    packages = b.session.get(f"{forge.base_url}/api/v4/projects/{b_id}/packages")
    assert packages.status_code == 200 and packages.json() == []
    # A's artifact URI with A's run id names no run of B: refused, as a run MLflow cannot find.
    r = b.post("model-versions/create", {"name": wb["name"], "source": f"{wa['root']}/model", "run_id": wa["run"]})
    assert r.status_code == 400 and "must identify the resource" in r.json()["message"]
    # A logged model of B may name A's run as its source run: stored, and B's run pages do not list it in A.
    lm = b.ok("logged-models", {"experiment_id": wb["exp"], "name": "x", "source_run_id": wa["run"]})["model"]["info"]
    assert lm["source_run_id"] == wa["run"]
    assert a.get("runs/get", run_id=wa["run"]).json()["run"]["outputs"] == {"model_outputs": []}
