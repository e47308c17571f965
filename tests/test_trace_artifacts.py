"""Trace files through the unmodified MLflow 3 client (SQLite and PostgreSQL, local files and
S3): when the client cannot send a trace's spans over OTLP it uploads them as ``traces.json``
under the trace's ``mlflow.artifactLocation`` (our artifacts proxy), because the start-trace
reply carries no ``mlflow.trace.spansLocation=TRACKING_STORE``; every read finds them there,
and deleting, purging or collecting the trace removes the file."""
from __future__ import annotations

import json
import re
import uuid

import mlflow
import pytest
import requests
from sqlalchemy import delete, select

from tests.test_artifacts_client import s3_forge  # noqa: F401  (the S3 forge fixture, proxied and presigned)

SPANS_LOCATION = "mlflow.trace.spansLocation"
PROJECT_PATH = "/demo/mnist"  # project 1 of the seeded forge


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _fallback_trace(client, exp_id: str) -> str:
    """A trace whose spans the client cannot export over OTLP (their names are not strings:
    its OTLP encoder fails before any request), so they reach the server as traces.json."""
    root = client.start_trace(name=1234, experiment_id=exp_id, inputs={"question": "why?"})
    child = client.start_span(name=5678, trace_id=root.trace_id, parent_id=root.span_id, inputs={"x": 1})
    client.end_span(trace_id=child.trace_id, span_id=child.span_id, outputs={"y": 2}, status="OK")
    client.end_trace(trace_id=root.trace_id, outputs="because", status="OK")
    mlflow.flush_trace_async_logging()
    return root.trace_id


def _artifacts(live) -> str:
    return live.tracking_uri(1) + "/api/2.0/mlflow-artifacts/artifacts"


def _stored_file(live, trace_id):
    """The traces.json row of the trace (None when there is none), read in the app."""
    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Experiment, Trace
    from gl_ml_tracking.services import trace_files

    with live.app.app_context():
        session = get_state(live.app).session
        iid = session.scalar(select(Experiment.iid).join(Trace, Trace.experiment_id == Experiment.id)
                             .where(Trace.project_id == "1", Trace.trace_id == trace_id))
        file = trace_files.data_file(session, "1", iid, trace_id) if iid is not None else None
        key = file.storage_key if file is not None else None
        session.remove()
    return key


def _storage_has(live, key) -> bool:
    from gl_ml_tracking import get_state

    with live.app.app_context():
        return get_state(live.app).get_storage().exists(key)


def test_client_fallback_lands_spans_and_every_read_finds_them(forge, mlflow_client):
    exp_id = mlflow_client.create_experiment(f"fallback-{uuid.uuid4().hex[:8]}")
    trace_id = _fallback_trace(mlflow_client, exp_id)
    api = forge.tracking_uri(1) + "/api/3.0/mlflow/"
    h = _auth(forge.owner_token)

    info = requests.get(api + f"traces/{trace_id}", headers=h).json()["trace"]["trace_info"]
    assert SPANS_LOCATION not in info["tags"]
    root = f"ml_experiment_{exp_id}/traces/{trace_id}/artifacts"
    assert info["tags"]["mlflow.artifactLocation"] == f"mlflow-artifacts:/{root}"
    listed = requests.get(_artifacts(forge), params={"path": root}, headers=h).json()["files"]
    assert [f["path"] for f in listed] == ["traces.json"]
    uploaded = requests.get(f"{_artifacts(forge)}/{root}/traces.json", headers=h)
    assert uploaded.status_code == 200 and len(json.loads(uploaded.content)["spans"]) == 2

    # The client reads traces.json back itself (get_trace, search_traces with spans)...
    trace = mlflow.get_trace(trace_id)
    assert [str(s.name) for s in trace.data.spans] == ["1234", "5678"]
    found = mlflow.search_traces(locations=[exp_id], return_type="list")
    assert [len(t.data.spans) for t in found] == [2]

    # ...and the server's own reads convert it: traces/get and batchGet as the client parses them.
    store = mlflow_client._tracking_client.store
    for served in (store.get_trace(trace_id), store.batch_get_traces([trace_id])[0]):
        by_name = {s.name: s for s in served.data.spans}
        assert set(by_name) == {"1234", "5678"}
        assert by_name["1234"].inputs == {"question": "why?"} and by_name["1234"].outputs == "because"
        assert by_name["5678"].inputs == {"x": 1} and by_name["5678"].outputs == {"y": 2}
        assert by_name["5678"].parent_id == by_name["1234"].span_id
        assert [s.status.status_code.value for s in served.data.spans] == ["OK", "OK"]

    # MLflow's UI download answers the uploaded file as it is.
    download = requests.get(forge.tracking_uri(1) + "/ajax-api/2.0/mlflow/get-trace-artifact",
                            params={"request_id": trace_id}, headers=h)
    assert download.status_code == 200 and download.content == uploaded.content

    # The trace page and a span's page show the spans.
    from tests.support.ui_seed import sign_in

    browser = forge.app.test_client()
    sign_in(browser)
    page = browser.get(f"{PROJECT_PATH}/-/ml/traces/{trace_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "1234" in html and "5678" in html
    child_id = {s.name: s for s in trace.data.spans}[5678].span_id
    span_page = browser.get(f"{PROJECT_PATH}/-/ml/traces/{trace_id}/spans/{child_id}?fragment=1")
    assert span_page.status_code == 200 and "&#34;y&#34;: 2" in span_page.get_data(as_text=True).replace("&quot;", "&#34;")


def test_spans_sent_over_otlp_say_tracking_store(forge, mlflow_client):
    mlflow.set_experiment(f"otlp-{uuid.uuid4().hex[:8]}")

    @mlflow.trace
    def add(a, b):
        return a + b

    add(1, 2)
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    info = requests.get(forge.tracking_uri(1) + f"/api/3.0/mlflow/traces/{trace_id}",
                        headers=_auth(forge.owner_token)).json()["trace"]["trace_info"]
    assert info["tags"][SPANS_LOCATION] == "TRACKING_STORE"
    assert [s.name for s in mlflow.get_trace(trace_id).data.spans] == ["add"]


def test_trace_files_are_scoped_to_their_project_and_trace(forge, mlflow_client):
    exp_id = mlflow_client.create_experiment(f"scoped-{uuid.uuid4().hex[:8]}")
    trace_id = _fallback_trace(mlflow_client, exp_id)
    other_exp = mlflow_client.create_experiment(f"other-{uuid.uuid4().hex[:8]}")
    h = _auth(forge.owner_token)
    root = f"ml_experiment_{exp_id}/traces/{trace_id}/artifacts"
    other_project = forge.tracking_uri(2) + "/api/2.0/mlflow-artifacts/artifacts"
    for method in ("GET", "PUT"):
        resp = requests.request(method, f"{other_project}/{root}/traces.json", data=b"{}", headers=h)
        assert resp.status_code == 404 and resp.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", (method, resp.text)
    for url, params in ((forge.tracking_uri(2) + "/ajax-api/2.0/mlflow/get-trace-artifact", {"request_id": trace_id}),
                        (forge.tracking_uri(2) + "/api/3.0/mlflow/traces/get", {"trace_id": trace_id})):
        assert requests.get(url, params=params, headers=h).status_code == 404
    # In this project: not under another experiment, not for a trace that does not exist,
    # and nothing outside the trace's own directory.
    missing = "tr-" + uuid.uuid4().hex
    refused = [
        f"ml_experiment_{other_exp}/traces/{trace_id}/artifacts/traces.json",
        f"ml_experiment_{exp_id}/traces/{missing}/artifacts/traces.json",
        f"ml_experiment_{exp_id}/traces/{trace_id}/elsewhere/traces.json",
        f"ml_experiment_{exp_id}/traces/{trace_id}/artifacts/%2e%2e/%2e%2e/1/x.txt",
    ]
    for path in refused:
        resp = requests.put(f"{_artifacts(forge)}/{path}", data=b"{}", headers=h)
        assert resp.status_code in (400, 404) and "error_code" in resp.json(), (path, resp.status_code)
    attachment = requests.get(forge.tracking_uri(1) + "/ajax-api/2.0/mlflow/get-trace-artifact",
                              params={"request_id": trace_id, "path": "../traces.json"}, headers=h)
    assert attachment.status_code == 400 and attachment.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_deleting_traces_removes_their_files(forge, mlflow_client):
    exp_id = mlflow_client.create_experiment(f"delete-{uuid.uuid4().hex[:8]}")
    gone, kept = _fallback_trace(mlflow_client, exp_id), _fallback_trace(mlflow_client, exp_id)
    gone_key, kept_key = _stored_file(forge, gone), _stored_file(forge, kept)
    assert _storage_has(forge, gone_key) and _storage_has(forge, kept_key)

    assert mlflow_client.delete_traces(exp_id, trace_ids=[gone]) == 1
    assert not _storage_has(forge, gone_key) and _storage_has(forge, kept_key)
    resp = requests.get(f"{_artifacts(forge)}/ml_experiment_{exp_id}/traces/{gone}/artifacts/traces.json",
                        headers=_auth(forge.owner_token))
    assert resp.status_code == 404
    assert [str(s.name) for s in mlflow.get_trace(kept).data.spans] == ["1234", "5678"]

    assert mlflow_client.delete_traces(exp_id, max_timestamp_millis=2**62) == 1
    assert not _storage_has(forge, kept_key)


def test_purging_the_experiment_removes_its_trace_files(forge, mlflow_client):
    from tests.support.ui_seed import sign_in

    exp_id = mlflow_client.create_experiment(f"purge-{uuid.uuid4().hex[:8]}")
    key = _stored_file(forge, _fallback_trace(mlflow_client, exp_id))
    mlflow_client.delete_experiment(exp_id)
    browser = forge.app.test_client()
    sign_in(browser)
    token = re.search(r'name="_glml_csrf" value="([^"]+)"',
                      browser.get(f"{PROJECT_PATH}/-/ml/trash").get_data(as_text=True)).group(1)
    purged = browser.post(f"{PROJECT_PATH}/-/ml/trash/experiments/{exp_id}/purge", data={"_glml_csrf": token})
    assert purged.status_code == 303
    assert not _storage_has(forge, key)


def test_gc_removes_files_of_traces_deleted_behind_its_back(forge, mlflow_client):
    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Span, Trace, TraceMetadata, TraceTag

    exp_id = mlflow_client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}")
    gone, kept = _fallback_trace(mlflow_client, exp_id), _fallback_trace(mlflow_client, exp_id)
    gone_key, kept_key = _stored_file(forge, gone), _stored_file(forge, kept)
    with forge.app.app_context():
        session = get_state(forge.app).session
        pk = session.scalar(select(Trace.id).where(Trace.project_id == "1", Trace.trace_id == gone))
        for model in (Span, TraceTag, TraceMetadata):  # a bulk delete bypassing the services
            session.execute(delete(model).where(model.trace_pk == pk))
        session.execute(delete(Trace).where(Trace.id == pk))
        session.commit()
        session.remove()

    runner = forge.app.test_cli_runner()
    dry = runner.invoke(args=["ml-tracking", "gc", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"ml_experiment_{exp_id}/{gone}" in dry.output and kept not in dry.output
    assert _storage_has(forge, gone_key)
    done = runner.invoke(args=["ml-tracking", "gc", "-q"])
    assert done.exit_code == 0, done.output
    assert not _storage_has(forge, gone_key) and _storage_has(forge, kept_key)


@pytest.mark.s3
def test_trace_files_in_s3(s3_forge, monkeypatch):  # noqa: F811
    from mlflow.tracking import MlflowClient

    from tests.support.s3_server import apply_s3_env

    apply_s3_env(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", s3_forge.tracking_uri(1))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", s3_forge.owner_token)
    mlflow.set_tracking_uri(s3_forge.tracking_uri(1))
    client = MlflowClient()
    exp_id = client.create_experiment(f"s3-{uuid.uuid4().hex[:8]}")
    trace_id = _fallback_trace(client, exp_id)
    key = _stored_file(s3_forge, trace_id)
    assert key is not None and _storage_has(s3_forge, key)
    assert [str(s.name) for s in mlflow.get_trace(trace_id).data.spans] == ["1234", "5678"]
    assert [s.name for s in client._tracking_client.store.get_trace(trace_id).data.spans] == ["1234", "5678"]
    assert client.delete_traces(exp_id, trace_ids=[trace_id]) == 1
    assert not _storage_has(s3_forge, key)


def test_traces_json_in_mlflow_2_span_schema_is_read(forge, mlflow_client):
    """An older client starts a trace with the v2 call and uploads MLflow 2's span dicts
    (``context``, ``0x`` hex ids, ``status_code``); traces/get answers them as OTLP spans."""
    exp_id = mlflow_client.create_experiment(f"v2-schema-{uuid.uuid4().hex[:8]}")
    h = _auth(forge.owner_token)
    started = requests.post(forge.tracking_uri(1) + "/api/2.0/mlflow/traces", headers=h,
                            json={"experiment_id": exp_id, "timestamp_ms": 1_700_000_000_000})
    trace_id = started.json()["trace_info"]["request_id"]
    hex_id = "0x" + trace_id.removeprefix("tr-")
    request_id = json.dumps(trace_id)
    spans = [
        {"name": "root", "context": {"trace_id": hex_id, "span_id": "0x00000000000000aa"}, "parent_id": None,
         "start_time": 1_700_000_000_000_000_000, "end_time": 1_700_000_000_250_000_000, "status_code": "OK",
         "status_message": "", "events": [],
         "attributes": {"mlflow.traceRequestId": request_id, "mlflow.spanType": '"CHAIN"',
                        "mlflow.spanInputs": '{"q": "hi"}', "mlflow.spanOutputs": '"there"'}},
        {"name": "llm", "context": {"trace_id": hex_id, "span_id": "0x00000000000000bb"}, "parent_id": "0x00000000000000aa",
         "start_time": 1_700_000_000_100_000_000, "end_time": 1_700_000_000_200_000_000, "status_code": "ERROR",
         "status_message": "boom", "attributes": {"mlflow.traceRequestId": request_id, "mlflow.spanType": '"LLM"'},
         "events": [{"name": "exception", "timestamp": 1_700_000_000_150_000_000,
                     "attributes": {"exception.message": "boom"}}]},
    ]
    root = started.json()["trace_info"]["tags"]
    location = {t["key"]: t["value"] for t in root}["mlflow.artifactLocation"].split(":/", 1)[1]
    put = requests.put(f"{_artifacts(forge)}/{location}/traces.json", data=json.dumps({"spans": spans}), headers=h)
    assert put.status_code == 200, put.text

    served = mlflow_client._tracking_client.store.get_trace(trace_id)
    by_name = {s.name: s for s in served.data.spans}
    assert by_name["root"].inputs == {"q": "hi"} and by_name["root"].outputs == "there"
    assert by_name["root"].span_type == "CHAIN" and by_name["llm"].span_type == "LLM"
    assert by_name["llm"].parent_id == by_name["root"].span_id == "00000000000000aa"
    assert by_name["llm"].status.status_code.value == "ERROR" and by_name["llm"].status.description == "boom"
    assert [e.name for e in by_name["llm"].events] == ["exception"]
    assert by_name["llm"].events[0].attributes == {"exception.message": "boom"}


def test_a_broken_traces_json_answers_mlflow_errors(forge, mlflow_client):
    from tests.support.ui_seed import sign_in

    exp_id = mlflow_client.create_experiment(f"broken-{uuid.uuid4().hex[:8]}")
    h = _auth(forge.owner_token)
    started = requests.post(forge.tracking_uri(1) + "/api/2.0/mlflow/traces", headers=h, json={"experiment_id": exp_id})
    trace_id = started.json()["trace_info"]["request_id"]
    put = requests.put(f"{_artifacts(forge)}/ml_experiment_{exp_id}/traces/{trace_id}/artifacts/traces.json",
                       data=b'{"spans": [', headers=h)
    assert put.status_code == 200
    for path in ("traces/get", "traces/batchGet"):
        resp = requests.get(forge.tracking_uri(1) + "/api/3.0/mlflow/" + path,
                            params={"trace_id": trace_id, "trace_ids": trace_id}, headers=h)
        assert resp.status_code == 400 and resp.json()["error_code"] == "BAD_REQUEST", (path, resp.text)
    browser = forge.app.test_client()
    sign_in(browser)
    assert browser.get(f"{PROJECT_PATH}/-/ml/traces/{trace_id}").status_code == 400
