"""MLflow 3 logged models through the unmodified client against the live forge
(SQLite and PostgreSQL): log_model and loading it back, the logged-models API
(create, get, finalize, tags, params, metrics, search, delete) and access rules."""
from __future__ import annotations

import uuid

import mlflow
import numpy as np
import pytest
import requests
from mlflow.entities import LoggedModelStatus, Metric
from mlflow.exceptions import MlflowException


def _name(prefix="lm"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _api(forge, project=1):
    return forge.tracking_uri(project) + "/api/2.0/mlflow/"


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tiny_model():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return LogisticRegression().fit(X, y), X


def test_sklearn_log_model_and_load_back(forge, mlflow_client, tiny_model):
    model, X = tiny_model
    mlflow.set_experiment(_name("exp"))
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", 0.9, step=0)
        info = mlflow.sklearn.log_model(model, name="model")
    run_id = run.info.run_id
    assert info.model_uri == f"models:/{info.model_id}"

    logged = mlflow_client.get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run_id and logged.name == "model"
    assert logged.artifact_location.startswith("mlflow-artifacts:/ml_experiment_")
    # The run's metrics at that step were copied onto the model, linked to the run.
    assert [(m.key, m.value, m.run_id, m.model_id) for m in logged.metrics] == [("accuracy", 0.9, run_id, info.model_id)]
    outputs = mlflow_client.get_run(run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]

    expected = model.predict(X)
    assert np.array_equal(mlflow.pyfunc.load_model(info.model_uri).predict(X), expected)
    assert np.array_equal(mlflow.sklearn.load_model(f"runs:/{run_id}/model").predict(X), expected)
    names = {a.path for a in mlflow_client.list_artifacts(run_id, "model")}
    assert "model/MLmodel" in names

    # The files are in the package registry: package ml_experiment_<exp>, version <model id>.
    exp_iid = logged.experiment_id
    r = requests.get(
        f"{forge.base_url}/api/v4/projects/1/packages",
        params={"package_name": f"ml_experiment_{exp_iid}"},
        headers=_auth(forge.owner_token),
    )
    assert r.status_code == 200
    assert info.model_id in {p["version"] for p in r.json()}


def test_logged_model_api_round_trip(mlflow_client):
    exp_id = mlflow_client.create_experiment(_name("exp"))
    run_id = mlflow_client.create_run(exp_id).info.run_id
    created = mlflow_client.create_logged_model(
        exp_id, name="clf", source_run_id=run_id, tags={"team": "a"}, params={"lr": "0.1"}, model_type="sklearn"
    )
    model_id = created.model_id
    assert model_id.startswith("m-") and created.status == LoggedModelStatus.PENDING
    assert created.tags == {"team": "a"} and created.params == {"lr": "0.1"} and created.model_type == "sklearn"

    mlflow_client.log_model_params(model_id, {"depth": "3"})
    mlflow_client.set_logged_model_tags(model_id, {"team": "b", "stage": "dev"})
    mlflow_client.delete_logged_model_tag(model_id, "stage")
    with pytest.raises(MlflowException) as err:
        mlflow_client.delete_logged_model_tag(model_id, "stage")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    mlflow_client.log_metric(run_id, "loss", 0.25, step=2, model_id=model_id, dataset_name="val", dataset_digest="d1")
    finalized = mlflow_client.finalize_logged_model(model_id, LoggedModelStatus.READY)
    assert finalized.status == LoggedModelStatus.READY

    fetched = mlflow_client.get_logged_model(model_id)
    assert fetched.params == {"lr": "0.1", "depth": "3"} and fetched.tags == {"team": "b"}
    [metric] = fetched.metrics
    assert (metric.key, metric.value, metric.step, metric.dataset_name, metric.dataset_digest) == ("loss", 0.25, 2, "val", "d1")
    assert mlflow_client.get_run(run_id).data.metrics["loss"] == 0.25  # the run keeps it too

    mlflow_client.delete_logged_model(model_id)
    with pytest.raises(MlflowException) as err:
        mlflow_client.get_logged_model(model_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow_client.search_logged_models([exp_id]) == []


def test_search_logged_models(mlflow_client):
    exp_id = mlflow_client.create_experiment(_name("exp"))
    other_exp = mlflow_client.create_experiment(_name("exp"))
    run_id = mlflow_client.create_run(exp_id).info.run_id
    ids = {}
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        m = mlflow_client.create_logged_model(exp_id, name=name, params={"i": str(i)}, tags={"kind": "even" if i % 2 == 0 else "odd"})
        ids[name] = m.model_id
        mlflow_client.log_batch(run_id, metrics=[Metric("acc", 0.5 + i / 10, 1000 + i, 0, model_id=m.model_id)])
    mlflow_client.finalize_logged_model(ids["beta"], LoggedModelStatus.READY)
    mlflow_client.create_logged_model(other_exp, name="alpha")

    def names(**kwargs):
        return [m.name for m in mlflow_client.search_logged_models([exp_id], **kwargs)]

    assert names() == ["gamma", "beta", "alpha"]  # newest first
    assert names(filter_string="name = 'beta'") == ["beta"]
    assert names(filter_string="name LIKE 'a%'") == ["alpha"]
    assert names(filter_string="tags.kind = 'even'", order_by=[{"field_name": "name"}]) == ["alpha", "gamma"]
    assert names(filter_string="params.i != '1' AND metrics.acc > 0.55") == ["gamma"]
    assert names(filter_string="status = 'READY'") == ["beta"]
    assert names(order_by=[{"field_name": "metrics.acc", "ascending": False}]) == ["gamma", "beta", "alpha"]
    assert names(datasets=[{"dataset_name": "none"}]) == []
    both = mlflow_client.search_logged_models([exp_id, other_exp], filter_string="name = 'alpha'")
    assert len(both) == 2

    first = mlflow_client.search_logged_models([exp_id], max_results=2, order_by=[{"field_name": "name"}])
    assert [m.name for m in first] == ["alpha", "beta"] and first.token
    second = mlflow_client.search_logged_models([exp_id], max_results=2, order_by=[{"field_name": "name"}], page_token=first.token)
    assert [m.name for m in second] == ["gamma"] and not second.token

    with pytest.raises(MlflowException) as err:
        mlflow_client.search_logged_models([exp_id], filter_string="nosuch = 'x'")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_outputs_bad_input_and_access(forge, mlflow_client):
    exp_id = mlflow_client.create_experiment(_name("exp"))
    run_id = mlflow_client.create_run(exp_id).info.run_id
    model_id = mlflow_client.create_logged_model(exp_id, name="m").model_id
    owner, outsider = _auth(forge.owner_token), _auth(forge.outsider_token)
    api = _api(forge)

    r = requests.post(api + "runs/outputs", json={"run_id": run_id, "models": [{"model_id": model_id, "step": 3}]}, headers=owner)
    assert r.status_code == 200
    assert [(o.model_id, o.step) for o in mlflow_client.get_run(run_id).outputs.model_outputs] == [(model_id, 3)]

    bad = [
        ("logged-models", {"experiment_id": exp_id, "name": "a/b"}),
        ("logged-models", {"experiment_id": "999999"}),
        ("logged-models/search", {"experiment_ids": [exp_id], "filter": "metrics.acc > 'x'"}),
        ("logged-models/search", {"experiment_ids": [exp_id], "order_by": [{"field_name": "params.x"}]}),
        ("logged-models/search", {"experiment_ids": [exp_id], "page_token": "garbage"}),
        ("logged-models/search", {}),
    ]
    for path, body in bad:
        r = requests.post(api + path, json=body, headers=owner)
        assert r.status_code in (400, 404), (path, body, r.text)
        assert r.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    r = requests.patch(api + f"logged-models/{model_id}", json={"model_id": model_id, "status": "BOGUS"}, headers=owner)
    assert r.status_code == 400
    r = requests.get(api + "logged-models/m-" + "0" * 32, headers=owner)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    # Public project: an outsider reads, but cannot write.
    r = requests.get(api + f"logged-models/{model_id}", headers=outsider)
    assert r.status_code == 200 and r.json()["model"]["info"]["model_id"] == model_id
    r = requests.patch(api + f"logged-models/{model_id}/tags", json={"tags": [{"key": "k", "value": "v"}]}, headers=outsider)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    # Another project does not see the model at all.
    r = requests.get(_api(forge, 2) + f"logged-models/{model_id}", headers=owner)
    assert r.status_code == 404
    r = requests.post(_api(forge, 2) + "logged-models/search", json={"experiment_ids": [exp_id]}, headers=owner)
    assert r.status_code in (200, 404) and r.json().get("models", []) == []


def test_two_x_client_log_model_record(forge, mlflow_client):
    """``runs/log-model``, what a 2.x client sends after uploading a model: the run's
    ``mlflow.log-model.history`` tag gets the model's JSON appended."""
    import json

    exp_id = mlflow_client.create_experiment(_name("exp"))
    run_id = mlflow_client.create_run(exp_id).info.run_id
    url, headers = _api(forge) + "runs/log-model", _auth(forge.owner_token)
    for path in ("model", "model2"):
        doc = {"artifact_path": path, "flavors": {"python_function": {}}, "utc_time_created": "2024-01-01", "run_id": run_id}
        r = requests.post(url, json={"run_id": run_id, "model_json": json.dumps(doc)}, headers=headers)
        assert r.status_code == 200, r.text
    history = json.loads(mlflow_client.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["model", "model2"]
    r = requests.post(url, json={"run_id": run_id, "model_json": "{\"flavors\": {}}"}, headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
