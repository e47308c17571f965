"""Registered scorers (``/api/3.0/mlflow/scorers/*``) through the unmodified MLflow
client against the live forge on SQLite and PostgreSQL: register (a new version each
time), list, get, versions, delete, the online-scoring calls answered as MLflow's server
answers them without AI gateway endpoints, custom scorers refused as MLflow does,
project isolation and MLflow's error JSON."""
from __future__ import annotations

import json
import threading
import uuid

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.genai.scorers import Guidelines, ScorerSamplingConfig, delete_scorer, get_scorer, list_scorers, scorer


def _name(prefix="sc"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _v3(forge, project=1):
    return forge.tracking_uri(project) + "/api/3.0/mlflow/"


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _call(forge, method, path, project=1, token=None, **kwargs):
    return requests.request(method, _v3(forge, project) + path, headers=_auth(token or forge.owner_token),
                            timeout=60, **kwargs)


def test_client_register_list_get_delete(forge, mlflow_client):
    exp_id = mlflow.set_experiment(_name("exp")).experiment_id
    polite = Guidelines(name="polite", guidelines="Be polite").register(name="polite", experiment_id=exp_id)
    assert polite.name == "polite"
    Guidelines(name="polite", guidelines="Be very polite").register(name="polite", experiment_id=exp_id)
    Guidelines(name="brief", guidelines="Be brief").register(name="brief", experiment_id=exp_id)

    listed = list_scorers(experiment_id=exp_id)
    assert sorted(s.name for s in listed) == ["brief", "polite"]
    assert next(s for s in listed if s.name == "polite").guidelines == "Be very polite"  # the latest version
    assert get_scorer(name="polite", experiment_id=exp_id).guidelines == "Be very polite"
    assert get_scorer(name="polite", experiment_id=exp_id, version=1).guidelines == "Be polite"

    versions = _call(forge, "GET", "scorers/versions", params={"experiment_id": exp_id, "name": "polite"}).json()
    assert [s["scorer_version"] for s in versions["scorers"]] == [1, 2]
    assert {s["experiment_id"] for s in versions["scorers"]} == {int(exp_id)}
    assert len({s["scorer_id"] for s in versions["scorers"]}) == 1

    delete_scorer(name="polite", experiment_id=exp_id, version=1)
    with pytest.raises(MlflowException, match="version 1 not found"):
        get_scorer(name="polite", experiment_id=exp_id, version=1)
    delete_scorer(name="polite", experiment_id=exp_id, version="all")
    with pytest.raises(MlflowException, match="not found"):
        get_scorer(name="polite", experiment_id=exp_id)
    assert [s.name for s in list_scorers(experiment_id=exp_id)] == ["brief"]


def test_online_scoring_answers_as_mlflow_without_a_gateway(forge, mlflow_client):
    exp_id = mlflow.set_experiment(_name("exp")).experiment_id
    registered = Guidelines(name="polite", guidelines="Be polite").register(name="polite", experiment_id=exp_id)
    with pytest.raises(MlflowException, match="does not use a gateway model"):
        registered.start(name="polite", experiment_id=exp_id, sampling_config=ScorerSamplingConfig(sample_rate=0.5))
    entry = _call(forge, "GET", "scorers/get", params={"experiment_id": exp_id, "name": "polite"}).json()["scorer"]
    r = _call(forge, "GET", "scorers/online-configs", params={"scorer_ids": entry["scorer_id"]})
    assert r.status_code == 200 and r.json() == {"configs": []}
    r = _call(forge, "PUT", "scorers/online-config", json={"experiment_id": exp_id, "name": "polite", "sample_rate": 2})
    assert r.status_code == 400 and "between 0.0 and 1.0" in r.json()["message"]
    # A gateway model names an endpoint we do not have (as MLflow's server with none).
    judge = Guidelines(name="gw", guidelines="x", model="gateway:/nowhere")
    with pytest.raises(MlflowException, match="GatewayEndpoint not found"):
        judge.register(name="gw", experiment_id=exp_id)


def test_custom_scorers_are_refused_as_mlflow_does(forge, mlflow_client):
    exp_id = mlflow.set_experiment(_name("exp")).experiment_id

    @scorer
    def length(outputs) -> int:
        return len(str(outputs))

    with pytest.raises(MlflowException, match="Custom scorer registration"):
        length.register(name="length", experiment_id=exp_id)
    payload = {"experiment_id": exp_id, "name": "nested",
               "serialized_scorer": json.dumps({"ensemble_scorer_data": {"scorers": [{"call_source": "import os"}]}})}
    r = _call(forge, "POST", "scorers/register", json=payload)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_scorers_are_scoped_to_the_project(forge, mlflow_client):
    secret = requests.post(forge.tracking_uri(2) + "/api/2.0/mlflow/experiments/create", json={"name": _name("exp")},
                           headers=_auth(forge.owner_token), timeout=60).json()["experiment_id"]
    body = {"experiment_id": secret, "name": "hidden", "serialized_scorer": json.dumps({"name": "hidden"})}
    assert _call(forge, "POST", "scorers/register", project=2, json=body).status_code == 200
    # The same experiment id in project 1 is another experiment (or none).
    r = _call(forge, "GET", "scorers/get", params={"experiment_id": secret, "name": "hidden"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    listed = _call(forge, "GET", "scorers/list").json()["scorers"]
    assert "hidden" not in {s["scorer_name"] for s in listed}
    assert _call(forge, "GET", "scorers/list", project=2, token=forge.outsider_token).status_code == 404
    r = _call(forge, "POST", "scorers/register", token=forge.outsider_token,
              json={"experiment_id": "0", "name": "x", "serialized_scorer": "{}"})
    assert r.status_code == 403


@pytest.mark.parametrize("method, path, payload", [
    ("POST", "scorers/register", {"experiment_id": "0", "name": "x"}),
    ("POST", "scorers/register", {"experiment_id": "0", "name": "x", "serialized_scorer": "{not json"}),
    ("POST", "scorers/register", {"experiment_id": "0", "name": "  ", "serialized_scorer": "{}"}),
    ("POST", "scorers/register", {"experiment_id": "999999", "name": "x", "serialized_scorer": "{}"}),
    ("POST", "scorers/register", {"name": "x", "serialized_scorer": "{}"}),
    ("GET", "scorers/get", {"experiment_id": "0", "name": "missing"}),
    ("GET", "scorers/get", {"experiment_id": "0", "name": "x", "version": "one"}),
    ("GET", "scorers/versions", {"experiment_id": "0"}),
    ("DELETE", "scorers/delete", {"experiment_id": "0", "name": "missing", "version": 3}),
    ("GET", "scorers/list", {"experiment_id": "0", "experiment_ids": ["0"]}),
    ("GET", "scorers/online-configs", {}),
    ("POST", "scorers/register", {"experiment_id": "0", "name": "nul\u0000", "serialized_scorer": "{}"}),
])
def test_bad_input_answers_mlflow_errors(forge, mlflow_client, method, path, payload):
    kwargs = {"params": payload} if method == "GET" else {"json": payload}
    r = _call(forge, method, path, **kwargs)
    assert r.status_code in (400, 404), r.text
    assert r.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST") and r.json()["message"]


def test_purging_an_experiment_removes_its_scorers_and_dataset_links(forge, mlflow_client):
    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import EvalDatasetExperiment, Scorer
    from gl_ml_tracking.services import lookups, trash
    from sqlalchemy import func, select

    exp_id = mlflow_client.create_experiment(_name("exp"))
    ds = _call(forge, "POST", "datasets/create", json={"name": _name("ds"), "experiment_ids": [exp_id]}).json()["dataset"]
    _call(forge, "POST", "scorers/register", json={"experiment_id": exp_id, "name": "gone", "serialized_scorer": "{}"})
    mlflow_client.delete_experiment(exp_id)
    with forge.app.app_context():
        session = get_state().session
        experiment = lookups.get_experiment(session, experiment_id=exp_id, project_id=str(forge.extra["seed"].project_ids["demo/mnist"]))
        pk = experiment.id
        trash.purge_experiment(session, experiment.project_id, experiment)
        session.commit()
        assert session.scalar(select(func.count()).select_from(Scorer).where(Scorer.experiment_pk == pk)) == 0
        assert session.scalar(select(func.count()).select_from(EvalDatasetExperiment)
                              .where(EvalDatasetExperiment.experiment_pk == pk)) == 0
    r = _call(forge, "GET", f"datasets/{ds['dataset_id']}/experiment-ids")
    assert r.status_code == 200 and r.json().get("experiment_ids", []) == []  # the dataset stays


def test_concurrent_registrations_get_distinct_versions(forge, mlflow_client):
    exp_id = mlflow_client.create_experiment(_name("exp"))
    start = threading.Barrier(4)
    results: list = []

    def register(n: int) -> None:
        body = {"experiment_id": exp_id, "name": "raced", "serialized_scorer": json.dumps({"n": n})}
        start.wait()
        for _attempt in range(20):
            r = _call(forge, "POST", "scorers/register", json=body)
            if r.status_code != 503:  # a busy database: retried, as the client does
                break
        results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=register, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in results] == [200] * 4, results
    assert sorted(body["version"] for _, body in results) == [1, 2, 3, 4]
    assert len({body["scorer_id"] for _, body in results}) == 1
