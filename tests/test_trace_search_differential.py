"""Differential tests of the trace filter grammar: the same traces logged through the
client to the reference ``mlflow server`` (3.17.2, SQLite) and to our forge (SQLite and
PostgreSQL), the same ``search_traces`` calls on both, the same traces (by label) in
the same order, or the same error code."""
from __future__ import annotations

import uuid

import mlflow
import pytest
from mlflow.entities import SpanType
from mlflow.exceptions import MlflowException
from mlflow.entities.model_registry import PromptVersion
from mlflow.tracing.trace_manager import InMemoryTraceManager
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _get_store

from tests.support.mlflow_state import logged_on_both
from tests.test_search_differential import reference, token_env  # noqa: F401 - fixtures

T0 = 1_700_000_000_000  # ms
SESSION = "mlflow.trace.session"
ISSUE_IDS: dict = {}  # tracking URI -> the id of the issue gamma references
# label, start offset (ms), duration (ms), status, tags, child spans (name, type), in run
TRACES = [
    ("alpha", 0, 100, "OK", {"team": "red", "env": "prod"}, [("retrieve", SpanType.RETRIEVER)], True),
    ("beta", 1000, 250, "ERROR", {"team": "blue"}, [("generate", SpanType.LLM)], False),
    ("gamma", 2000, 400, "OK", {"team": "Red"}, [("retrieve", SpanType.RETRIEVER), ("generate", SpanType.LLM)], True),
    ("delta", 3000, 50, "OK", {}, [], False),
    ("alphabet", 4000, 300, "ERROR", {"team": "green", "env": "dev"}, [("tool", SpanType.TOOL)], False),
]

# label -> root span attributes, feedback (name, value), expectations, session, linked prompts
ATTRIBUTES = {"alpha": {"model": "gpt-4"}, "beta": {"model": "claude-3"}, "gamma": {"model": "gpt-3.5", "temp": "0.7"}}
FEEDBACK = {"alpha": [("correct", True), ("score", 0.9), ("tone", "friendly")],
            "beta": [("correct", False), ("score", 0.2)],
            "gamma": [("score", 5), ("tone", "rude")],
            "alphabet": [("tone", "Friendly")]}
EXPECTATIONS = {"alpha": [("answer", "42")], "delta": [("answer", "x")]}
SESSIONS = {"alpha": "s1", "delta": "s1", "beta": "s2"}
PROMPTS = {"alpha": [("greeting", 1)], "gamma": [("greeting", 1), ("farewell", 2)], "beta": [("greeting", 2)]}

FILTERS = [
    None,
    "status = 'OK'",
    "trace.status = 'ERROR'",
    "attributes.status != 'OK'",
    "status IN ('OK', 'ERROR')",
    f"timestamp_ms > {T0 + 1500}",
    f"timestamp >= {T0 + 1000} AND timestamp_ms < {T0 + 3000}",
    "execution_time_ms > 200",
    "execution_time < 300",
    f"end_time_ms > {T0 + 2300}",
    "name = 'alpha'",
    "trace.name LIKE 'alpha%'",
    "name ILIKE 'ALPHA%'",
    "name != 'alpha'",
    "name IN ('beta', 'delta')",
    "tags.team = 'red'",
    "tags.team != 'red'",
    "tags.team LIKE 'r%'",
    "tags.team ILIKE 'R%'",
    "tag.env = 'prod'",
    "tags.`team` = 'blue'",
    "span.name = 'retrieve'",
    "span.type = 'LLM'",
    "span.name LIKE 'gen%'",
    "span.type = 'RETRIEVER' AND status = 'OK'",
    "status = 'OK' AND tags.team ILIKE 'red'",
    "RUN_ID",
    "RUN_ID AND status = 'OK'",
    "nothing.x = 'y'",
    "status > 'OK'",
    "tags.team = red",
    # RLIKE, spans, assessments, prompts, issues (MLflow 3.17.2's full grammar)
    "tags.team RLIKE '^[rR]e'",
    "name RLIKE '^alpha'",
    "status RLIKE 'ERR'",
    "metadata.`mlflow.trace.session` = 's1'",
    "span.status = 'OK'",
    "span.name = 'retrieve' AND span.type = 'LLM'",
    "span.name = 'generate' AND span.type = 'LLM'",
    "span.name IN ('tool', 'generate')",
    "span.type NOT IN ('LLM', 'CHAIN')",
    "span.name RLIKE '^gen'",
    "span.content LIKE '%retrieve%'",
    "span.content ILIKE '%ALPHABET%'",
    "text ILIKE '%GAMMA%'",
    "span.attributes.model LIKE '%gpt%'",
    "span.attributes.model ILIKE '%GPT%'",
    "span.attributes.model RLIKE 'gpt'",
    "span.attributes.model RLIKE '^gpt'",
    "span.attributes.model RLIKE '4$'",
    "span.attributes.temp LIKE '%0.7%'",
    "span.attributes.model = 'gpt-4'",
    "span.attributes.model != 'gpt-4'",
    "feedback.correct = 'true'",
    "feedback.correct = 'false'",
    "feedback.correct != 'true'",
    "feedback.score > 0.5",
    "feedback.score <= 0.9",
    "feedback.score >= 5",
    "feedback.score < 1",
    "feedback.tone = 'friendly'",
    "feedback.tone LIKE '%riend%'",
    "feedback.tone ILIKE '%FRIEND%'",
    "feedback.tone RLIKE '^.F'",
    "feedback.tone IS NULL",
    "feedback.tone IS NOT NULL",
    "feedback.`score` > 0.5 AND status = 'OK'",
    "expectation.answer = '42'",
    "expectation.answer IS NOT NULL",
    "expectation.answer IS NULL",
    "feedback.session_ok = 'yes'",
    "feedback.session_ok IS NULL",
    "prompt = 'greeting/1'",
    "prompt = 'greeting/2'",
    "prompt = 'farewell/2'",
    "issue.id = 'iss-1'",
    "issue.id = 'ISSUE_ID'",
    "issue.id = 'ISSUE_ID' AND status = 'OK'",
    "RUN_NE",
    "trace.text ILIKE '%GAMMA%'",
    "attributes.text LIKE '%alpha%'",
    "issue.name = 'alpha'",
    "tags.NAME = 'beta'",
    "feedback.name IS NULL",
    "span.attributes.`mlflow.spanType` LIKE '%LLM%'",
    "feedback.tone = 'rude' AND feedback.tone = 'friendly'",
    "feedback.correct = 'true' AND span.attributes.model LIKE '%gpt%'",
    "span.attributes.model IN ('gpt-4')",
    "text ILIKE '%GAMMA%'",
    "feedback.score > 'a'",
    "feedback.score = 5",
    "feedback.tone IN ('rude')",
    "span.foo = 'x'",
    "span.content = 'x'",
    "span.attribute.model = 'x'",
    "span.attributes. = 'x'",
    "span.name = 5",
    "issue.name = 'x'",
    "issue.id != 'x'",
    "prompt = 'greeting'",
    "prompt != 'greeting/1'",
    "trace.text = 'x'",
    "metadata.`mlflow.trace.tokenUsage` LIKE '%1%'",
    # text / content over MLflow's span dict, not over the stored OTLP layout's own words
    "trace.text LIKE '%value%'",
    "trace.text LIKE '%key%'",
    "span.content LIKE '%string_value%'",
    "trace.text ILIKE '%kind%'",
    "trace.text LIKE '%gpt-4%'",
    "span.content LIKE '%model%gpt%'",
    "trace.text LIKE '%attributes%'",
    "trace.text LIKE '%links%'",
    "span.content LIKE '%values%'",
    "span.content LIKE '%mlflow.spanInputs%alpha%'",
]
ORDERS = [["timestamp_ms ASC"], ["execution_time_ms DESC"], ["timestamp_ms DESC"], ["status ASC", "timestamp_ms ASC"],
          ["name ASC"], ["tags.team ASC"], ["tags.env DESC", "timestamp_ms ASC"],
          ["metadata.`mlflow.trace.session` DESC"], ["tags.name DESC"], ["feedback.score ASC"],
          ["metadata.`mlflow.trace.tokenUsage` ASC"]]


def _log_all(tracking_uri: str) -> tuple[str, str, dict]:
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    exp_id = client.create_experiment(f"tdiff-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp_id).info.run_id
    labels = {}
    for label, offset, duration, status, tags, children, in_run in TRACES:
        start = (T0 + offset) * 1_000_000
        root = client.start_trace(label, span_type=SpanType.CHAIN, inputs={"q": label}, tags=tags,
                                  attributes=ATTRIBUTES.get(label),
                                  experiment_id=exp_id, start_time_ns=start, run_id=run_id if in_run else None)
        for i, (name, span_type) in enumerate(children):
            child = client.start_span(name, root.trace_id, root.span_id, span_type=span_type, start_time_ns=start + (i + 1) * 1_000_000)
            client.end_span(root.trace_id, child.span_id, end_time_ns=start + (i + 2) * 1_000_000)
        if label in SESSIONS:
            with InMemoryTraceManager.get_instance().get_trace(root.trace_id) as trace:
                trace.info.trace_metadata[SESSION] = SESSIONS[label]
        client.end_trace(root.trace_id, outputs={"a": label}, status=status, end_time_ns=start + duration * 1_000_000)
        labels[root.trace_id] = label
    mlflow.flush_trace_async_logging()
    _assess(client, exp_id, {v: k for k, v in labels.items()})
    return exp_id, run_id, labels


def _assess(client, exp_id, ids):
    for label, items in FEEDBACK.items():
        for name, value in items:
            mlflow.log_feedback(trace_id=ids[label], name=name, value=value)
    for label, items in EXPECTATIONS.items():
        for name, value in items:
            mlflow.log_expectation(trace_id=ids[label], name=name, value=value)
    # An overridden value stops counting: beta's score becomes 0.95.
    old = next(a for a in client.get_trace(ids["beta"]).info.assessments if a.name == "score")
    mlflow.override_feedback(trace_id=ids["beta"], assessment_id=old.assessment_id, value=0.95)
    # A session-scoped assessment speaks for every trace of session s1 (alpha and delta).
    mlflow.log_feedback(trace_id=ids["alpha"], name="session_ok", value="yes", metadata={SESSION: "s1"})
    # An issue reference (an assessment of type issue named by the issue id) on gamma.
    issue = _get_store().create_issue(exp_id, "wrong tone", "rude answers")
    ISSUE_IDS[mlflow.get_tracking_uri()] = issue.issue_id
    mlflow.log_issue(trace_id=ids["gamma"], issue_id=issue.issue_id)
    for label, versions in PROMPTS.items():
        client.link_prompt_versions_to_trace(trace_id=ids[label],
                                             prompt_versions=[PromptVersion(n, v, template="t") for n, v in versions])


def _search(exp_id, labels, filter_string, order_by):
    try:
        infos = mlflow.search_traces(locations=[exp_id], filter_string=filter_string, order_by=order_by,
                                     return_type="list", include_spans=False)
    except MlflowException as exc:
        return ("error", exc.error_code)
    return [labels.get(t.info.trace_id, "?") for t in infos]


@pytest.fixture(scope="module")
def both(forge, reference, token_env):  # noqa: F811
    for logged in logged_on_both({"ref": reference, "ours": forge.tracking_uri(1)}, _log_all):
        yield {side: (uri, *found) for side, (uri, found) in logged.items()}


def _answers(both, filter_string, order_by):
    out = {}
    for side, (uri, exp_id, run_id, labels) in both.items():
        mlflow.set_tracking_uri(uri)
        f = filter_string
        if f:
            f = f.replace("RUN_ID", f"run_id = '{run_id}'").replace("RUN_NE", f"run_id != '{run_id}'")
            f = f.replace("ISSUE_ID", ISSUE_IDS[uri])
        out[side] = _search(exp_id, labels, f, order_by)
    return out


@pytest.mark.parametrize("filter_string", FILTERS)
def test_filter_matches_reference(both, filter_string):
    answers = _answers(both, filter_string, None)
    assert answers["ours"] == answers["ref"], answers


@pytest.mark.parametrize("order_by", ORDERS, ids=lambda o: ",".join(o))
def test_order_matches_reference(both, order_by):
    answers = _answers(both, None, order_by)
    assert answers["ours"] == answers["ref"], answers


@pytest.mark.parametrize("order_by", [None, ["tags.team ASC"], ["metadata.`mlflow.trace.session` DESC"]])
def test_pages_walk_all_traces_in_order(both, order_by):
    uri, exp_id, _, labels = both["ours"]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    seen, token = [], None
    while True:
        page = client.search_traces(locations=[exp_id], max_results=2, page_token=token, include_spans=False,
                                    order_by=order_by)
        seen += [labels[t.info.trace_id] for t in page]
        token = page.token
        if not token:
            break
    assert seen == _answers(both, None, order_by)["ref"]


@pytest.mark.parametrize("filter_string, expected", [
    ("issue.id = 'ISSUE_ID'", ["gamma"]),
    ("feedback.session_ok = 'yes'", ["delta", "alpha"]),  # delta through alpha's session
    ("span.name = 'retrieve' AND span.type = 'LLM'", []),  # no single span is both
    ("prompt = 'greeting/1'", ["gamma", "alpha"]),
])
def test_new_filters_find_what_they_should(both, filter_string, expected):
    answers = _answers(both, filter_string, None)
    assert answers["ours"] == answers["ref"] == expected, answers


@pytest.mark.parametrize("filter_string", [
    "feedback.score > 'a'",
    "feedback.score = 5",
    "span.name = 5",
    "span.foo = 'x'",
    "span.attributes. = 'x'",
    "issue.id != 'x'",
    "issue.title = 'x'",
    "prompt = 'greeting'",
    "prompt != 'greeting/1'",
    "metadata.`mlflow.trace.tokenUsage` LIKE '%1%'",
])
def test_error_messages_match_reference(both, filter_string):
    messages = {}
    for side, (uri, exp_id, _, _) in both.items():
        mlflow.set_tracking_uri(uri)
        with pytest.raises(MlflowException) as err:
            mlflow.search_traces(locations=[exp_id], filter_string=filter_string, return_type="list")
        messages[side] = (err.value.error_code, err.value.message)
    assert messages["ours"] == messages["ref"]
