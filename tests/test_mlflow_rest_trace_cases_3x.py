"""MLflow 3's REST trace cases (the tracing part of mlflow's ``tests/tracking/test_rest_tracking.py``,
3.x) that ``test_mlflow_rest_trace_cases`` lacks, against our live server with the fixture of
``tests/support/rest_cases`` (a fresh project per test, the owner's token), SQLite and PostgreSQL.

Adaptations, each also named where it happens:
* a fresh project has no ``Default`` experiment: fluent traces go to an experiment set first;
* the 3.x client exports traces asynchronously: ``mlflow.flush_trace_async_logging()`` (or
  ``flush=True``) before reading, as MLflow's cases do;
* no sleeps: a busy wait for the next millisecond separates timestamps;
* MLflow's cases patch its exporter's logger with a mock to see warnings; here a real handler
  on that logger records them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math

import mlflow
import pytest
from mlflow.entities import SpanStatusCode, TraceState
from mlflow.entities.trace_status import TraceStatus
from mlflow.tracing.constant import TRACE_SCHEMA_VERSION_KEY

from tests.support.rest_cases import AGAINST_REFERENCE, call, get, mlflow_client, post  # noqa: F401

if AGAINST_REFERENCE:  # (the reference's module-scoped server, see tests/support/rest_cases)
    from tests.support.rest_cases import reference_url  # noqa: F401


def _user_keys(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("mlflow.")}


def _trace(client, experiment_id, name, status=TraceStatus.OK, tags=None) -> str:
    span = client.start_trace(name=name, experiment_id=experiment_id, tags=tags)
    client.end_trace(trace_id=span.trace_id, status=status)
    return span.trace_id


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_start_trace(mlflow_client):
    experiment_id = mlflow.set_experiment("start end trace").experiment_id
    exporter_log = logging.getLogger("mlflow.tracing.export.mlflow_v3")
    records = _Records()
    exporter_log.addHandler(records)
    try:
        with mlflow.start_span(name="test") as span:
            mlflow.update_current_trace(tags={"tag1": "football", "tag2": "basketball"},
                                        metadata={"meta1": "apple", "meta2": "grape"})
        trace = mlflow_client.get_trace(span.trace_id, flush=True)
    finally:
        exporter_log.removeHandler(records)
    assert (trace.info.trace_id, trace.info.experiment_id) == (span.trace_id, experiment_id)
    assert trace.info.request_time > 0 and trace.info.execution_duration is not None
    assert trace.info.state == TraceState.OK
    assert _user_keys(trace.info.trace_metadata) == {"meta1": "apple", "meta2": "grape"}
    assert trace.info.trace_metadata[TRACE_SCHEMA_VERSION_KEY] == "3"
    assert _user_keys(trace.info.tags) == {"tag1": "football", "tag2": "basketball"}
    assert not [m for m in records.messages if "Failed to log span to MLflow backend" in m]


def test_get_trace(mlflow_client):
    experiment_id = mlflow_client.create_experiment("get trace")
    trace_id = _trace(mlflow_client, experiment_id, "test")
    trace = mlflow_client.get_trace(trace_id, flush=True)
    assert (trace.info.trace_id, trace.info.experiment_id, trace.info.state) == (trace_id, experiment_id, TraceState.OK)
    [span] = trace.data.spans
    assert (span.name, span.status.status_code, span.status.description) == ("test", SpanStatusCode.OK, "")


def test_search_traces_match_text(mlflow_client):
    experiment_id = mlflow_client.create_experiment("search traces full text")

    def create(name, attributes):
        span = mlflow_client.start_trace(name=name, experiment_id=experiment_id)
        span.set_attributes(attributes)
        mlflow_client.end_trace(trace_id=span.trace_id, status=TraceStatus.OK)
        return span.trace_id

    id_1 = create("trace1", {"test": "value1"})
    id_2 = create("trace2", {"test": "value2"})
    id_3 = create("trace3", {"test3": "I like it"})
    traces = mlflow_client.search_traces(locations=[experiment_id], flush=True)
    assert len(traces) == 3 and traces.token is None

    def found(text):
        return {t.info.trace_id for t in mlflow_client.search_traces(
            locations=[experiment_id], filter_string=f"trace.text LIKE '%{text}%'")}

    assert found("trace") == {id_1, id_2, id_3}
    assert found("value") == {id_1, id_2}
    assert found("I like it") == {id_3}


def test_calculate_trace_filter_correlation(mlflow_client):
    from mlflow.exceptions import MlflowException
    from mlflow.tracing.analysis import TraceFilterCorrelationResult
    from mlflow.tracing.client import TracingClient

    experiment_id = mlflow_client.create_experiment("correlation test")
    for i in range(6):
        _trace(mlflow_client, experiment_id, f"trace-prod-tool-{i}", tags={"env": "prod", "span_type": "TOOL"})
    for i in range(4):
        _trace(mlflow_client, experiment_id, f"trace-dev-{i}", tags={"env": "dev", "span_type": "LLM" if i >= 1 else "TOOL"})
    mlflow.flush_trace_async_logging()
    client = TracingClient(tracking_uri=mlflow_client.tracking_uri)

    def correlate(first, second):
        return client.calculate_trace_filter_correlation(experiment_ids=[experiment_id], filter_string1=first,
                                                         filter_string2=second)

    result = correlate("tags.env = 'prod'", "tags.span_type = 'TOOL'")
    assert isinstance(result, TraceFilterCorrelationResult)
    assert (result.total_count, result.filter1_count, result.filter2_count, result.joint_count) == (10, 6, 7, 6)
    assert 0.6 < result.npmi < 0.8 and result.npmi_smoothed is not None
    result = correlate("tags.env = 'dev'", "tags.span_type = 'LLM'")
    assert (result.total_count, result.filter1_count, result.filter2_count, result.joint_count) == (10, 4, 3, 3)
    assert result.npmi > 0.5
    result = correlate("tags.env = 'staging'", "tags.span_type = 'TOOL'")
    assert (result.total_count, result.filter1_count, result.filter2_count, result.joint_count) == (10, 0, 7, 0)
    assert math.isnan(result.npmi)
    with pytest.raises(MlflowException, match="Invalid"):
        correlate("invalid.filter = 'test'", "tags.span_type = 'TOOL'")


def test_query_trace_metrics(mlflow_client):
    from dataclasses import asdict

    from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType
    from mlflow.tracing.constant import TraceMetricDimensionKey, TraceMetricKey

    experiment_id = mlflow_client.create_experiment("query trace metrics")
    for name, status in (("trace1", TraceStatus.OK), ("trace2", TraceStatus.OK), ("trace3", TraceStatus.ERROR)):
        _trace(mlflow_client, experiment_id, name, status)
    mlflow.flush_trace_async_logging()
    metrics = mlflow_client._tracing_client.store.query_trace_metrics(
        experiment_ids=[experiment_id], view_type=MetricViewType.TRACES, metric_name=TraceMetricKey.TRACE_COUNT,
        aggregations=[MetricAggregation(aggregation_type=AggregationType.COUNT)],
        dimensions=[TraceMetricDimensionKey.TRACE_STATUS])
    assert [asdict(m) for m in metrics] == [
        {"metric_name": TraceMetricKey.TRACE_COUNT, "dimensions": {TraceMetricDimensionKey.TRACE_STATUS: status},
         "values": {"COUNT": count}} for status, count in (("ERROR", 1), ("OK", 2))]


@pytest.mark.parametrize("allow_partial", [True, False])
def test_get_trace_handler(mlflow_client, allow_partial):
    mlflow.set_experiment("get trace handler")  # (no Default experiment in a project)
    with mlflow.start_span(name="test") as span:
        span.set_attributes({"fruit": "apple"})
    mlflow.flush_trace_async_logging()
    r = get(mlflow_client, "/ajax-api/3.0/mlflow/traces/get", {"trace_id": span.trace_id, "allow_partial": allow_partial})
    assert r.status_code == 200, r.text
    trace = r.json()["trace"]
    assert trace["trace_info"]["trace_id"] == span.trace_id
    assert [s["name"] for s in trace["spans"]] == ["test"]
    assert {"key": "fruit", "value": {"string_value": "apple"}} in trace["spans"][0]["attributes"]


def test_link_traces_to_run_and_search_traces(mlflow_client):
    _link_traces_to_run_and_search(mlflow_client, flush_before_link=False)


def test_link_traces_to_run_and_search_traces_after_export(mlflow_client):
    """MLflow's case with the linked trace exported first (``flush_trace_async_logging``)."""
    _link_traces_to_run_and_search(mlflow_client, flush_before_link=True)


def _link_traces_to_run_and_search(mlflow_client, flush_before_link):
    experiment_id = mlflow.set_experiment("link traces to run test").experiment_id
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    with mlflow.start_run(run_id=run_id):
        with mlflow.start_span(name="trace1") as span1:  # made inside the run
            span1.set_attributes({"test": "value1"})
    with mlflow.start_span(name="trace2") as span2:  # linked afterwards
        span2.set_attributes({"test": "value2"})
    if flush_before_link:
        mlflow.flush_trace_async_logging()
    mlflow_client.link_traces_to_run(trace_ids=[span2.trace_id], run_id=run_id)
    with mlflow.start_span(name="trace3") as span3:  # not linked
        span3.set_attributes({"test": "value3"})
    everything = mlflow_client.search_traces(locations=[experiment_id], flush=True)
    assert {t.info.trace_id for t in everything} == {span1.trace_id, span2.trace_id, span3.trace_id}
    linked = mlflow_client.search_traces(locations=[experiment_id], filter_string=f"attribute.run_id = '{run_id}'")
    assert sorted(t.info.trace_id for t in linked) == sorted([span1.trace_id, span2.trace_id])


def test_assessments_end_to_end(mlflow_client):
    experiment_id = mlflow_client.create_experiment("assessment_crud_test")
    trace_id = _trace(mlflow_client, experiment_id, "test_trace")
    mlflow.flush_trace_async_logging()
    base = f"/api/3.0/mlflow/traces/{trace_id}/assessments"

    def ok(response):
        assert response.status_code == 200, response.text
        return response.json().get("assessment")

    created = ok(post(mlflow_client, base, {"assessment": {
        "assessment_name": "quality_score", "feedback": {"value": {"rating": 4, "comments": "Good response"}},
        "source": {"source_type": "HUMAN", "source_id": "evaluator@company.com"},
        "rationale": "Response was accurate and helpful", "metadata": {"model": "gpt-4", "version": "1.0"}}}))
    assessment_id = created["assessment_id"]
    assert (created["assessment_name"], created["feedback"]["value"]["rating"]) == ("quality_score", 4)
    assert created["source"]["source_type"] == "HUMAN" and created["valid"] is True
    got = ok(get(mlflow_client, f"{base}/{assessment_id}"))
    assert (got["assessment_id"], got["feedback"]["value"]["rating"]) == (assessment_id, 4)

    updated = ok(call(mlflow_client, "PATCH", f"{base}/{assessment_id}", json={
        "assessment": {"assessment_id": assessment_id, "trace_id": trace_id, "assessment_name": "updated_quality_score",
                       "feedback": {"value": {"rating": 5, "comments": "Excellent response"}},
                       "rationale": "Actually, the response was excellent",
                       "metadata": {"model": "gpt-4", "version": "2.0"}},
        "update_mask": "assessmentName,feedback,rationale,metadata"}))
    assert (updated["assessment_name"], updated["feedback"]["value"]["rating"], updated["rationale"]) == \
        ("updated_quality_score", 5, "Actually, the response was excellent")

    override = ok(post(mlflow_client, base, {"assessment": {
        "assessment_name": "corrected_quality_score",
        "feedback": {"value": {"rating": 3, "comments": "Actually needs improvement"}},
        "source": {"source_type": "HUMAN", "source_id": "senior_evaluator@company.com"}, "overrides": assessment_id}}))
    override_id = override["assessment_id"]
    assert ok(get(mlflow_client, f"{base}/{assessment_id}"))["valid"] is False
    got = ok(get(mlflow_client, f"{base}/{override_id}"))
    assert got["valid"] is True and got["overrides"] == assessment_id

    ok(call(mlflow_client, "DELETE", f"{base}/{override_id}"))  # restores the original
    assert get(mlflow_client, f"{base}/{override_id}").status_code == 404
    assert ok(get(mlflow_client, f"{base}/{assessment_id}"))["valid"] is True

    expectation = ok(post(mlflow_client, base, {"assessment": {
        "assessment_name": "response_time_check",
        "expectation": {"value": {"threshold_ms": 1000, "actual_ms": 750, "passed": True}},
        "source": {"source_type": "CODE", "source_id": "automated_test"}}}))
    value = json.loads(expectation["expectation"]["serialized_value"]["value"])
    assert value == {"threshold_ms": 1000, "actual_ms": 750, "passed": True}
    assert expectation["source"]["source_type"] == "CODE"
    for aid in (assessment_id, expectation["assessment_id"]):
        ok(call(mlflow_client, "DELETE", f"{base}/{aid}"))


@pytest.mark.parametrize("use_async", [False, True])
def test_rest_store_logs_spans_via_otel_endpoint(mlflow_client, use_async):
    from opentelemetry.sdk.trace import ReadableSpan
    from mlflow.entities import Span
    from mlflow.entities.span import SpanAttributeKey
    from mlflow.tracing.utils import build_otel_context

    experiment_id = mlflow_client.create_experiment(f"rest_store_otel_test_{use_async}")
    root = mlflow_client.start_trace(f"rest_store_otel_trace_{use_async}", experiment_id=experiment_id)
    otel_span = ReadableSpan(
        name=f"test-rest-store-span-{use_async}",
        context=build_otel_context(trace_id=int(root.trace_id[3:], 16), span_id=0x1234567890ABCDEF),
        parent=None, start_time=1000000000, end_time=2000000000,
        attributes={SpanAttributeKey.REQUEST_ID: root.trace_id, "test.attribute": json.dumps(f"test-value-{use_async}")},
        resource=None)
    store = mlflow_client._tracking_client.store
    if use_async:
        # (MLflow's case is a pytest-asyncio coroutine; asyncio.run drives the same call.)
        logged = asyncio.run(store.log_spans_async(location=experiment_id, spans=[Span(otel_span)]))
    else:
        logged = store.log_spans(location=experiment_id, spans=[Span(otel_span)])
    assert [s.name for s in logged] == [f"test-rest-store-span-{use_async}"]


def test_calculate_trace_filter_correlation_refusals(mlflow_client):
    """(Ours, beside MLflow's case: a missing filter or experiment list is a 400, never a 500.)"""
    experiment_id = mlflow_client.create_experiment("correlation refusals")
    path = "/api/3.0/mlflow/traces/calculate-filter-correlation"
    for body in ({"experiment_ids": [experiment_id], "filter_string1": "tags.a = '1'"},
                 {"filter_string1": "tags.a = '1'", "filter_string2": "tags.b = '1'"}):
        r = post(mlflow_client, path, body)
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), r.text
    r = post(mlflow_client, path, {"experiment_ids": [experiment_id], "filter_string1": "tags.a = '1'",
                                   "filter_string2": "tags.b = '1'"})
    assert r.status_code == 200 and r.json() == {"filter1_count": 0, "filter2_count": 0, "joint_count": 0,
                                                 "total_count": 0}, r.text
