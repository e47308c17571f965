"""The unmodified MLflow client against the live forge: experiments, runs,
params, metrics, tags, batches, datasets and history, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import math
import uuid

import mlflow
import pytest
import requests
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException


def _name(prefix="exp"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_fluent_api_round_trip(mlflow_client):
    name = _name()
    experiment = mlflow.set_experiment(name)
    assert experiment.name == name and experiment.experiment_id.isdigit()
    with mlflow.start_run(run_name="train") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "algo": "tree"})
        mlflow.log_metric("loss", 0.5, step=0)
        mlflow.log_metrics({"loss": 0.25, "acc": 0.9}, step=1)
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"stage": "dev"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("child_metric", 1.0)
    fetched = mlflow_client.get_run(run.info.run_id)
    assert fetched.info.status == "FINISHED"
    assert fetched.info.run_name == "train"
    assert fetched.data.params == {"lr": "0.1", "depth": "3", "algo": "tree"}
    assert fetched.data.metrics == {"loss": 0.25, "acc": 0.9}
    assert fetched.data.tags["team"] == "vision" and fetched.data.tags["mlflow.runName"] == "train"
    child_run = mlflow_client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == run.info.run_id
    frame = mlflow.search_runs(experiment_ids=[experiment.experiment_id])
    assert len(frame) == 2
    assert set(frame["tags.mlflow.runName"]) == {"train", "child"}


def test_experiment_lifecycle(mlflow_client):
    name = _name()
    exp_id = mlflow_client.create_experiment(name, tags={"k": "v"})
    assert mlflow_client.get_experiment(exp_id).tags == {"k": "v"}
    assert mlflow_client.get_experiment_by_name(name).experiment_id == exp_id
    with pytest.raises(MlflowException) as dup:
        mlflow_client.create_experiment(name)
    assert dup.value.error_code == "RESOURCE_ALREADY_EXISTS"
    mlflow_client.set_experiment_tag(exp_id, "k", "v2")
    assert mlflow_client.get_experiment(exp_id).tags["k"] == "v2"
    mlflow_client.rename_experiment(exp_id, name + "-renamed")
    assert mlflow_client.get_experiment(exp_id).name == name + "-renamed"
    mlflow_client.delete_experiment(exp_id)
    assert mlflow_client.get_experiment(exp_id).lifecycle_stage == "deleted"
    active = [e.experiment_id for e in mlflow_client.search_experiments()]
    deleted = [e.experiment_id for e in mlflow_client.search_experiments(view_type=ViewType.DELETED_ONLY)]
    assert exp_id not in active and exp_id in deleted
    mlflow_client.restore_experiment(exp_id)
    assert mlflow_client.get_experiment(exp_id).lifecycle_stage == "active"
    assert mlflow_client.get_experiment_by_name("no-such-" + name) is None


def test_params_tags_metrics_semantics(mlflow_client):
    exp_id = mlflow_client.create_experiment(_name())
    run = mlflow_client.create_run(exp_id)
    run_id = run.info.run_id
    assert run.info.run_name  # a random readable name
    mlflow_client.log_param(run_id, "p", "1")
    mlflow_client.log_param(run_id, "p", "1")  # identical re-log is fine
    with pytest.raises(MlflowException) as err:
        mlflow_client.log_param(run_id, "p", "2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    mlflow_client.set_tag(run_id, "t", "a")
    mlflow_client.set_tag(run_id, "t", "b")  # tags overwrite
    mlflow_client.delete_tag(run_id, "t")
    with pytest.raises(MlflowException) as err:
        mlflow_client.delete_tag(run_id, "t")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # latest = highest step, not last written
    mlflow_client.log_metric(run_id, "m", 5.0, timestamp=1000, step=10)
    mlflow_client.log_metric(run_id, "m", 7.0, timestamp=2000, step=3)
    mlflow_client.log_metric(run_id, "nan", float("nan"), timestamp=1, step=0)
    mlflow_client.log_metric(run_id, "inf", float("inf"), timestamp=1, step=0)
    mlflow_client.log_metric(run_id, "ninf", float("-inf"), timestamp=1, step=0)
    data = mlflow_client.get_run(run_id).data
    assert data.metrics["m"] == 5.0
    assert math.isnan(data.metrics["nan"])
    assert data.metrics["inf"] == math.inf and data.metrics["ninf"] == -math.inf
    history = mlflow_client.get_metric_history(run_id, "m")
    assert sorted((m.step, m.value) for m in history) == [(3, 7.0), (10, 5.0)]
    mlflow_client.update_run(run_id, status="KILLED", name="renamed")
    info = mlflow_client.get_run(run_id).info
    assert info.status == "KILLED" and info.run_name == "renamed"
    assert mlflow_client.get_run(run_id).data.tags["mlflow.runName"] == "renamed"


def test_log_batch_is_atomic(mlflow_client):
    exp_id = mlflow_client.create_experiment(_name())
    run_id = mlflow_client.create_run(exp_id).info.run_id
    mlflow_client.log_batch(
        run_id,
        metrics=[Metric("b", float(i), 1000 + i, i) for i in range(1000)],
        params=[Param(f"p{i}", str(i)) for i in range(50)],
        tags=[RunTag(f"t{i}", str(i)) for i in range(50)],
    )
    data = mlflow_client.get_run(run_id).data
    assert data.metrics["b"] == 999.0 and len(data.params) == 50
    assert len(mlflow_client.get_metric_history(run_id, "b")) == 1000
    # A batch with a conflicting param applies nothing at all.
    with pytest.raises(MlflowException) as err:
        mlflow_client.log_batch(
            run_id, metrics=[Metric("never", 1.0, 1, 0)], params=[Param("p1", "changed")], tags=[RunTag("never", "x")]
        )
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    data = mlflow_client.get_run(run_id).data
    assert "never" not in data.metrics and "never" not in data.tags

def test_log_batch_limits_over_raw_http(forge, mlflow_client):
    # The client splits big batches itself, so the server's limits are checked over raw HTTP.
    exp_id = mlflow_client.create_experiment(_name())
    run_id = mlflow_client.create_run(exp_id).info.run_id
    url = forge.tracking_uri(1) + "/api/2.0/mlflow/runs/log-batch"
    headers = {"Authorization": f"Bearer {forge.owner_token}"}
    too_many = [{"key": "x", "value": 1.0, "timestamp": 1, "step": i} for i in range(1001)]
    r = requests.post(url, json={"run_id": run_id, "metrics": too_many}, headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    r = requests.post(url, json={"run_id": run_id, "params": params}, headers=headers)
    assert r.status_code == 400 and "101" in r.json()["message"]
    assert mlflow_client.get_run(run_id).data.params == {}


def test_delete_restore_run_and_writes_refused(mlflow_client):
    exp_id = mlflow_client.create_experiment(_name())
    run_id = mlflow_client.create_run(exp_id).info.run_id
    mlflow_client.delete_run(run_id)
    assert mlflow_client.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as err:
        mlflow_client.log_metric(run_id, "m", 1.0)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert mlflow_client.search_runs([exp_id]) == []
    assert len(mlflow_client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == 1
    mlflow_client.restore_run(run_id)
    mlflow_client.log_metric(run_id, "m", 1.0)
    assert mlflow_client.get_run(run_id).data.metrics["m"] == 1.0


def test_log_metric_writes_only_to_an_active_run_of_this_project(forge, mlflow_client):
    """log-metric finds the run, appends the point and keeps the latest value in as few
    statements as the database allows: every way it can refuse must write nothing."""
    exp_id = mlflow_client.create_experiment(_name())
    run_id = mlflow_client.create_run(exp_id).info.run_id
    headers = {"Authorization": f"Bearer {forge.owner_token}"}

    def log(tracking_uri, run, **point):
        body = json.dumps({"run_id": run, "key": "m", "value": 1.0, "timestamp": 5, "step": 0, **point})  # NaN as the client sends it
        return requests.post(tracking_uri + "/api/2.0/mlflow/runs/log-metric", data=body,
                             headers={**headers, "Content-Type": "application/json"})

    missing = log(forge.tracking_uri(1), uuid.uuid4().hex)
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    elsewhere = log(forge.tracking_uri(2), run_id)  # the owner's other project: not this run's
    assert elsewhere.status_code == 404 and elsewhere.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    mlflow_client.delete_run(run_id)
    deleted = log(forge.tracking_uri(1), run_id)
    assert deleted.status_code == 400 and "must be in the 'active' state" in deleted.json()["message"]
    mlflow_client.restore_run(run_id)
    assert mlflow_client.get_metric_history(run_id, "m") == []
    # The latest value: highest step, then timestamp, then value; NaN loses a tie.
    for value, timestamp, step in ((2.0, 5, 3), (float("nan"), 5, 3), (1.0, 9, 2), (1.5, 5, 3)):
        assert log(forge.tracking_uri(1), run_id.upper(), value=value, timestamp=timestamp, step=step).status_code == 200
    assert mlflow_client.get_run(run_id).data.metrics["m"] == 2.0
    assert log(forge.tracking_uri(1), run_id, value=0.5, timestamp=6, step=3).status_code == 200
    assert mlflow_client.get_run(run_id).data.metrics["m"] == 0.5
    history = mlflow_client.get_metric_history(run_id, "m")
    assert len(history) == 5 and sum(math.isnan(m.value) for m in history) == 1


def test_log_inputs_datasets(mlflow_client):
    import pandas as pd

    exp_id = mlflow_client.create_experiment(_name())
    mlflow.set_experiment(experiment_id=exp_id)
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]})
    dataset = mlflow.data.from_pandas(frame, name="train-data")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    inputs = mlflow_client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "train-data"
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"


def test_errors_are_mlflow_json(forge):
    headers = {"Authorization": f"Bearer {forge.owner_token}"}
    base = forge.tracking_uri(1)
    r = requests.post(base + "/api/2.0/mlflow/runs/create", data="{not json", headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.get(base + "/api/2.0/mlflow/runs/get", params={"run_id": "0" * 32}, headers=headers)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.get(base + "/api/2.0/mlflow/no/such/endpoint", headers=headers)
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    r = requests.post(base + "/api/2.0/mlflow/experiments/create", json={"name": "x" * 501}, headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_auth_and_project_scope(forge):
    base = forge.tracking_uri(1)
    private = forge.tracking_uri(2)
    owner = {"Authorization": f"Bearer {forge.owner_token}"}
    outsider = {"Authorization": f"Bearer {forge.outsider_token}"}
    url = "/api/2.0/mlflow/experiments/search"
    assert requests.post(base + url, json={}).status_code == 401
    assert requests.post(base + url, json={}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert requests.post(base + url, json={}, headers=outsider).status_code == 200  # public project: readable
    r = requests.post(base + "/api/2.0/mlflow/experiments/create", json={"name": _name()}, headers=outsider)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    hidden = requests.post(private + url, json={}, headers=outsider)
    missing = requests.post(forge.tracking_uri(999) + url, json={}, headers=outsider)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    # by URL-encoded full path
    assert requests.post(forge.tracking_uri("demo%2Fsecret") + url, json={}, headers=owner).status_code == 200
    # a run of project 1 is not reachable through project 2
    exp = requests.post(base + "/api/2.0/mlflow/experiments/create", json={"name": _name()}, headers=owner).json()
    run = requests.post(base + "/api/2.0/mlflow/runs/create", json={"experiment_id": exp["experiment_id"]}, headers=owner).json()
    r = requests.get(private + "/api/2.0/mlflow/runs/get", params={"run_id": run["run"]["info"]["run_id"]}, headers=owner)
    assert r.status_code == 404
