"""The model registry through the unmodified MLflow client against the live forge
(SQLite and PostgreSQL): registering logged models and run artifacts, loading
``models:/<name>/<version>`` and ``models:/<name>@<alias>``, the version's files as
package ``<name>``/``<version>``, metadata, search, access and project scope."""
from __future__ import annotations

import hashlib
import json
import uuid

import mlflow
import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException


def _name(prefix="rm"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _api(forge, project=1):
    return forge.tracking_uri(project) + "/api/2.0/mlflow/"


def _error_code(call):
    with pytest.raises(MlflowException) as err:
        call()
    return err.value.error_code


@pytest.fixture
def tiny_model():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 3))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    return LogisticRegression().fit(X, y), X


def test_register_logged_model_and_load_by_version_and_alias(forge, mlflow_client, tiny_model):
    model, X = tiny_model
    name = _name("clf")
    mlflow.set_experiment(_name("exp"))
    with mlflow.start_run() as run:
        first = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    assert str(first.registered_model_version) == "1"
    v1 = mlflow_client.get_model_version(name, "1")
    assert (v1.name, v1.version, v1.run_id, v1.source) == (name, "1", run.info.run_id, first.model_uri)
    # The run's path works too: the client finds the run's logged model named "model".
    v2 = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert v2.version == "2"
    # (The client's ModelVersion does not read model_id from JSON: check the wire.)
    r = requests.get(_api(forge) + "model-versions/get", params={"name": name, "version": "2"}, headers=_auth(forge.owner_token))
    assert r.json()["model_version"]["model_id"] == first.model_id

    expected = model.predict(X)
    assert np.array_equal(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X), expected)
    mlflow_client.set_registered_model_alias(name, "champion", "2")
    assert mlflow_client.get_model_version_by_alias(name, "champion").version == "2"
    assert np.array_equal(mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(X), expected)
    assert mlflow_client.get_registered_model(name).aliases == {"champion": "2"}
    assert mlflow_client.get_model_version(name, "2").aliases == ["champion"]

    logged = mlflow_client.get_logged_model(first.model_id)
    assert {"name": name, "version": "1"} in json.loads(logged.tags["mlflow.modelVersions"])
    assert mlflow_client.get_model_version_download_uri(name, "1") == logged.artifact_location

    # GitLab's convention: the version's files are package <model name>/<version>,
    # byte-identical to the logged model's.
    original = requests.get(
        forge.tracking_uri(1) + "/api/2.0/mlflow-artifacts/artifacts/"
        + logged.artifact_location[len("mlflow-artifacts:/"):] + "/MLmodel",
        headers=_auth(forge.owner_token),
    )
    assert original.status_code == 200
    package_file = requests.get(
        f"{forge.base_url}/api/v4/projects/1/packages/ml_models/{name}/1/MLmodel", headers=_auth(forge.owner_token)
    )
    assert package_file.status_code == 200
    assert hashlib.sha256(package_file.content).digest() == hashlib.sha256(original.content).digest()

    # Deleting a version removes its package but never the logged model's bytes.
    mlflow_client.delete_model_version(name, "1")
    assert requests.get(
        f"{forge.base_url}/api/v4/projects/1/packages/ml_models/{name}/1/MLmodel", headers=_auth(forge.owner_token)
    ).status_code == 404
    assert np.array_equal(mlflow.pyfunc.load_model(f"models:/{name}/2").predict(X), expected)
    v3 = mlflow_client.create_model_version(name, f"models:/{first.model_id}", model_id=first.model_id)
    assert v3.version == "3"  # numbers are never reused


def test_version_from_run_artifacts(forge, mlflow_client):
    exp_id = mlflow_client.create_experiment(_name("exp"))
    run_id = mlflow_client.create_run(exp_id).info.run_id
    mlflow_client.log_text(run_id, "flavors: {}\n", "model/MLmodel")
    name = _name("files")
    mlflow_client.create_registered_model(name)
    source = mlflow_client.get_run(run_id).info.artifact_uri + "/model"
    mv = mlflow_client.create_model_version(name, source, run_id=run_id)
    assert mv.version == "1" and mv.source == source and mv.run_id == run_id
    assert mlflow_client.get_model_version_download_uri(name, "1") == source
    r = requests.get(f"{forge.base_url}/api/v4/projects/1/packages/ml_models/{name}/1/MLmodel", headers=_auth(forge.owner_token))
    assert r.status_code == 200 and r.text == "flavors: {}\n"
    mv2 = mlflow_client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    assert mlflow_client.get_model_version_download_uri(name, mv2.version) == source

    # A version registered while its logged model is still uploading gets the files
    # when the model is finalized.
    pending = mlflow_client.create_logged_model(exp_id, name="late")
    late = mlflow_client.create_model_version(name, f"models:/{pending.model_id}", model_id=pending.model_id)
    package_url = f"{forge.base_url}/api/v4/projects/1/packages/ml_models/{name}/{late.version}/weights.bin"
    assert requests.get(package_url, headers=_auth(forge.owner_token)).status_code == 404
    location = pending.artifact_location[len("mlflow-artifacts:/"):]
    r = requests.put(forge.tracking_uri(1) + f"/api/2.0/mlflow-artifacts/artifacts/{location}/weights.bin",
                     data=b"\x00\x01weights", headers=_auth(forge.owner_token))
    assert r.status_code == 200
    mlflow_client.finalize_logged_model(pending.model_id, "READY")
    r = requests.get(package_url, headers=_auth(forge.owner_token))
    assert r.status_code == 200 and r.content == b"\x00\x01weights"

    for bad_source in ["/etc/passwd", "file:///etc/passwd", f"runs:/{'0' * 32}/model", "mlflow-artifacts:/ml_experiment_999999/1"]:
        assert _error_code(lambda: mlflow_client.create_model_version(name, bad_source)) == "INVALID_PARAMETER_VALUE"


@pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning")  # stages: old clients still send them
def test_registered_model_metadata_search_and_lifecycle(forge, mlflow_client):
    prefix = "cl" + uuid.uuid4().hex[:6]
    names = [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    for i, n in enumerate(names):
        mlflow_client.create_registered_model(n, tags={"team": "x" if i < 2 else "y"}, description=f"model {i}")
    assert _error_code(lambda: mlflow_client.create_registered_model(names[0])) == "RESOURCE_ALREADY_EXISTS"

    model = mlflow_client.get_registered_model(names[0])
    assert model.description == "model 0" and model.tags == {"team": "x"} and model.creation_timestamp > 0
    mlflow_client.update_registered_model(names[0], description="updated")
    mlflow_client.set_registered_model_tag(names[0], "k", "v")
    mlflow_client.delete_registered_model_tag(names[0], "team")
    model = mlflow_client.get_registered_model(names[0])
    assert model.description == "updated" and model.tags == {"k": "v"}

    def search(**kwargs):
        return [m.name for m in mlflow_client.search_registered_models(**kwargs)]

    assert search(filter_string=f"name LIKE '{prefix}%'") == names
    assert search(filter_string=f"name LIKE '{prefix.upper()}%'") == []  # LIKE is case-sensitive
    assert search(filter_string=f"name ILIKE '{prefix.upper()}%'") == names
    assert search(filter_string=f"name = '{names[1]}'") == [names[1]]
    assert search(filter_string=f"name LIKE '{prefix}%' AND tags.team = 'x'") == [names[1]]
    assert search(filter_string=f"name LIKE '{prefix}%'", order_by=["name DESC"]) == names[::-1]
    # names[0] was updated last; on a same-millisecond tie, name ASC still puts it first.
    assert search(filter_string=f"name LIKE '{prefix}%'", order_by=["last_updated_timestamp DESC"])[0] == names[0]
    page = mlflow_client.search_registered_models(filter_string=f"name LIKE '{prefix}%'", max_results=2)
    assert [m.name for m in page] == names[:2] and page.token
    rest = mlflow_client.search_registered_models(filter_string=f"name LIKE '{prefix}%'", max_results=2, page_token=page.token)
    assert [m.name for m in rest] == names[2:] and not rest.token
    assert _error_code(lambda: search(filter_string="bogus = 'x'")) == "INVALID_PARAMETER_VALUE"

    # Versions, stages, tags, aliases.
    exp_id = mlflow_client.create_experiment(_name("exp"))
    run_id = mlflow_client.create_run(exp_id).info.run_id
    mlflow_client.log_text(run_id, "x", "m/MLmodel")
    source = f"runs:/{run_id}/m"
    for _ in range(3):
        mlflow_client.create_model_version(names[2], source, run_id=run_id)
    staged = mlflow_client.transition_model_version_stage(names[2], "2", "Staging")
    assert staged.current_stage == "Staging"
    latest = mlflow_client.get_latest_versions(names[2], stages=["Staging"])
    assert [v.version for v in latest] == ["2"]
    assert sorted(v.version for v in mlflow_client.get_latest_versions(names[2])) == ["2", "3"]
    mlflow_client.update_model_version(names[2], "3", description="best")
    mlflow_client.set_model_version_tag(names[2], "3", "validated", "yes")
    mv = mlflow_client.get_model_version(names[2], "3")
    assert mv.description == "best" and mv.tags == {"validated": "yes"}
    mlflow_client.delete_model_version_tag(names[2], "3", "validated")
    assert mlflow_client.get_model_version(names[2], "3").tags == {}
    found = mlflow_client.search_model_versions(f"name = '{names[2]}'")
    assert sorted(v.version for v in found) == ["1", "2", "3"]
    assert [v.version for v in mlflow_client.search_model_versions(f"name = '{names[2]}'", order_by=["version_number ASC"])] == ["1", "2", "3"]
    assert len(mlflow_client.search_model_versions(f"run_id = '{run_id}'")) == 3
    mlflow_client.set_registered_model_alias(names[2], "prod", "1")
    mlflow_client.delete_registered_model_alias(names[2], "prod")
    assert _error_code(lambda: mlflow_client.get_model_version_by_alias(names[2], "prod")) == "INVALID_PARAMETER_VALUE"
    assert _error_code(lambda: mlflow_client.set_registered_model_alias(names[2], "latest", "1")) == "INVALID_PARAMETER_VALUE"
    assert mlflow_client.get_model_version_by_alias(names[2], "latest").version == "3"

    # Rename carries the versions; delete removes everything.
    renamed = names[2] + "-renamed"
    mlflow_client.rename_registered_model(names[2], renamed)
    assert _error_code(lambda: mlflow_client.get_registered_model(names[2])) == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow_client.get_model_version(renamed, "3").name == renamed
    packages = f"{forge.base_url}/api/v4/projects/1/packages/ml_models"
    assert requests.get(f"{packages}/{renamed}/3/MLmodel", headers=_auth(forge.owner_token)).text == "x"
    assert requests.get(f"{packages}/{names[2]}/3/MLmodel", headers=_auth(forge.owner_token)).status_code == 404
    assert _error_code(lambda: mlflow_client.rename_registered_model(renamed, names[0])) == "RESOURCE_ALREADY_EXISTS"
    mlflow_client.delete_registered_model(renamed)
    assert _error_code(lambda: mlflow_client.get_registered_model(renamed)) == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow_client.search_model_versions(f"name = '{renamed}'") == []
    assert requests.get(f"{packages}/{renamed}/3/MLmodel", headers=_auth(forge.owner_token)).status_code == 404


def test_registry_access_and_project_scope(forge, mlflow_client):
    name = _name("scoped")
    mlflow_client.create_registered_model(name)
    outsider, owner = _auth(forge.outsider_token), _auth(forge.owner_token)
    api, private = _api(forge, 1), _api(forge, 2)

    # A reader of the public project reads but cannot write.
    r = requests.get(api + "registered-models/get", params={"name": name}, headers=outsider)
    assert r.status_code == 200 and r.json()["registered_model"]["name"] == name
    r = requests.get(api + "registered-models/search", params={"filter": f"name = '{name}'"}, headers=outsider)
    assert [m["name"] for m in r.json()["registered_models"]] == [name]
    for method, path, body in [
        ("post", "registered-models/create", {"name": _name()}),
        ("patch", "registered-models/update", {"name": name, "description": "x"}),
        ("post", "registered-models/set-tag", {"name": name, "key": "k", "value": "v"}),
        ("delete", "registered-models/delete", {"name": name}),
        ("post", "model-versions/create", {"name": name, "source": "s3://bucket/model"}),
    ]:
        r = getattr(requests, method)(api + path, json=body, headers=outsider)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", path

    # The registry of project 1 is invisible from project 2, where the name is free.
    r = requests.get(private + "registered-models/get", params={"name": name}, headers=owner)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.post(private + "registered-models/create", json={"name": name}, headers=owner)
    assert r.status_code == 200
    r = requests.get(private + "registered-models/get", params={"name": name}, headers=outsider)
    assert r.status_code == 404  # private project: not even its existence

    # Bad input is MLflow-shaped JSON, never a 500.
    for method, path, body in [
        ("post", "registered-models/create", {"name": "a/b"}),
        ("post", "registered-models/create", {"name": ""}),
        ("get", "model-versions/get", {"name": name, "version": "x"}),
        ("post", "registered-models/alias", {"name": name, "alias": "bad alias", "version": "1"}),
        ("post", "model-versions/transition-stage", {"name": name, "version": "1", "stage": "Nowhere"}),
        ("get", "registered-models/search", {"max_results": "5000"}),
        ("get", "registered-models/search", {"page_token": "garbage"}),
        ("get", "model-versions/search", {"filter": "version_number > 'x'"}),
    ]:
        kwargs = {"params": body} if method == "get" else {"json": body}
        r = getattr(requests, method)(api + path, headers=owner, **kwargs)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (path, body, r.text)


def _post_concurrently(url, body, headers, n=6):
    from concurrent.futures import ThreadPoolExecutor

    def post(_):
        # Retry what the client would retry (503: a busy SQLite writer), nothing else.
        for _attempt in range(50):
            r = requests.post(url, json=body, headers=headers)
            if r.status_code != 503:
                return r
        return r

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(post, range(n)))


def test_concurrent_registration(forge):
    """Parallel jobs registering one model: one creates it, the others get
    RESOURCE_ALREADY_EXISTS (which mlflow.register_model tolerates), and every
    version gets its own number."""
    name, headers = _name("race"), _auth(forge.owner_token)
    created = _post_concurrently(_api(forge) + "registered-models/create", {"name": name}, headers)
    assert sorted(r.status_code for r in created) == [200] + [400] * 5
    assert {r.json()["error_code"] for r in created if r.status_code == 400} == {"RESOURCE_ALREADY_EXISTS"}
    versions = _post_concurrently(_api(forge) + "model-versions/create", {"name": name, "source": "s3://bucket/model"}, headers)
    assert [r.status_code for r in versions] == [200] * 6
    assert sorted(int(r.json()["model_version"]["version"]) for r in versions) == [1, 2, 3, 4, 5, 6]
