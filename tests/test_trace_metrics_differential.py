"""Differential tests of the trace metrics views (TRACES, SPANS, ASSESSMENTS): the same
traces, spans and assessments logged through the client to the reference
``mlflow server`` (3.17.2, SQLite) and to our forge (SQLite and PostgreSQL), the same
``query_trace_metrics`` calls on both, the same data points (or the same error code)."""
from __future__ import annotations

import uuid

import mlflow
import pytest
from mlflow.entities import SpanType
from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType
from mlflow.exceptions import MlflowException
from mlflow.tracing.trace_manager import InMemoryTraceManager
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _get_store

from tests.support.mlflow_state import logged_on_both
from tests.test_search_differential import reference, token_env  # noqa: F401 - fixtures

T0 = 1_700_000_040_000  # ms, on a minute boundary
LLM = {"mlflow.llm.model": "gpt-4", "mlflow.llm.provider": "openai",
       "mlflow.llm.cost": {"input_cost": 0.5, "output_cost": 1.25, "total_cost": 1.75}}
SMALL = {"mlflow.llm.model": "mini", "mlflow.llm.provider": "acme",
         "mlflow.llm.cost": {"input_cost": 0.25, "output_cost": 0.5, "total_cost": 0.75}}
# name, start offset (ms), duration (ms), status, session, children (name, type, duration ms, attributes)
TRACES = [
    ("chat", 0, 900, "OK", "s1", [("llm", SpanType.LLM, 400, LLM), ("tool", SpanType.TOOL, 100, {})]),
    ("chat", 30_000, 1500, "ERROR", "s1", [("llm", SpanType.LLM, 1200, SMALL)]),
    ("rag", 70_000, 600, "OK", "s2", [("retrieve", SpanType.RETRIEVER, 200, {}), ("llm", SpanType.LLM, 300, LLM)]),
    ("rag", 130_000, 300, "OK", None, []),
]
# trace index -> feedback (name, value)
FEEDBACK = {0: [("correct", True), ("score", 0.75), ("tone", "yes")], 1: [("correct", False), ("score", 0.25)],
            2: [("score", 4), ("tone", "no"), ("label", "great")]}
EXPECTATIONS = {0: [("answer", "42")], 3: [("answer", "x")]}

COUNT, AVG, MIN, MAX, SUM = (MetricAggregation(t) for t in (AggregationType.COUNT, AggregationType.AVG,
                                                              AggregationType.MIN, AggregationType.MAX,
                                                              AggregationType.SUM))
P50 = MetricAggregation(AggregationType.PERCENTILE, 50.0)
SPREAD = [AVG, MIN, MAX, P50]
WINDOW = {"start_time_ms": T0, "end_time_ms": T0 + 180_000}

QUERIES = {
    "traces-count-by-status": dict(view_type=MetricViewType.TRACES, metric_name="trace_count", aggregations=[COUNT],
                                   dimensions=["trace_status"]),
    "traces-latency-by-name": dict(view_type=MetricViewType.TRACES, metric_name="latency", aggregations=SPREAD,
                                   dimensions=["trace_name"]),
    "traces-session-count": dict(view_type=MetricViewType.TRACES, metric_name="session_count", aggregations=[COUNT]),
    "traces-count-per-minute": dict(view_type=MetricViewType.TRACES, metric_name="trace_count", aggregations=[COUNT],
                                    time_interval_seconds=60, **WINDOW),
    "traces-count-filtered": dict(view_type=MetricViewType.TRACES, metric_name="trace_count", aggregations=[COUNT],
                                  filters=["trace.status = 'OK'", "trace.tag.mlflow.traceName = 'rag'"]),
    "traces-session-filter": dict(view_type=MetricViewType.TRACES, metric_name="trace_count", aggregations=[COUNT],
                                  filters=["trace.metadata.`mlflow.trace.session` = 's1'"]),
    "spans-count-by-type": dict(view_type=MetricViewType.SPANS, metric_name="span_count", aggregations=[COUNT],
                                dimensions=["span_type"]),
    "spans-count-by-name-status": dict(view_type=MetricViewType.SPANS, metric_name="span_count", aggregations=[COUNT],
                                       dimensions=["span_name", "span_status"]),
    "spans-count-by-model": dict(view_type=MetricViewType.SPANS, metric_name="span_count", aggregations=[COUNT],
                                 dimensions=["span_model_name", "span_model_provider"]),
    "spans-latency-by-name": dict(view_type=MetricViewType.SPANS, metric_name="latency", aggregations=SPREAD,
                                  dimensions=["span_name"]),
    "spans-total-cost-by-model": dict(view_type=MetricViewType.SPANS, metric_name="total_cost",
                                      aggregations=[SUM, AVG, MIN, MAX, P50], dimensions=["span_model_name"]),
    "spans-input-cost": dict(view_type=MetricViewType.SPANS, metric_name="input_cost", aggregations=[SUM]),
    "spans-count-filtered": dict(view_type=MetricViewType.SPANS, metric_name="span_count", aggregations=[COUNT],
                                 filters=["span.type = 'LLM'", "trace.status = 'OK'"]),
    "spans-count-per-minute": dict(view_type=MetricViewType.SPANS, metric_name="span_count", aggregations=[COUNT],
                                   time_interval_seconds=60, **WINDOW),
    "spans-cost-per-minute": dict(view_type=MetricViewType.SPANS, metric_name="total_cost", aggregations=[SUM],
                                  time_interval_seconds=60, **WINDOW),
    "assessments-count-by-name": dict(view_type=MetricViewType.ASSESSMENTS, metric_name="assessment_count",
                                      aggregations=[COUNT], dimensions=["assessment_name"]),
    "assessments-count-by-value": dict(view_type=MetricViewType.ASSESSMENTS, metric_name="assessment_count",
                                       aggregations=[COUNT], dimensions=["assessment_name", "assessment_value"]),
    "assessments-value-by-name": dict(view_type=MetricViewType.ASSESSMENTS, metric_name="assessment_value",
                                      aggregations=SPREAD, dimensions=["assessment_name"]),
    "assessments-feedback-only": dict(view_type=MetricViewType.ASSESSMENTS, metric_name="assessment_count",
                                      aggregations=[COUNT], filters=["assessment.type = 'feedback'"]),
    "assessments-named": dict(view_type=MetricViewType.ASSESSMENTS, metric_name="assessment_value",
                              aggregations=[AVG], filters=["assessment.name = 'score'", "trace.status = 'OK'"]),
    "assessments-per-minute": dict(view_type=MetricViewType.ASSESSMENTS, metric_name="assessment_count",
                                   aggregations=[COUNT], time_interval_seconds=60, **WINDOW),
    # errors
    "bad-metric": dict(view_type=MetricViewType.SPANS, metric_name="trace_count", aggregations=[COUNT]),
    "bad-aggregation": dict(view_type=MetricViewType.SPANS, metric_name="span_count", aggregations=[AVG]),
    "bad-dimension": dict(view_type=MetricViewType.ASSESSMENTS, metric_name="assessment_value", aggregations=[AVG],
                          dimensions=["assessment_value"]),
    "span-filter-on-traces": dict(view_type=MetricViewType.TRACES, metric_name="trace_count", aggregations=[COUNT],
                                  filters=["span.name = 'llm'"]),
    "two-clauses": dict(view_type=MetricViewType.TRACES, metric_name="trace_count", aggregations=[COUNT],
                        filters=["trace.status = 'OK' AND trace.status = 'ERROR'"]),
    "not-equal": dict(view_type=MetricViewType.TRACES, metric_name="trace_count", aggregations=[COUNT],
                      filters=["trace.status != 'OK'"]),
    "bad-entity": dict(view_type=MetricViewType.SPANS, metric_name="span_count", aggregations=[COUNT],
                       filters=["span.model = 'x'"]),
    "tag-without-key": dict(view_type=MetricViewType.TRACES, metric_name="trace_count", aggregations=[COUNT],
                            filters=["trace.tag = 'x'"]),
    "interval-without-window": dict(view_type=MetricViewType.SPANS, metric_name="span_count", aggregations=[COUNT],
                                    time_interval_seconds=60),
}


def _log_all(uri: str) -> str:
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp_id = client.create_experiment(f"mdiff-{uuid.uuid4().hex[:8]}")
    ids = []
    for name, offset, duration, status, session, children in TRACES:
        start = (T0 + offset) * 1_000_000
        root = client.start_trace(name, span_type=SpanType.CHAIN, experiment_id=exp_id, start_time_ns=start)
        for i, (child_name, span_type, child_ms, attributes) in enumerate(children):
            child_start = start + (i + 1) * 10_000_000
            child = client.start_span(child_name, root.trace_id, root.span_id, span_type=span_type,
                                      attributes=attributes, start_time_ns=child_start)
            client.end_span(root.trace_id, child.span_id, end_time_ns=child_start + child_ms * 1_000_000)
        if session:
            with InMemoryTraceManager.get_instance().get_trace(root.trace_id) as trace:
                trace.info.trace_metadata["mlflow.trace.session"] = session
        client.end_trace(root.trace_id, status=status, end_time_ns=start + duration * 1_000_000)
        ids.append(root.trace_id)
    mlflow.flush_trace_async_logging()
    for i, items in FEEDBACK.items():
        for name, value in items:
            mlflow.log_feedback(trace_id=ids[i], name=name, value=value)
    for i, items in EXPECTATIONS.items():
        for name, value in items:
            mlflow.log_expectation(trace_id=ids[i], name=name, value=value)
    # An overridden feedback no longer counts: trace 1's score becomes 0.5.
    old = next(a for a in client.get_trace(ids[1]).info.assessments if a.name == "score")
    mlflow.override_feedback(trace_id=ids[1], assessment_id=old.assessment_id, value=0.5)
    return exp_id


@pytest.fixture(scope="module")
def both(forge, reference, token_env):  # noqa: F811
    yield from logged_on_both({"ref": reference, "ours": forge.tracking_uri(1)}, _log_all)


def _points(uri: str, exp_id: str, query: dict):
    mlflow.set_tracking_uri(uri)
    try:
        points = _get_store().query_trace_metrics(experiment_ids=[exp_id], **query)
    except MlflowException as exc:
        return ("error", exc.error_code)
    return [(p.metric_name, dict(p.dimensions), {k: round(v, 9) for k, v in p.values.items()}) for p in points]


@pytest.mark.parametrize("name", list(QUERIES))
def test_metrics_match_reference(both, name):
    answers = {side: _points(uri, exp_id, QUERIES[name]) for side, (uri, exp_id) in both.items()}
    assert answers["ours"] == answers["ref"], answers
    if not name.startswith(("bad", "span-filter", "two", "not", "tag-", "interval")):
        assert answers["ours"] and answers["ours"][0] != "error", answers  # each query has data
