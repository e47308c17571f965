"""MLflow's own REST tracking cases (mlflow's ``tests/tracking/test_rest_tracking.py``),
rewritten against our live server with only the fixture changed (a fresh project per test,
the owner's token), on SQLite and PostgreSQL.

Deliberate per-project differences, named where they change an expectation:
* a fresh project has no empty ``Default`` experiment (MLflow's server makes one at start);
* the server chooses artifact locations (``mlflow-artifacts:/ml_experiment_<id>/<run iid>``),
  so a client's ``artifact_location`` and MLflow's local ``file://`` roots do not apply.
Left out: MLflow's web-UI-only ajax handlers (``get-history-bulk``, ``search-datasets``,
promptlab), unit tests of MLflow internals, and cases about local artifact roots (model versions
from local paths). MLflow 3's further cases are in ``test_mlflow_rest_cases_3x``;
docs/MLFLOW_REST_CASES.md lists every case of MLflow's file and where it went.
"""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunInputs, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import (MLFLOW_DATASET_CONTEXT, MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID,
                                      MLFLOW_PROJECT_ENTRY_POINT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE, MLFLOW_USER)
from mlflow.utils.time import get_current_time_millis

from tests.support.rest_cases import mlflow_client  # noqa: F401  (the fixture: a fresh project per test)




def _post(client: MlflowClient, path: str, payload) -> requests.Response:
    import os

    return requests.post(f"{client.tracking_uri}{path}", json=payload,
                         headers={"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"})


def _get(client: MlflowClient, path: str, params) -> requests.Response:
    import os

    return requests.get(f"{client.tracking_uri}{path}", params=params,
                        headers={"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"})


def _bad(client, path, payload, message):
    r = _post(client, path, payload)
    assert r.status_code == 400, r.text
    assert message in r.text, r.text


def _next_millisecond() -> None:
    now = get_current_time_millis()
    while get_current_time_millis() == now:
        pass


# -- experiments ---------------------------------------------------------------------
def test_create_get_search_experiment(mlflow_client):
    c = mlflow_client
    experiment_id = c.create_experiment("My Experiment", tags={"key1": "val1", "key2": "val2"})
    exp = c.get_experiment(experiment_id)
    assert exp.name == "My Experiment" and exp.tags == {"key1": "val1", "key2": "val2"}
    # (No Default experiment in a fresh project.)
    assert {e.name for e in c.search_experiments()} == {"My Experiment"}
    c.delete_experiment(experiment_id)
    assert {e.name for e in c.search_experiments()} == set()
    assert {e.name for e in c.search_experiments(view_type=ViewType.DELETED_ONLY)} == {"My Experiment"}
    assert {e.name for e in c.search_experiments(view_type=ViewType.ALL)} == {"My Experiment"}
    c.create_experiment("Other")
    first = c.search_experiments(max_results=1, view_type=ViewType.ALL)
    second = c.search_experiments(max_results=1, view_type=ViewType.ALL, page_token=first.token)
    assert len(first) == len(second) == 1
    assert {e.name for e in first} | {e.name for e in second} == {"Other", "My Experiment"}


def test_create_experiment_validation(mlflow_client):
    path = "/api/2.0/mlflow/experiments/create"
    _bad(mlflow_client, path, {"name": 123}, "Invalid value 123 for parameter 'name'")
    _bad(mlflow_client, path, {}, "Missing value for required parameter 'name'")
    _bad(mlflow_client, path, {"name": "experiment name", "artifact_location": 9.0,
                               "tags": [{"key": "key", "value": "value"}]},
         "Invalid value 9.0 for parameter 'artifact_location'")
    _bad(mlflow_client, path, {"name": "experiment name", "artifact_location": "my_location", "tags": "5"},
         "Invalid value \\\"5\\\" for parameter 'tags'")


def test_delete_restore_experiment(mlflow_client):
    experiment_id = mlflow_client.create_experiment("Deleterious")
    assert mlflow_client.get_experiment(experiment_id).lifecycle_stage == "active"
    mlflow_client.delete_experiment(experiment_id)
    assert mlflow_client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    mlflow_client.restore_experiment(experiment_id)
    assert mlflow_client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_rename_experiment(mlflow_client):
    experiment_id = mlflow_client.create_experiment("BadName")
    mlflow_client.rename_experiment(experiment_id, "GoodName")
    assert mlflow_client.get_experiment(experiment_id).name == "GoodName"


def test_get_experiment_by_name(mlflow_client):
    experiment_id = mlflow_client.create_experiment("test_get_experiment_by_name")
    found = mlflow_client.get_experiment_by_name("test_get_experiment_by_name")
    assert (found.experiment_id, found.name) == (experiment_id, "test_get_experiment_by_name")
    assert mlflow_client.get_experiment_by_name("idontexist") is None


def test_get_experiment(mlflow_client):
    experiment_id = mlflow_client.create_experiment("test_get_experiment")
    got = mlflow_client.get_experiment(experiment_id)
    assert (got.experiment_id, got.name) == (experiment_id, "test_get_experiment")


def test_search_experiments(mlflow_client):
    c = mlflow_client
    ids = []
    for name, tags in (("a", {"key": "value"}), ("ab", {"key": "vaLue"}), ("Abc", None)):
        _next_millisecond()
        ids.append(c.create_experiment(name, tags=tags))

    def names(**kwargs):
        return [e.name for e in c.search_experiments(**kwargs)]

    # (MLflow's expectations without its Default experiment.)
    assert names(filter_string="attribute.name = 'a'") == ["a"]
    assert names(filter_string="attribute.name != 'a'") == ["Abc", "ab"]
    assert names(filter_string="name LIKE 'a%'") == ["ab", "a"]
    assert names(filter_string="tag.key = 'value'") == ["a"]
    assert names(filter_string="tag.key != 'value'") == ["ab"]
    assert names(filter_string="tag.key ILIKE '%alu%'") == ["ab", "a"]
    assert names(order_by=["name DESC"]) == ["ab", "a", "Abc"]
    page = c.search_experiments(max_results=2)
    assert [e.name for e in page] == ["Abc", "ab"]
    assert [e.name for e in c.search_experiments(page_token=page.token)] == ["a"]
    _next_millisecond()
    c.delete_experiment(ids[1])
    assert names(view_type=ViewType.ACTIVE_ONLY) == ["Abc", "a"]
    assert names(view_type=ViewType.DELETED_ONLY) == ["ab"]
    assert names(view_type=ViewType.ALL) == ["Abc", "ab", "a"]


def test_set_experiment_tag(mlflow_client):
    c = mlflow_client
    first = c.create_experiment("SetExperimentTagTest")
    c.set_experiment_tag(first, "dataset", "imagenet1K")
    assert c.get_experiment(first).tags["dataset"] == "imagenet1K"
    c.set_experiment_tag(first, "dataset", "birdbike")
    assert c.get_experiment(first).tags["dataset"] == "birdbike"
    second = c.create_experiment("SetExperimentTagTest2")
    assert len(c.get_experiment(second).tags) == 0
    c.set_experiment_tag(second, "dataset", "birds200")
    assert c.get_experiment(first).tags["dataset"] == "birdbike"
    assert c.get_experiment(second).tags["dataset"] == "birds200"
    c.set_experiment_tag(first, "multiline tag", "value2\nvalue2\nvalue2")
    assert c.get_experiment(first).tags["multiline tag"] == "value2\nvalue2\nvalue2"


def test_set_experiment_tag_with_empty_string_as_value(mlflow_client):
    experiment_id = mlflow_client.create_experiment("empty experiment tag")
    mlflow_client.set_experiment_tag(experiment_id, "tag_key", "")
    assert {"tag_key": ""}.items() <= mlflow_client.get_experiment(experiment_id).tags.items()


# -- runs ----------------------------------------------------------------------------
@pytest.mark.parametrize("parent_run_id_kwarg", [None, "my-parent-id"])
def test_create_run_all_args(mlflow_client, parent_run_id_kwarg):
    tags = {MLFLOW_USER: "username", MLFLOW_SOURCE_TYPE: "LOCAL", MLFLOW_SOURCE_NAME: "Hello",
            MLFLOW_PROJECT_ENTRY_POINT: "entry", MLFLOW_GIT_COMMIT: "abc", MLFLOW_PARENT_RUN_ID: "7",
            "my": "tag", "other": "tag"}
    experiment_id = mlflow_client.create_experiment(f"Run A Lot (parent_run_id={parent_run_id_kwarg})")
    created = mlflow_client.create_run(experiment_id, start_time=456, run_name="my name", tags=tags)
    run_id = created.info.run_id
    fetched = mlflow_client.get_run(run_id)
    for run in (created, fetched):
        assert run.info.run_id == run_id  # (MLflow 3's RunInfo has no run_uuid attribute)
        assert run.info.experiment_id == experiment_id
        assert run.info.user_id == "username"
        assert run.info.start_time == 456 and run.info.run_name == "my name"
        assert all(tag in run.data.tags for tag in tags)
        assert run.data.tags.get(MLFLOW_USER) == "username"
        assert [r.info for r in mlflow_client.search_runs([experiment_id])] == [run.info]


def test_create_run_defaults(mlflow_client):
    experiment_id = mlflow_client.create_experiment("Run A Little")
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    run = mlflow_client.get_run(run_id)
    assert (run.info.run_id, run.info.experiment_id, run.info.user_id) == (run_id, experiment_id, "unknown")


def test_log_metrics_params_tags(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("Oh My")).info.run_id
    c.log_metric(run_id, key="metric", value=123.456, timestamp=789, step=2)
    c.log_metric(run_id, key="nan_metric", value=float("nan"))
    c.log_metric(run_id, key="inf_metric", value=float("inf"))
    c.log_metric(run_id, key="-inf_metric", value=-float("inf"))
    c.log_metric(run_id, key="stepless-metric", value=987.654, timestamp=321)
    c.log_param(run_id, "param", "value")
    c.set_tag(run_id, "taggity", "do-dah")
    run = c.get_run(run_id)
    metrics = run.data.metrics
    assert metrics["metric"] == 123.456 and math.isnan(metrics["nan_metric"])
    assert metrics["inf_metric"] >= 1.7976931348623157e308 and metrics["-inf_metric"] <= -1.7976931348623157e308
    assert metrics["stepless-metric"] == 987.654
    assert run.data.params["param"] == "value" and run.data.tags["taggity"] == "do-dah"
    [m0] = c.get_metric_history(run_id, "metric")
    assert (m0.key, m0.value, m0.timestamp, m0.step) == ("metric", 123.456, 789, 2)
    [m1] = c.get_metric_history(run_id, "stepless-metric")
    assert (m1.key, m1.value, m1.timestamp, m1.step) == ("stepless-metric", 987.654, 321, 0)
    assert c.get_metric_history(run_id, "a_test_accuracy") == []


def test_log_metric_validation(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("metrics validation")).info.run_id
    path = "/api/2.0/mlflow/runs/log-metric"
    _bad(c, path, {"run_id": 31, "key": "metric", "value": 41, "timestamp": 59, "step": 26},
         "Invalid value 31 for parameter 'run_id' supplied")
    _bad(c, path, {"run_id": run_id, "key": 31, "value": 41, "timestamp": 59, "step": 26},
         "Invalid value 31 for parameter 'key' supplied")
    _bad(c, path, {"run_id": run_id, "key": "foo", "value": 31, "timestamp": 59, "step": "foo"},
         "Invalid value \\\"foo\\\" for parameter 'step' supplied")
    _bad(c, path, {"run_id": run_id, "key": "foo", "value": 31, "timestamp": "foo", "step": 41},
         "Invalid value \\\"foo\\\" for parameter 'timestamp' supplied")
    _bad(c, path, {"run_id": None, "key": "foo", "value": 31, "timestamp": 59, "step": 41},
         "Missing value for required parameter 'run_id'")
    _bad(c, path, {"run_id": run_id, "value": 31, "timestamp": 59, "step": 41},
         "Missing value for required parameter 'key'")
    _bad(c, path, {"run_id": run_id, "key": None, "value": 31, "timestamp": 59, "step": 41},
         "Missing value for required parameter 'key'")


def test_log_param_validation(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("params validation")).info.run_id
    path = "/api/2.0/mlflow/runs/log-parameter"
    _bad(c, path, {"run_id": 31, "key": "param", "value": 41}, "Invalid value 31 for parameter 'run_id' supplied")
    _bad(c, path, {"run_id": run_id, "key": 31, "value": 41}, "Invalid value 31 for parameter 'key' supplied")


def test_log_param_with_empty_string_as_value(mlflow_client):
    run_id = mlflow_client.create_run(mlflow_client.create_experiment("empty param")).info.run_id
    mlflow_client.log_param(run_id, "param_key", "")
    assert {"param_key": ""}.items() <= mlflow_client.get_run(run_id).data.params.items()


def test_set_tag_with_empty_string_as_value(mlflow_client):
    run_id = mlflow_client.create_run(mlflow_client.create_experiment("empty tag")).info.run_id
    mlflow_client.set_tag(run_id, "tag_key", "")
    assert {"tag_key": ""}.items() <= mlflow_client.get_run(run_id).data.tags.items()


def test_log_batch_containing_params_and_tags_with_empty_string_values(mlflow_client):
    run_id = mlflow_client.create_run(mlflow_client.create_experiment("empty batch values")).info.run_id
    mlflow_client.log_batch(run_id=run_id, params=[Param("param_key", "")], tags=[RunTag("tag_key", "")])
    run = mlflow_client.get_run(run_id)
    assert {"param_key": ""}.items() <= run.data.params.items()
    assert {"tag_key": ""}.items() <= run.data.tags.items()


def test_set_tag_validation(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("tags validation")).info.run_id
    path = "/api/2.0/mlflow/runs/set-tag"
    _bad(c, path, {"run_id": 31, "key": "tag", "value": 41}, "Invalid value 31 for parameter 'run_id' supplied")
    _bad(c, path, {"run_id": run_id, "key": "param", "value": 41}, "Invalid value 41 for parameter 'value' supplied")
    _bad(c, path, {"run_id": run_id, "value": "value"}, "Missing value for required parameter 'key'")
    assert _post(c, path, {"run_uuid": run_id, "key": "key", "value": "value"}).status_code == 200


def test_path_validation(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("tags validation")).info.run_id
    expected = {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"}
    for path, params in (("/api/2.0/mlflow/artifacts/list", {"run_id": run_id}), ("/get-artifact", {"run_id": run_id}),
                         # (MLflow's case writes "//model-versions/...": a Flask blueprint under a
                         # path prefix cannot keep a doubled slash; the single one is the endpoint.)
                         ("/model-versions/get-artifact", {"name": "model", "version": 1})):
        r = _get(c, path, {**params, "path": "../path"})
        assert (r.status_code, r.json()) == (400, expected), (path, r.text)


def test_delete_tag(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("DeleteTagExperiment")).info.run_id
    c.log_metric(run_id, key="metric", value=123.456, timestamp=789, step=2)
    c.log_param(run_id, "param", "value")
    c.set_tag(run_id, "taggity", "do-dah")
    assert c.get_run(run_id).data.tags["taggity"] == "do-dah"
    c.delete_tag(run_id, "taggity")
    assert "taggity" not in c.get_run(run_id).data.tags
    with pytest.raises(MlflowException, match=r"Run .+ not found"):
        c.delete_tag("fake_run_id", "taggity")
    with pytest.raises(MlflowException, match="No tag with name: fakeTag"):
        c.delete_tag(run_id, "fakeTag")
    c.delete_run(run_id)
    with pytest.raises(MlflowException, match=f"The run {run_id} must be in"):
        c.delete_tag(run_id, "taggity")


def test_log_batch(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("Batch em up")).info.run_id
    c.log_batch(run_id=run_id, metrics=[Metric("metric", 123.456, 789, 3)], params=[Param("param", "value")],
                tags=[RunTag("taggity", "do-dah")])
    run = c.get_run(run_id)
    assert (run.data.metrics["metric"], run.data.params["param"], run.data.tags["taggity"]) == (123.456, "value", "do-dah")
    [m] = c.get_metric_history(run_id, "metric")
    assert (m.key, m.value, m.timestamp, m.step) == ("metric", 123.456, 789, 3)


def test_log_batch_validation(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("log_batch validation")).info.run_id
    path = "/api/2.0/mlflow/runs/log-batch"
    for field in ("metrics", "params", "tags"):
        _bad(c, path, {"run_id": run_id, field: "foo"}, f"Invalid value \\\"foo\\\" for parameter '{field}' supplied")
    # (MLflow's case expects "Invalid value [...] for parameter 'metrics'"; the pinned 3.17.2 server
    # answers, as we do:)
    _bad(c, path, {"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5}]},
         "Missing value for required parameter 'metrics[0].timestamp'")
    ok = _post(c, path, {"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5, "timestamp": 123456789}]})
    assert ok.status_code == 200


@pytest.mark.parametrize("status", [None, "FAILED"])
def test_set_terminated(mlflow_client, status):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment(f"Terminator {status}")).info.run_id
    assert c.get_run(run_id).info.status == "RUNNING" and c.get_run(run_id).info.end_time is None
    if status:
        c.set_terminated(run_id, status)
    else:
        c.set_terminated(run_id)
    info = c.get_run(run_id).info
    assert info.status == (status or "FINISHED") and info.end_time <= get_current_time_millis()


def test_artifacts(mlflow_client, tmp_path):
    c = mlflow_client
    experiment_id = c.create_experiment("Art In Fact")
    location = c.get_experiment(experiment_id).artifact_location
    run = c.create_run(experiment_id)
    # (The server chooses locations: the run's artifacts live under its experiment's.)
    assert run.info.artifact_uri.startswith(location)
    run_id = run.info.run_id
    src = tmp_path / "test_artifacts_src"
    src.mkdir()
    (src / "my.file").write_text("Hello, World!")
    c.log_artifact(run_id, str(src / "my.file"), None)
    c.log_artifacts(run_id, str(src), "dir")
    assert {a.path for a in c.list_artifacts(run_id)} == {"my.file", "dir"}
    assert {a.path for a in c.list_artifacts(run_id, "dir")} == {"dir/my.file"}
    everything = download_artifacts(run_id=run_id, artifact_path=".", tracking_uri=c.tracking_uri, dst_path=str(tmp_path / "a"))
    assert open(f"{everything}/my.file").read() == open(f"{everything}/dir/my.file").read() == "Hello, World!"
    folder = download_artifacts(run_id=run_id, artifact_path="dir", tracking_uri=c.tracking_uri, dst_path=str(tmp_path / "b"))
    assert open(f"{folder}/my.file").read() == "Hello, World!"


def test_search_pagination(mlflow_client):
    c = mlflow_client
    experiment_id = c.create_experiment("search_pagination")
    runs = sorted(c.create_run(experiment_id, start_time=1).info.run_id for _ in range(10))
    result = c.search_runs([experiment_id], max_results=4, page_token=None)
    assert [r.info.run_id for r in result] == runs[0:4] and result.token is not None
    result = c.search_runs([experiment_id], max_results=4, page_token=result.token)
    assert [r.info.run_id for r in result] == runs[4:8] and result.token is not None
    result = c.search_runs([experiment_id], max_results=4, page_token=result.token)
    assert [r.info.run_id for r in result] == runs[8:] and result.token is None


def test_search_validation(mlflow_client):
    experiment_id = mlflow_client.create_experiment("search_validation")
    with pytest.raises(MlflowException, match=r"Invalid value 123456789 for parameter 'max_results' supplied"):
        mlflow_client.search_runs([experiment_id], max_results=123456789)


def test_update_run_name_without_changing_status(mlflow_client):
    c = mlflow_client
    run = c.create_run(c.create_experiment("update run name"))
    c.set_terminated(run.info.run_id, "FINISHED")
    c.update_run(run.info.run_id, name="name_abc")
    info = c.get_run(run.info.run_id).info
    assert (info.run_name, info.status) == ("name_abc", "FINISHED")


# -- metrics -------------------------------------------------------------------------
BULK_INTERVAL = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"


def test_get_metric_history_bulk_interval_rejects_invalid_requests(mlflow_client):
    cases = [
        ({"metric_key": "key"}, "Missing value for required parameter 'run_ids'."),
        ({"run_ids": [], "metric_key": "key"}, "Missing value for required parameter 'run_ids'."),
        ({"run_ids": [f"id_{i}" for i in range(1000)], "metric_key": "key"},
         "GetMetricHistoryBulkInterval request must specify at most 100 run_ids."),
        ({"run_ids": ["123"], "metric_key": "key", "max_results": 0}, "max_results must be between 1 and 2500"),
        ({"run_ids": ["123"], "metric_key": ""}, "Missing value for required parameter 'metric_key'"),
        ({"run_ids": ["123"], "max_results": 5}, "Missing value for required parameter 'metric_key'"),
        ({"run_ids": ["123"], "metric_key": "key", "start_step": 1, "end_step": 0, "max_results": 5},
         "end_step must be greater than start_step. "),
        ({"run_ids": ["123"], "metric_key": "key", "start_step": 1, "max_results": 5},
         "If either start step or end step are specified, both must be specified."),
    ]
    for params, message in cases:
        r = _get(mlflow_client, BULK_INTERVAL, params)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (params, r.text)
        assert message in r.json()["message"], (params, r.text)


def test_get_metric_history_bulk_interval_respects_max_results(mlflow_client):
    """MLflow 3's expectations (its 2.x case wanted steps 0,2,4,6,8,9; 3.x samples each run on
    its own to about max_results points, always keeping the last)."""
    c = mlflow_client
    experiment_id = c.create_experiment("get metric history bulk")
    run1 = c.create_run(experiment_id).info.run_id
    history = [{"key": "metricA", "timestamp": 1, "step": i, "value": 10.0} for i in range(10)]
    for m in history:
        c.log_metric(run1, **m)

    def metrics(**params):
        r = _get(c, BULK_INTERVAL, {"metric_key": "metricA", "max_results": 5, **params})
        assert r.status_code == 200, r.text
        return r.json().get("metrics")

    def at(run_id, rows, steps):
        return [{**m, "run_id": run_id} for m in rows if m["step"] in steps]

    assert metrics(run_ids=[run1]) == at(run1, history, {0, 2, 4, 6, 9})
    assert metrics(run_ids=[run1], start_step=0, end_step=4) == at(run1, history, range(5))
    run2 = c.create_run(experiment_id).info.run_id
    history2 = [{"key": "metricA", "timestamp": 1, "step": i, "value": 10.0} for i in range(20)]
    for m in history2:
        c.log_metric(run2, **m)
    assert metrics(run_ids=[run1, run2]) == at(run1, history, {0, 2, 4, 6, 9}) + at(run2, history2, {0, 4, 8, 12, 19})
    # Two values per step are sampled by row, not by step; the last (step 9, timestamp 2) stays.
    for i in range(10):
        c.log_metric(run1, key="metricA", timestamp=2, step=i, value=10.0)
    assert metrics(run_ids=[run1]) == [{"key": "metricA", "timestamp": t, "step": s, "value": 10.0, "run_id": run1}
                                      for t, s in ((1, 0), (1, 2), (1, 4), (1, 6), (2, 9))]


# -- model versions: sources ------------------------------------------------------------
def test_create_model_version_with_non_local_source_refuses_relative_paths(mlflow_client):
    """The refusals of MLflow's case (its acceptances of ``mlflow-artifacts`` paths outside
    the run and of ``mlflow-artifacts://host`` are refused by the pinned 3.17.2 server too:
    see test_registry_leniency)."""
    c = mlflow_client
    c.create_registered_model("model")
    run = c.create_run(experiment_id=c.create_experiment("test"))
    path = "/api/2.0/mlflow/model-versions/create"
    ok = _post(c, path, {"name": "model", "source": run.info.artifact_uri, "run_id": run.info.run_id})
    assert ok.status_code == 200, ok.text
    for source in ("mlflow-artifacts://host:9000/models/../../../", "http://host:9000/models/../../../",
                   "https://host/api/2.0/mlflow-artifacts/artifacts/../../../",
                   "s3a://my_bucket/api/2.0/mlflow-artifacts/artifacts/../../../",
                   "ftp://host:8888/api/2.0/mlflow-artifacts/artifacts/../../../",
                   "mlflow-artifacts://host:9000/models/..%2f..%2fartifacts",
                   "mlflow-artifacts://host:9000/models/artifact%00"):
        r = _post(c, path, {"name": "model", "source": source, "run_id": run.info.run_id})
        assert r.status_code == 400, (source, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


# -- inputs ------------------------------------------------------------------------------
def test_log_input(mlflow_client, tmp_path):
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.utils import mlflow_tags

    df = pd.DataFrame([[1, 2, 3], [1, 2, 3]], columns=["a", "b", "c"])
    path = tmp_path / "temp.csv"
    df.to_csv(path)
    # The experiment named explicitly: an earlier test module may have left the fluent API's
    # active experiment pointing at another project's experiment.
    experiment_id = mlflow_client.create_experiment("log input test")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_input(from_pandas(df, source=path), "train", {"foo": "baz"})
    [item] = mlflow_client.get_run(run.info.run_id).inputs.dataset_inputs
    ds = item.dataset
    assert (ds.name, ds.digest, ds.source_type) == ("dataset", "f0f3e026", "local")
    assert json.loads(ds.source) == {"uri": str(path)}
    assert json.loads(ds.schema) == {"mlflow_colspec": [{"name": n, "type": "long", "required": True} for n in "abc"]}
    assert json.loads(ds.profile) == {"num_rows": 2, "num_elements": 6}
    assert [(t.key, t.value) for t in item.tags] == [("foo", "baz"), (mlflow_tags.MLFLOW_DATASET_CONTEXT, "train")]


def test_log_inputs(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("log inputs test")).info.run_id
    dataset = Dataset(name="name1", digest="digest1", source_type="source_type1", source="source1")
    c.log_inputs(run_id, [DatasetInput(dataset=dataset, tags=[InputTag(key="tag1", value="value1")])])
    run = c.get_run(run_id)
    assert isinstance(run.inputs, RunInputs) and len(run.inputs.dataset_inputs) == 1
    item = run.inputs.dataset_inputs[0]
    assert isinstance(item, DatasetInput) and isinstance(item.dataset, Dataset)
    assert (item.dataset.name, item.dataset.digest, item.dataset.source_type, item.dataset.source) == \
        ("name1", "digest1", "source_type1", "source1")
    assert [(t.key, t.value) for t in item.tags] == [("tag1", "value1")]


def test_log_inputs_validation(mlflow_client):
    from mlflow.utils.proto_json_utils import message_to_json

    c = mlflow_client
    run_id = c.create_run(c.create_experiment("log inputs validation")).info.run_id
    dataset = Dataset(name="name1", digest="digest1", source_type="source_type1", source="source1")
    inputs = [message_to_json(DatasetInput(dataset=dataset, tags=[InputTag(key="tag1", value="value1")]).to_proto())]
    _bad(c, "/api/2.0/mlflow/runs/log-inputs", {"datasets": inputs}, "Missing value for required parameter 'run_id'")
    # (MLflow's case also expects 'datasets' to be required; MLflow 3 logs models as inputs too, and
    # the pinned 3.17.2 server answers 200 to a run_id alone, as we do.)
    assert _post(c, "/api/2.0/mlflow/runs/log-inputs", {"run_id": run_id}).status_code == 200


def test_log_inputs_dataset_context(mlflow_client):
    c = mlflow_client
    run_id = c.create_run(c.create_experiment("log inputs context")).info.run_id
    dataset = Dataset(name="name1", digest="digest1", source_type="source_type1", source="source1")
    c.log_inputs(run_id, [DatasetInput(dataset=dataset, tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value="training")])])
    [item] = c.get_run(run_id).inputs.dataset_inputs
    assert [(t.key, t.value) for t in item.tags] == [(MLFLOW_DATASET_CONTEXT, "training")]
