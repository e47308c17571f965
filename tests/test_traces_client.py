"""MLflow 3 tracing through the unmodified client against the live forge (SQLite and
PostgreSQL): spans over OTLP, trace info, get/search, tags, delete, link to runs,
assessments, genai.evaluate, and project isolation."""
from __future__ import annotations

import uuid

import mlflow
import pytest
import requests
from mlflow.entities import SpanType
from mlflow.exceptions import MlflowException


def _name(prefix="tr"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


@mlflow.trace(span_type=SpanType.TOOL)
def _add(a, b):
    return a + b


@mlflow.trace(name="pipeline", span_type=SpanType.CHAIN)
def _pipeline(x):
    with mlflow.start_span(name="llm-call", span_type=SpanType.LLM) as span:
        span.set_inputs({"prompt": f"x={x}"})
        span.set_outputs({"text": "ok"})
        span.set_attribute("model", "fake-1")
    return _add(x, 1)


@mlflow.trace
def _fails():
    raise ValueError("boom")


def _last_trace_id():
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    return trace_id


def test_version_and_health_answer_plainly(forge):
    for path, body in (("/version", "3.17.2"), ("/health", "OK")):
        resp = requests.get(forge.tracking_uri(1) + path, headers=_auth(forge.owner_token))
        assert resp.status_code == 200 and resp.text == body, (path, resp.text)


def test_decorator_nested_spans_get_and_search(forge, mlflow_client):
    exp_id = mlflow.set_experiment(_name("exp")).experiment_id
    assert _pipeline(41) == 42
    trace_id = _last_trace_id()
    trace = mlflow.get_trace(trace_id)
    assert trace is not None and trace.info.state.value == "OK"
    assert trace.info.experiment_id == exp_id
    by_name = {s.name: s for s in trace.data.spans}
    assert set(by_name) == {"pipeline", "llm-call", "_add"}
    assert by_name["llm-call"].span_type == SpanType.LLM and by_name["_add"].span_type == SpanType.TOOL
    assert by_name["llm-call"].inputs == {"prompt": "x=41"} and by_name["llm-call"].attributes["model"] == "fake-1"
    assert by_name["llm-call"].parent_id == by_name["pipeline"].span_id
    assert by_name["pipeline"].outputs == 42
    assert trace.info.request_preview and "41" in trace.info.request_preview
    assert trace.info.tags["mlflow.traceName"] == "pipeline"

    with pytest.raises(ValueError):
        _fails()
    failed_id = _last_trace_id()
    failed = mlflow.get_trace(failed_id)
    assert failed.info.state.value == "ERROR"
    assert failed.data.spans[0].status.status_code.value == "ERROR"
    assert any(e.name == "exception" for e in failed.data.spans[0].events)

    df = mlflow.search_traces(locations=[exp_id])
    assert set(df["trace_id"]) == {trace_id, failed_id}
    ok_only = mlflow.search_traces(locations=[exp_id], filter_string="trace.status = 'OK'", return_type="list")
    assert [t.info.trace_id for t in ok_only] == [trace_id]
    assert len(ok_only[0].data.spans) == 3  # search_traces loads the spans too


def test_trace_tags_delete_and_link_to_run(forge, mlflow_client):
    exp_id = mlflow.set_experiment(_name("exp")).experiment_id
    ids = []
    for i in range(3):
        _add(i, i)
        ids.append(_last_trace_id())
    mlflow_client.set_trace_tag(ids[0], "reviewed", "yes")
    assert mlflow.get_trace(ids[0]).info.tags["reviewed"] == "yes"
    found = mlflow.search_traces(locations=[exp_id], filter_string="tags.reviewed = 'yes'", return_type="list")
    assert [t.info.trace_id for t in found] == [ids[0]]
    mlflow_client.delete_trace_tag(ids[0], "reviewed")
    assert "reviewed" not in mlflow.get_trace(ids[0]).info.tags

    with mlflow.start_run() as run:
        pass
    mlflow_client.link_traces_to_run([ids[1]], run.info.run_id)
    linked = mlflow.search_traces(locations=[exp_id], run_id=run.info.run_id, return_type="list")
    assert [t.info.trace_id for t in linked] == [ids[1]]

    assert mlflow_client.delete_traces(exp_id, trace_ids=[ids[2]]) == 1
    left = {t.info.trace_id for t in mlflow.search_traces(locations=[exp_id], return_type="list")}
    assert left == {ids[0], ids[1]}
    assert mlflow_client.delete_traces(exp_id, max_timestamp_millis=2**62, max_traces=1) == 1
    assert len(mlflow.search_traces(locations=[exp_id], return_type="list")) == 1


def test_a_link_made_before_the_trace_arrives_holds_once_it_does(forge, mlflow_client):
    """MLflow keeps run links by trace id: a trace linked before its export lands (or one
    that never comes) is linked when it is stored, and only in this project."""
    exp_id = mlflow.set_experiment(_name("early")).experiment_id
    with mlflow.start_run() as run:
        pass
    early = "tr-" + "ab" * 16  # not stored anywhere yet
    mlflow_client.link_traces_to_run([early], run.info.run_id)  # MLflow answers 200 for it too
    assert mlflow.search_traces(locations=[exp_id], run_id=run.info.run_id, return_type="list",
                                include_spans=False) == []
    # The trace arrives, with the id the link named (the v3 start-trace the client sends).
    info = {"trace_id": early, "trace_location": {"type": "MLFLOW_EXPERIMENT",
                                                  "mlflow_experiment": {"experiment_id": exp_id}},
            "request_time": "2026-12-03T10:00:00Z", "execution_duration": "0.5s", "state": "OK"}
    other = requests.post(forge.tracking_uri(2) + "/api/3.0/mlflow/traces", json={"trace": {"trace_info": {
        **info, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {
            "experiment_id": _other_experiment(forge)}}}}}, headers=_auth(forge.owner_token))
    assert other.status_code == 200, other.text  # the same id in another project: not linked here
    resp = requests.post(forge.tracking_uri(1) + "/api/3.0/mlflow/traces", json={"trace": {"trace_info": info}},
                         headers=_auth(forge.owner_token))
    assert resp.status_code == 200, resp.text
    # (info only: this trace has no spans, so the client would skip it when loading them)
    linked = mlflow.search_traces(locations=[exp_id], run_id=run.info.run_id, return_type="list", include_spans=False)
    assert [t.info.trace_id for t in linked] == [early]


def _other_experiment(forge) -> str:
    resp = requests.post(forge.tracking_uri(2) + "/api/2.0/mlflow/experiments/create", json={"name": _name("other")},
                         headers=_auth(forge.owner_token))
    assert resp.status_code == 200, resp.text
    return resp.json()["experiment_id"]


def test_trace_of_another_project_is_not_found(forge, mlflow_client):
    mlflow.set_experiment(_name("exp"))
    _add(1, 2)
    trace_id = _last_trace_id()
    own = requests.get(forge.tracking_uri(1) + f"/api/3.0/mlflow/traces/{trace_id}", headers=_auth(forge.owner_token))
    assert own.status_code == 200 and own.json()["trace"]["trace_info"]["trace_id"] == trace_id
    other = requests.get(forge.tracking_uri(2) + f"/api/3.0/mlflow/traces/{trace_id}", headers=_auth(forge.owner_token))
    assert other.status_code == 404 and other.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    full = requests.get(forge.tracking_uri(2) + "/api/3.0/mlflow/traces/get", params={"trace_id": trace_id},
                        headers=_auth(forge.owner_token))
    assert full.status_code == 404


def test_oversized_otlp_body_is_refused_with_mlflow_json(forge):
    from gl_ml_tracking import get_state

    settings = get_state(forge.app).config
    old = settings.max_trace_body
    settings.max_trace_body = 1000
    try:
        resp = requests.post(forge.tracking_uri(1) + "/v1/traces", data=b"x" * 2000,
                             headers={**_auth(forge.owner_token), "Content-Type": "application/x-protobuf",
                                      "X-MLflow-Experiment-Id": "0"})
    finally:
        settings.max_trace_body = old
    assert resp.status_code == 413 and resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    bad = requests.post(forge.tracking_uri(1) + "/v1/traces", data=b"\xff\xff\xff",
                        headers={**_auth(forge.owner_token), "Content-Type": "application/x-protobuf",
                                 "X-MLflow-Experiment-Id": "0"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_feedback_and_expectations(forge, mlflow_client):
    from mlflow.entities import AssessmentSource, AssessmentSourceType

    mlflow.set_experiment(_name("exp"))
    _add(2, 3)
    trace_id = _last_trace_id()
    human = AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="alice")
    fb = mlflow.log_feedback(trace_id=trace_id, name="quality", value=4, source=human, rationale="fine",
                             metadata={"round": "1"})
    ex = mlflow.log_expectation(trace_id=trace_id, name="expected", value={"answer": 5, "tags": ["a", "b"]})
    got = mlflow.get_assessment(trace_id, fb.assessment_id)
    assert got.name == "quality" and got.value == 4 and got.rationale == "fine"
    assert got.source.source_type == "HUMAN" and got.source.source_id == "alice" and got.metadata == {"round": "1"}
    assert mlflow.get_assessment(trace_id, ex.assessment_id).value == {"answer": 5, "tags": ["a", "b"]}

    from mlflow.entities import Feedback

    updated = mlflow.update_assessment(trace_id, fb.assessment_id, Feedback(name="quality", value=5, rationale="better"))
    assert updated.value == 5 and updated.rationale == "better"
    assert mlflow.get_assessment(trace_id, fb.assessment_id).value == 5

    new = mlflow.override_feedback(trace_id=trace_id, assessment_id=fb.assessment_id, value=1, rationale="wrong")
    assert new.overrides == fb.assessment_id
    assert mlflow.get_assessment(trace_id, fb.assessment_id).valid is False
    names = sorted((a.name, a.valid) for a in mlflow.get_trace(trace_id).info.assessments if a.name == "quality")
    assert names == [("quality", False), ("quality", True)]
    assert "expected" in {a.name for a in mlflow.get_trace(trace_id).info.assessments}

    mlflow.delete_assessment(trace_id, new.assessment_id)  # the overridden one is valid again
    assert mlflow.get_assessment(trace_id, fb.assessment_id).valid is True
    mlflow.delete_assessment(trace_id, ex.assessment_id)
    left = [a.assessment_id for a in mlflow.get_trace(trace_id).info.assessments]
    assert left == [fb.assessment_id]


def test_genai_evaluate_stores_row_traces_and_feedback(forge, mlflow_client):
    from mlflow.genai.scorers import scorer

    exp_id = mlflow.set_experiment(_name("eval")).experiment_id

    @scorer
    def exact(outputs, expectations) -> bool:
        return outputs == expectations["answer"]

    def predict(question):
        return "4" if "2+2" in question else "unknown"

    data = [{"inputs": {"question": "2+2?"}, "expectations": {"answer": "4"}},
            {"inputs": {"question": "capital?"}, "expectations": {"answer": "Paris"}}]
    result = mlflow.genai.evaluate(data=data, predict_fn=predict, scorers=[exact])
    run = mlflow_client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["exact/mean"] == pytest.approx(0.5)
    traces = mlflow.search_traces(locations=[exp_id], run_id=result.run_id, return_type="list")
    assert len(traces) == 2
    values = {}
    for t in traces:
        full = mlflow.get_trace(t.info.trace_id)
        assert full.data.spans, "each row's trace keeps its spans"
        feedback = [a for a in full.info.assessments if a.name == "exact"]
        assert len(feedback) == 1
        values[full.data.spans[0].inputs["question"]] = feedback[0].value
    assert values == {"2+2?": True, "capital?": False}


def test_deleted_experiment_hides_traces_and_purge_removes_them(forge, mlflow_client):
    import re

    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Span, Trace
    from tests.support.ui_seed import sign_in

    exp_id = mlflow.set_experiment(_name("gone")).experiment_id
    _pipeline(1)
    trace_id = _last_trace_id()
    with mlflow.start_run() as run:
        pass
    mlflow_client.link_traces_to_run([trace_id], run.info.run_id)
    mlflow_client.delete_experiment(exp_id)
    resp = requests.get(forge.tracking_uri(1) + f"/api/3.0/mlflow/traces/{trace_id}", headers=_auth(forge.owner_token))
    assert resp.status_code == 404

    browser = forge.app.test_client()
    sign_in(browser)
    page = browser.get("/demo/mnist/-/ml/trash").get_data(as_text=True)
    token = re.search(r'name="_glml_csrf" value="([^"]+)"', page).group(1)
    assert browser.post(f"/demo/mnist/-/ml/trash/experiments/{exp_id}/purge", data={"_glml_csrf": token}).status_code == 303
    with forge.app.app_context():
        session = get_state(forge.app).session
        assert session.query(Trace).filter(Trace.trace_id == trace_id).count() == 0
        assert session.query(Span).count() == session.query(Span).join(Trace, Trace.id == Span.trace_pk).count()


def test_issues_create_get_update_search(forge, mlflow_client):
    from mlflow.entities.issue import IssueSeverity, IssueStatus
    from mlflow.tracking._tracking_service.utils import _get_store

    store = _get_store()
    exp_id = mlflow.set_experiment(_name("issues")).experiment_id
    low = store.create_issue(exp_id, "slow answers", "p95 over 5 s", severity=IssueSeverity.LOW, categories=["latency"])
    high = store.create_issue(exp_id, "wrong math", "6x7 is not 41", severity=IssueSeverity.HIGH,
                              root_causes=["prompt"], source_run_id="a" * 32)
    got = store.get_issue(high.issue_id)
    assert (got.name, got.severity, got.root_causes, got.experiment_id) == ("wrong math", IssueSeverity.HIGH, ["prompt"], exp_id)
    updated = store.update_issue(low.issue_id, status=IssueStatus.RESOLVED, description="fixed by caching")
    assert updated.status == IssueStatus.RESOLVED and updated.description == "fixed by caching"
    assert [i.issue_id for i in store.search_issues(experiment_id=exp_id)] == [high.issue_id, low.issue_id]
    assert [i.issue_id for i in store.search_issues(experiment_id=exp_id, filter_string="status = 'resolved'")] == [low.issue_id]
    page = store.search_issues(experiment_id=exp_id, max_results=1)
    assert [i.issue_id for i in page] == [high.issue_id] and page.token
    assert [i.issue_id for i in store.search_issues(experiment_id=exp_id, max_results=1, page_token=page.token)] == [low.issue_id]
    other = requests.get(forge.tracking_uri(2) + f"/api/3.0/mlflow/issues/{high.issue_id}", headers=_auth(forge.owner_token))
    assert other.status_code == 404
    bad = requests.post(forge.tracking_uri(1) + "/api/3.0/mlflow/issues/search", json={"filter_string": "name = 'x'"},
                        headers=_auth(forge.owner_token))
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_trace_metrics(forge, mlflow_client):
    from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType
    from mlflow.tracing.constant import TraceMetricKey

    from mlflow.tracking._tracking_service.utils import _get_store

    client, store = mlflow_client, _get_store()
    exp_id = mlflow.set_experiment(_name("metrics")).experiment_id
    t0 = 1_700_000_000_000
    for i, (status, duration) in enumerate([("OK", 100), ("OK", 300), ("ERROR", 200)]):
        root = client.start_trace("metric-trace", experiment_id=exp_id, start_time_ns=(t0 + i * 1000) * 1_000_000)
        client.end_trace(root.trace_id, status=status, end_time_ns=(t0 + i * 1000 + duration) * 1_000_000)
    mlflow.flush_trace_async_logging()
    points = store.query_trace_metrics(
        experiment_ids=[exp_id], view_type=MetricViewType.TRACES, metric_name=TraceMetricKey.LATENCY,
        aggregations=[MetricAggregation(AggregationType.AVG), MetricAggregation(AggregationType.MAX),
                      MetricAggregation(AggregationType.PERCENTILE, 50.0)],
        dimensions=["trace_name"])  # latency by trace_status is refused, as by the 3.17.2 server
    assert [(p.dimensions, p.values) for p in points] == [
        ({"trace_name": "metric-trace"}, {"AVG": 200, "MAX": 300, "P50.0": 200})]
    by_status = store.query_trace_metrics(
        experiment_ids=[exp_id], view_type=MetricViewType.TRACES, metric_name=TraceMetricKey.TRACE_COUNT,
        aggregations=[MetricAggregation(AggregationType.COUNT)], dimensions=["trace_status"])
    assert {p.dimensions["trace_status"]: p.values["COUNT"] for p in by_status} == {"ERROR": 1, "OK": 2}
    counts = store.query_trace_metrics(
        experiment_ids=[exp_id], view_type=MetricViewType.TRACES, metric_name=TraceMetricKey.TRACE_COUNT,
        aggregations=[MetricAggregation(AggregationType.COUNT)], filters=["trace.status = 'OK'"])
    assert [p.values["COUNT"] for p in counts] == [2]


def test_v2_start_end_and_search_of_older_clients(forge, mlflow_client):
    exp_id = mlflow.set_experiment(_name("v2")).experiment_id
    api = forge.tracking_uri(1) + "/api/2.0/mlflow/"
    h = _auth(forge.owner_token)
    started = requests.post(api + "traces", headers=h, json={
        "experiment_id": exp_id, "timestamp_ms": 1_700_000_000_000,
        "request_metadata": [{"key": "mlflow.traceInputs", "value": "{}"}], "tags": [{"key": "mlflow.traceName", "value": "v2"}]})
    assert started.status_code == 200, started.text
    request_id = started.json()["trace_info"]["request_id"]
    ended = requests.patch(api + f"traces/{request_id}", headers=h, json={
        "timestamp_ms": 1_700_000_000_250, "status": "OK", "tags": [{"key": "team", "value": "old"}]})
    info = ended.json()["trace_info"]
    assert ended.status_code == 200 and info["status"] == "OK" and info["execution_time_ms"] == 250
    assert {"key": "team", "value": "old"} in info["tags"]
    got = requests.get(api + f"traces/{request_id}/info", headers=h).json()["trace_info"]
    assert got["request_id"] == request_id and got["timestamp_ms"] == 1_700_000_000_000
    found = requests.get(api + "traces", headers=h, params={"experiment_ids": exp_id, "filter": "tags.team = 'old'"})
    assert [t["request_id"] for t in found.json()["traces"]] == [request_id]
    # The trace info as the 3.x client reads it (not mlflow.get_trace: a trace with no spans
    # anywhere has no spansLocation tag, so the client looks for its traces.json, finds none
    # and answers None, as against MLflow's server).
    from mlflow.tracing.client import TracingClient

    v3 = TracingClient().get_trace_info(request_id)
    assert v3.trace_id == request_id and v3.execution_duration == 250


def test_link_prompts_endpoint_records_the_link(forge, mlflow_client):
    """POST traces/link-prompts (the client's LinkPromptsToTrace) stores the link in the
    trace's mlflow.linkedPrompts tag by itself, so `prompt = 'name/version'` finds it."""
    from mlflow.entities.model_registry import PromptVersion
    from mlflow.tracking._tracking_service.utils import _get_store

    client = mlflow_client
    exp_id = mlflow.set_experiment(_name("prompts")).experiment_id
    root = client.start_trace("uses-prompt", experiment_id=exp_id)
    client.end_trace(root.trace_id)
    mlflow.flush_trace_async_logging()
    store = _get_store()
    store.link_prompts_to_trace(root.trace_id, [PromptVersion("greet", 3, template="Hi")])
    store.link_prompts_to_trace(root.trace_id, [PromptVersion("greet", 3, template="Hi"), PromptVersion("bye", 1, template="x")])
    tag = client.get_trace(root.trace_id).info.tags["mlflow.linkedPrompts"]
    assert tag == '[{"name": "greet", "version": "3"}, {"name": "bye", "version": "1"}]'
    found = mlflow.search_traces(locations=[exp_id], filter_string="prompt = 'bye/1'", return_type="list")
    assert [t.info.trace_id for t in found] == [root.trace_id]
    with pytest.raises(MlflowException) as missing:
        store.link_prompts_to_trace("tr-" + "0" * 32, [PromptVersion("greet", 3, template="Hi")])
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
