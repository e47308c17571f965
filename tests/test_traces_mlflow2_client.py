"""Tracing with the MLflow 2.22 client (its own virtualenv, ``tests/support/mlflow2.py``), on
SQLite and PostgreSQL. A 2.x client traces the v2 way: ``POST traces`` when the root span
starts, then, when it ends, ``traces.json`` through the artifacts proxy to the trace's
``mlflow.artifactLocation`` and ``PATCH traces/<request id>`` with the status, tags and the
inputs/outputs as metadata. The script (``tests/support/mlflow2_traces_script.py``) makes and
reads traces with the 2.x client; here the same traces are read by the 3.17.2 client and the
trace pages."""
from __future__ import annotations

import uuid

import mlflow
import pytest
import requests

from tests.support.mlflow2 import run_script
from tests.support.ui_seed import sign_in

PROJECT_PATH = "/demo/mnist"  # project 1 of the seeded forge
RETRIEVE = {"name": "retrieve", "type": "RETRIEVER", "parent": "answer", "inputs": {"q": "6x7?"},
            "outputs": ["doc-1", "doc-2"], "status": "OK", "message": "", "events": [], "k": "v"}
EXCEPTION = ["exception", {"exception.type": "ValueError", "exception.message": "bad input",
                           "exception.escaped": "False"}]


def _otel_release(text: str) -> tuple:
    return tuple(int(part) for part in text.split(".")[:2])


@pytest.fixture(scope="module")
def v2(forge):
    """The facts of one run of the 2.x script (its traces stay for the tests below)."""
    facts = run_script(forge, "mlflow2_traces_script.py", f"v2-traces-{uuid.uuid4().hex[:8]}")
    assert facts["version"].startswith("2.22."), facts["version"]
    assert _otel_release(facts["otel_sdk"]) < (1, 45), (
        f"opentelemetry-sdk {facts['otel_sdk']} in the 2.x venv: MLflow 2.22 exports no trace with 1.45 or later "
        "(rebuild it with `make mlflow2`, which pins a release it works with)")
    return facts


def _without_ids(spans):
    return [{k: v for k, v in s.items() if k != "span_id"} for s in spans]


def test_the_2x_client_reads_its_spans_back(v2):
    ok = v2["read"]["ok"]
    assert ok["status"] == "OK"
    assert _without_ids(ok["spans"]) == [
        {"name": "answer", "type": "CHAIN", "parent": None, "inputs": {"question": "6x7?"}, "outputs": "42",
         "status": "OK", "message": "", "events": [], "k": None},
        RETRIEVE,
    ]
    assert ok["tags"]["mlflow.traceName"] == "answer"
    experiment_dir = f"ml_experiment_{v2['experiment_id']}"
    assert ok["tags"]["mlflow.artifactLocation"] == f"mlflow-artifacts:/{experiment_dir}/traces/{v2['ids']['ok']}/artifacts"
    assert ok["metadata"]["mlflow.traceInputs"] == '{"question": "6x7?"}'
    assert ok["metadata"]["mlflow.traceOutputs"] == '"42"'
    manual = v2["read"]["manual"]  # MlflowClient().start_trace / start_span / end_span / end_trace
    assert [(s["name"], s["parent"], s["inputs"], s["outputs"]) for s in manual["spans"]] == [
        ("manual", None, {"a": 1}, {"d": 4}), ("step", "manual", {"b": 2}, {"c": 3})]


def test_an_exception_inside_a_span_reads_back_as_errors(v2):
    error = v2["read"]["error"]
    assert error["status"] == "ERROR"
    assert [(s["name"], s["parent"], s["status"], s["message"], s["events"]) for s in error["spans"]] == [
        ("boom", None, "ERROR", "ValueError: bad input", [EXCEPTION]),
        ("fails", "boom", "ERROR", "ValueError: bad input", [EXCEPTION]),
    ]


def test_tags_search_and_delete_from_the_2x_client(v2, forge):
    ids = v2["ids"]
    assert v2["tag_set"] == "search" and v2["tag_search"] == [ids["ok"]]
    assert v2["tag_deleted"] is False
    assert v2["search_error"] == [ids["error"]]
    assert v2["search_run"] == [ids["run"]]  # metadata.mlflow.sourceRun, set inside start_run
    # mlflow.search_traces (a DataFrame) downloads every trace's traces.json.
    assert v2["search_frame"] == [[ids[k], 2] for k in ("ok", "error", "run", "manual")]
    assert v2["deleted"] == 1 and v2["after_delete"] == "RESOURCE_DOES_NOT_EXIST"
    assert v2["left"] == sorted([ids["ok"], ids["error"], ids["run"]])
    # The deleted trace's traces.json went with it; a kept one is still there.
    artifacts = forge.tracking_uri(1) + f"/api/2.0/mlflow-artifacts/artifacts/ml_experiment_{v2['experiment_id']}/traces"
    auth = {"Authorization": f"Bearer {forge.owner_token}"}
    assert requests.get(f"{artifacts}/{ids['manual']}/artifacts/traces.json", headers=auth).status_code == 404
    assert requests.get(f"{artifacts}/{ids['ok']}/artifacts/traces.json", headers=auth).status_code == 200


def test_the_2x_client_keeps_assessments_to_databricks(v2):
    # 2.22's log_feedback refuses any server but Databricks before sending a request.
    assert v2["feedback"].startswith("MlflowException: This API is currently only available for Databricks")


def test_the_3x_client_reads_the_2x_traces(v2, mlflow_client):
    ids = v2["ids"]
    trace = mlflow.get_trace(ids["ok"])
    assert trace.info.trace_id == ids["ok"] and trace.info.state.value == "OK"
    # The previews come from the metadata of the v2 end call.
    assert trace.info.request_preview == '{"question": "6x7?"}' and trace.info.response_preview == '"42"'
    by_name = {s.name: s for s in trace.data.spans}
    assert by_name["retrieve"].inputs == {"q": "6x7?"} and by_name["retrieve"].outputs == ["doc-1", "doc-2"]
    assert by_name["retrieve"].parent_id == by_name["answer"].span_id
    assert by_name["retrieve"].span_type == "RETRIEVER" and by_name["retrieve"].get_attribute("k") == "v"
    # The server's own reads (traces/get) convert the 2.x traces.json to spans.
    served = mlflow_client._tracking_client.store.get_trace(ids["error"])
    assert [(s.name, s.status.status_code.value, s.status.description) for s in served.data.spans] == [
        ("boom", "ERROR", "ValueError: bad input"), ("fails", "ERROR", "ValueError: bad input")]
    assert [e.attributes["exception.message"] for e in served.data.spans[1].events] == ["bad input"]
    found = mlflow.search_traces(locations=[v2["experiment_id"]], return_type="list", order_by=["timestamp_ms ASC"])
    assert [(t.info.trace_id, len(t.data.spans)) for t in found] == [(ids[k], 2) for k in ("ok", "error", "run")]


def test_the_trace_pages_show_the_2x_spans(v2, forge):
    ids, browser = v2["ids"], forge.app.test_client()
    sign_in(browser)
    listing = browser.get(f"{PROJECT_PATH}/-/ml/experiments/{v2['experiment_id']}/traces").get_data(as_text=True)
    assert ids["ok"] in listing and "6x7?" in listing
    page = browser.get(f"{PROJECT_PATH}/-/ml/traces/{ids['ok']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "answer" in html and "retrieve" in html and "6x7?" in html
    fails = next(s for s in v2["read"]["error"]["spans"] if s["name"] == "fails")
    span_page = browser.get(f"{PROJECT_PATH}/-/ml/traces/{ids['error']}/spans/{fails['span_id'].removeprefix('0x')}"
                            "?fragment=1")
    fragment = span_page.get_data(as_text=True)
    assert span_page.status_code == 200 and 'data-testid="span-exception"' in fragment and "bad input" in fragment
