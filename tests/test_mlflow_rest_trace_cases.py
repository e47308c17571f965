"""MLflow's REST trace cases (the tracing part of mlflow's ``tests/tracking/test_rest_tracking.py``),
rewritten against our live server with the same fixture as ``test_mlflow_rest_cases`` (a fresh
project per test, the owner's token), on SQLite and PostgreSQL.

Adaptations, each also named where it happens:
* MLflow's cases were written for the 2.x trace API (``request_id``, ``TraceStatus``, the
  tracking client's ``start_trace``/``end_trace``); the pinned 3.17.2 client names the same calls
  ``trace_id``/``state``, and the v2 start/end requests are reached through its REST store's
  ``deprecated_start_trace_v2``/``deprecated_end_trace_v2`` (still what the server must answer).
* ``search_traces`` takes ``locations`` (``experiment_ids`` is deprecated in 3.x).
* the 3.x client exports traces asynchronously: ``mlflow.flush_trace_async_logging()`` after
  each ``end_trace`` (MLflow's suite turns async export off instead);
* no sleeps: a busy wait for the next millisecond separates timestamps.
* the MLflow 3 cases for linking traces to runs and assessments follow the same style.
"""
from __future__ import annotations

import json
import os

import mlflow
import pytest
import requests
from mlflow.entities import AssessmentSource, Feedback, TraceState
from mlflow.entities.trace_data import TraceData
from mlflow.entities.trace_status import TraceStatus
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracing.constant import TraceTagKey
from mlflow.utils.time import get_current_time_millis

from tests.test_mlflow_rest_cases import mlflow_client  # noqa: F401  (the fresh-project fixture)


def _store(client):
    # (3.x: the v2 start/end calls live on the REST store, no longer on the tracking client.)
    return client._tracking_client.store


def _user_tags(tags: dict) -> dict:
    return {k: v for k, v in tags.items() if not k.startswith("mlflow.")}


def _later_millisecond() -> None:
    now = get_current_time_millis()
    while get_current_time_millis() == now:
        pass


def _create_trace(client, experiment_id, name, status="OK"):
    span = client.start_trace(name=name, experiment_id=experiment_id)
    client.end_trace(trace_id=span.trace_id, status=status)
    mlflow.flush_trace_async_logging()  # (the 3.x client exports asynchronously by default)
    _later_millisecond()  # (instead of MLflow's time.sleep: distinct timestamps for ordering)
    return span.trace_id


def _exists(client, trace_id) -> bool:
    try:
        return client._tracking_client.store.get_trace_info(trace_id) is not None
    except (RestException, MlflowException) as e:
        if e.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return False
        raise


def _ids(traces):
    return [t.info.trace_id for t in traces]


def test_start_and_end_trace(mlflow_client):
    experiment_id = mlflow_client.create_experiment("start end trace")
    store = _store(mlflow_client)
    info = store.deprecated_start_trace_v2(
        experiment_id=experiment_id, timestamp_ms=1000,
        request_metadata={"meta1": "apple", "meta2": "grape"},
        tags={"tag1": "football", "tag2": "basketball"})
    assert info.request_id is not None and info.experiment_id == experiment_id
    assert (info.timestamp_ms, info.execution_time_ms, info.status) == (1000, 0, TraceStatus.IN_PROGRESS)
    assert info.request_metadata == {"meta1": "apple", "meta2": "grape"}
    assert _user_tags(info.tags) == {"tag1": "football", "tag2": "basketball"}

    info = store.deprecated_end_trace_v2(
        request_id=info.request_id, timestamp_ms=3000, status=TraceStatus.OK,
        request_metadata={"meta1": "orange", "meta3": "banana"},
        tags={"tag1": "soccer", "tag3": "tennis"})
    assert info.experiment_id == experiment_id
    assert (info.timestamp_ms, info.execution_time_ms, info.status) == (1000, 2000, TraceStatus.OK)
    assert info.request_metadata == {"meta1": "orange", "meta2": "grape", "meta3": "banana"}
    assert _user_tags(info.tags) == {"tag1": "soccer", "tag2": "basketball", "tag3": "tennis"}

    # (3.x: get_trace_info answers a V3 TraceInfo; compare it field by field with the v2 one.)
    got = store.get_trace_info(info.request_id)
    assert got.trace_id == info.request_id and got.experiment_id == experiment_id
    assert (got.request_time, got.execution_duration, got.state) == (1000, 2000, TraceState.OK)
    assert got.trace_metadata.items() >= info.request_metadata.items()
    assert _user_tags(got.tags) == _user_tags(info.tags)


def test_start_and_end_trace_non_string_name(mlflow_client):
    exp_id = mlflow_client.create_experiment("non-string trace")
    span = mlflow_client.start_trace(name=1234, experiment_id=exp_id)
    child = mlflow_client.start_span(name=None, trace_id=span.trace_id, parent_id=span.span_id)
    mlflow_client.end_span(trace_id=child.trace_id, span_id=child.span_id, status="OK")
    mlflow_client.end_trace(trace_id=span.trace_id, status="OK")
    mlflow.flush_trace_async_logging()  # (the 3.x client exports asynchronously by default)

    traces = mlflow_client.search_traces(locations=[exp_id])
    assert len(traces) == 1
    trace = traces[0]
    assert trace.info.tags[TraceTagKey.TRACE_NAME] == "1234"
    assert trace.info.state == TraceState.OK
    assert len(trace.data.spans) == 2
    # (3.x: the client stringifies a non-string root name and names a nameless span "None"
    # before export; MLflow's 2.x case expected the raw 1234 / None back.)
    assert [str(s.name) for s in trace.data.spans] == ["1234", "None"]
    assert [s.status.status_code for s in trace.data.spans] == ["OK", "OK"]


def test_search_traces(mlflow_client):
    experiment_id = mlflow_client.create_experiment("search traces")
    id_1 = _create_trace(mlflow_client, experiment_id, "trace1")
    id_2 = _create_trace(mlflow_client, experiment_id, "trace2")
    id_3 = _create_trace(mlflow_client, experiment_id, "trace3", status="ERROR")

    traces = mlflow_client.search_traces(locations=[experiment_id])
    assert _ids(traces) == [id_3, id_2, id_1] and traces.token is None

    traces = mlflow_client.search_traces(locations=[experiment_id], filter_string="status = 'OK'",
                                         order_by=["timestamp ASC"])
    assert _ids(traces) == [id_1, id_2] and traces.token is None

    traces = mlflow_client.search_traces(locations=[experiment_id], max_results=2)
    assert _ids(traces) == [id_3, id_2] and traces.token is not None
    traces = mlflow_client.search_traces(locations=[experiment_id], page_token=traces.token)
    assert _ids(traces) == [id_1] and traces.token is None


def test_delete_traces(mlflow_client):
    experiment_id = mlflow_client.create_experiment("delete traces")

    # Case 1: everything under the experiment.
    id_1 = _create_trace(mlflow_client, experiment_id, "trace1")
    id_2 = _create_trace(mlflow_client, experiment_id, "trace2")
    assert _exists(mlflow_client, id_1) and _exists(mlflow_client, id_2)
    assert mlflow_client.delete_traces(experiment_id, max_timestamp_millis=int(1e15)) == 2
    assert not _exists(mlflow_client, id_1) and not _exists(mlflow_client, id_2)

    # Case 2: at most max_traces.
    id_1 = _create_trace(mlflow_client, experiment_id, "trace1")
    id_2 = _create_trace(mlflow_client, experiment_id, "trace2")
    assert mlflow_client.delete_traces(experiment_id, max_traces=1, max_timestamp_millis=int(1e15)) == 1
    # (MLflow left this commented out for its file store's random order; a SQL store deletes
    # the oldest first, so the check is on here.)
    assert not _exists(mlflow_client, id_1) and _exists(mlflow_client, id_2)
    mlflow_client.delete_traces(experiment_id, trace_ids=[id_2])

    # Case 3: explicit ids.
    id_1 = _create_trace(mlflow_client, experiment_id, "trace1")
    id_2 = _create_trace(mlflow_client, experiment_id, "trace2")
    assert mlflow_client.delete_traces(experiment_id, trace_ids=[id_1]) == 1
    assert not _exists(mlflow_client, id_1) and _exists(mlflow_client, id_2)


def test_set_and_delete_trace_tag(mlflow_client):
    experiment_id = mlflow_client.create_experiment("set delete tag")
    store = _store(mlflow_client)
    info = store.deprecated_start_trace_v2(experiment_id=experiment_id, timestamp_ms=1000,
                                           request_metadata={}, tags={"tag1": "red", "tag2": "blue"})
    mlflow_client.set_trace_tag(info.request_id, "tag1", "green")
    assert store.get_trace_info(info.request_id).tags["tag1"] == "green"
    mlflow_client.delete_trace_tag(info.request_id, "tag2")
    assert "tag2" not in store.get_trace_info(info.request_id).tags


def test_get_trace_artifact_handler(mlflow_client):
    experiment_id = mlflow_client.create_experiment("get trace artifact")
    span = mlflow_client.start_trace(name="test", experiment_id=experiment_id)
    span.set_attributes({"fruit": "apple"})
    mlflow_client.end_trace(trace_id=span.trace_id)
    mlflow.flush_trace_async_logging()  # (the 3.x client exports asynchronously by default)
    response = requests.get(
        f"{mlflow_client.tracking_uri}/ajax-api/2.0/mlflow/get-trace-artifact",
        # (3.x takes trace_id; the token is our per-project auth.)
        params={"request_id": span.trace_id},
        headers={"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=traces.json"
    trace_data = TraceData.from_dict(json.loads(response.text))
    assert trace_data.spans[0].to_dict() == span.to_dict()

    # (Ours: MLflow's error answers for a missing or unknown id, checked against 3.17.2.)
    for params, status, code in (({}, 400, "BAD_REQUEST"), ({"request_id": "tr-nope"}, 404, "RESOURCE_DOES_NOT_EXIST")):
        r = requests.get(f"{mlflow_client.tracking_uri}/ajax-api/2.0/mlflow/get-trace-artifact", params=params,
                         headers={"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"})
        assert (r.status_code, r.json()["error_code"]) == (status, code), r.text


# -- MLflow 3 cases: linking traces to runs, assessments -----------------------------------
def test_link_traces_to_run(mlflow_client):
    experiment_id = mlflow_client.create_experiment("link traces")
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    ids = [_create_trace(mlflow_client, experiment_id, f"t{i}") for i in range(2)]
    unlinked = _create_trace(mlflow_client, experiment_id, "other")
    mlflow_client.link_traces_to_run(ids, run_id)
    found = mlflow_client.search_traces(locations=[experiment_id], run_id=run_id)
    assert sorted(_ids(found)) == sorted(ids) and unlinked not in _ids(found)
    with pytest.raises(MlflowException):
        mlflow_client.link_traces_to_run(ids, "does-not-exist")


def test_create_get_update_delete_assessment(mlflow_client):
    experiment_id = mlflow_client.create_experiment("assessments")
    trace_id = _create_trace(mlflow_client, experiment_id, "judged")
    source = AssessmentSource(source_type="HUMAN", source_id="bob@example.com")
    created = mlflow.log_feedback(trace_id=trace_id, name="relevance", value=0.7, source=source,
                                  rationale="mostly on topic", metadata={"k": "v"})
    assert created.assessment_id and created.trace_id == trace_id
    got = mlflow.get_assessment(trace_id, created.assessment_id)
    assert (got.name, got.value, got.rationale, got.metadata) == ("relevance", 0.7, "mostly on topic", {"k": "v"})
    assert got.source.source_type == "HUMAN" and got.source.source_id == "bob@example.com"

    expectation = mlflow.log_expectation(trace_id=trace_id, name="answer", value={"text": "42"}, source=source)
    updated = mlflow.update_assessment(trace_id, created.assessment_id,
                                       Feedback(name="relevance", value=0.9, rationale="on topic"))
    assert (updated.value, updated.rationale) == (0.9, "on topic")
    assert updated.last_update_time_ms >= created.create_time_ms

    trace = mlflow_client.get_trace(trace_id)
    by_name = {a.name: a for a in trace.info.assessments}
    assert by_name["relevance"].value == 0.9 and by_name["answer"].value == {"text": "42"}

    mlflow.delete_assessment(trace_id, expectation.assessment_id)
    assert [a.name for a in mlflow_client.get_trace(trace_id).info.assessments] == ["relevance"]
    with pytest.raises(MlflowException):
        mlflow.get_assessment(trace_id, expectation.assessment_id)


def test_override_feedback_keeps_the_original(mlflow_client):
    experiment_id = mlflow_client.create_experiment("override")
    trace_id = _create_trace(mlflow_client, experiment_id, "judged")
    first = mlflow.log_feedback(trace_id=trace_id, name="correct", value=False,
                                source=AssessmentSource(source_type="LLM_JUDGE", source_id="judge"))
    second = mlflow.override_feedback(trace_id=trace_id, assessment_id=first.assessment_id, value=True,
                                      rationale="human says yes")
    assert second.overrides == first.assessment_id and second.value is True
    assert mlflow.get_assessment(trace_id, first.assessment_id).valid is False
    valid = [a for a in mlflow_client.get_trace(trace_id).info.assessments if a.valid is not False]
    assert [(a.name, a.value) for a in valid] == [("correct", True)]
