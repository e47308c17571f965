"""Big traces through the unmodified MLflow client (SQLite and PostgreSQL): a trace of many
spans, one of them carrying a payload of megabytes, goes in over OTLP and comes back whole
through ``mlflow.get_trace`` and ``search_traces``; the trace page shows its spans a page at a
time; a big span's payload lives in the file storage and goes when its trace is deleted.

The big round trip is ``@pytest.mark.slow``: 1,000 spans and a 3 MB payload by default,
10,000 spans and 50 MB with ``GLML_FULL_SIZE=1`` (the issue's sizes)."""
from __future__ import annotations

import hashlib
import os
import uuid

import mlflow
import pytest
import requests
from sqlalchemy import select

FULL = os.environ.get("GLML_FULL_SIZE") == "1"
SPANS = 10_000 if FULL else 1_000
PAYLOAD_MB = 50 if FULL else 3
PAGE_ROWS = 500  # blueprints/ui/traces.py SPANS_PER_PAGE
ROW_MARK = 'data-testid="span"'


def _text(megabytes: int) -> str:
    """Text of ``megabytes`` MiB that is not one repeated block (every KiB differs)."""
    block = hashlib.sha256(uuid.uuid4().bytes).hexdigest() * 16  # 1 KiB
    return "".join(f"{i:08d}" + block[8:] for i in range(megabytes * 1024))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def roomy_client_queue(monkeypatch, mlflow_client):
    """The client drops spans when its export queue (1,000 tasks) is full; a 10,000-span trace
    is 2,000 exports. A bigger queue, so that every span is sent (the reference server loses
    them the same way with the default)."""
    monkeypatch.setenv("MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE", "100000")
    mlflow.tracing.reset()
    yield mlflow_client
    monkeypatch.delenv("MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE")
    mlflow.tracing.reset()


def _stored_keys(forge, trace_id: str) -> list[str]:
    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Span, Trace

    with forge.app.app_context():  # the app context's end closes the session
        return list(get_state().session.scalars(
            select(Span.payload_key).join(Trace, Trace.id == Span.trace_pk)
            .where(Trace.trace_id == trace_id, Span.payload_key.is_not(None))))


def _storage(forge):
    from gl_ml_tracking import get_state

    return get_state(forge.app).get_storage()


@pytest.mark.slow
def test_big_trace_round_trip(forge, roomy_client_queue):
    exp_id = mlflow.set_experiment(f"big-{uuid.uuid4().hex[:8]}").experiment_id
    payload = _text(PAYLOAD_MB)
    with mlflow.start_span(name="big-root", span_type="CHAIN") as root:
        root.set_inputs({"question": "many spans"})
        for i in range(SPANS - 2):
            with mlflow.start_span(name=f"step-{i}", span_type="TOOL") as span:
                span.set_inputs({"i": i})
                span.set_outputs({"double": 2 * i})
        with mlflow.start_span(name="the-big-one", span_type="LLM") as big:
            big.set_outputs(payload)
        root.set_outputs("done")
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()

    def check(trace):
        assert len(trace.data.spans) == SPANS
        by_name = {s.name: s for s in trace.data.spans}
        out = by_name["the-big-one"].outputs
        assert len(out) == len(payload) and _sha(out) == _sha(payload)
        assert by_name["step-7"].inputs == {"i": 7} and by_name[f"step-{SPANS - 3}"].outputs == {"double": 2 * (SPANS - 3)}
        assert by_name["big-root"].outputs == "done"

    check(mlflow.get_trace(trace_id))
    (found,) = mlflow.search_traces(locations=[exp_id], return_type="list")
    assert found.info.trace_id == trace_id
    check(found)

    # The big span's payload is in the storage, not the row.
    (key,) = _stored_keys(forge, trace_id)
    assert _storage(forge).size(key) > PAYLOAD_MB << 20

    # The trace page: a page of rows at a time, the tree's order across pages.
    page_url = f"{forge.base_url}/demo/mnist/-/ml/traces/{trace_id}"
    first = requests.get(page_url, headers={"Authorization": f"Bearer {forge.owner_token}"})
    assert first.status_code == 200 and first.text.count(ROW_MARK) == PAGE_ROWS
    assert f"{SPANS} spans" in first.text and 'data-testid="next-page"' in first.text
    last_page = -(-SPANS // PAGE_ROWS)
    last = requests.get(page_url, params={"spans_page": last_page}, headers={"Authorization": f"Bearer {forge.owner_token}"})
    assert last.status_code == 200 and last.text.count(ROW_MARK) == SPANS - (last_page - 1) * PAGE_ROWS
    assert 'data-testid="next-page"' not in last.text and "the-big-one" in last.text


def test_stored_payload_goes_with_its_trace(forge, mlflow_client):
    exp_id = mlflow.set_experiment(f"big-del-{uuid.uuid4().hex[:8]}").experiment_id
    payload = _text(2)  # over GL_ML_TRACKING_TRACE_SPAN_INLINE_MAX (1 MiB)
    with mlflow.start_span(name="answer") as span:
        span.set_inputs({"q": "long"})
        span.set_outputs(payload)
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    (key,) = _stored_keys(forge, trace_id)
    storage = _storage(forge)
    assert storage.exists(key)
    # The page shows the span from its row's skeleton: the long output cut, not 2 MB.
    trace = mlflow.get_trace(trace_id)
    assert _sha(trace.data.spans[0].outputs) == _sha(payload)
    fragment = requests.get(f"{forge.base_url}/demo/mnist/-/ml/traces/{trace_id}/spans/{trace.data.spans[0].span_id}",
                            params={"fragment": 1}, headers={"Authorization": f"Bearer {forge.owner_token}"})
    assert fragment.status_code == 200 and payload[:1000] in fragment.text and len(fragment.text) < 200_000
    assert payload[:40] in trace.info.response_preview

    assert mlflow_client.delete_traces(exp_id, trace_ids=[trace_id]) == 1
    assert not storage.exists(key)
    assert _stored_keys(forge, trace_id) == []


def test_gc_keeps_span_payloads_and_removes_orphans(forge, mlflow_client):
    import io

    from gl_ml_tracking import get_state
    from gl_ml_tracking.services.gc import collect_garbage
    from gl_ml_tracking.services.package_storage import new_storage_key

    mlflow.set_experiment(f"big-gc-{uuid.uuid4().hex[:8]}")
    with mlflow.start_span(name="kept") as span:
        span.set_outputs(_text(2))
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    (kept,) = _stored_keys(forge, trace_id)
    storage = _storage(forge)
    orphan = new_storage_key("1")  # as if a worker died between storing a span and committing it
    storage.save(orphan, io.BytesIO(b'{"name":"lost"}'))
    with forge.app.app_context():
        # A negative grace period: every object counts as old enough.
        report = collect_garbage(get_state().session, storage, grace_ms=-60_000)
    assert orphan in report.orphan_objects and kept not in report.orphan_objects
    assert storage.exists(kept) and not storage.exists(orphan)
    assert len(mlflow.get_trace(trace_id).data.spans[0].outputs) == 2 << 20


def test_chunked_otlp_body_is_read_and_limited(forge, mlflow_client):
    """An OTLP exporter may stream its body without a Content-Length (chunked): it is read
    to the end, and refused past GL_ML_TRACKING_MAX_TRACE_BODY like a declared one."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from gl_ml_tracking import get_state

    exp_id = mlflow.set_experiment(f"chunked-{uuid.uuid4().hex[:8]}").experiment_id
    request = ExportTraceServiceRequest()
    trace_bytes = uuid.uuid4().bytes
    span = request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=trace_bytes, span_id=b"\x01" * 8, name="streamed", start_time_unix_nano=1_000_000, end_time_unix_nano=2_000_000)
    span.attributes.add(key="mlflow.spanOutputs").value.string_value = '"' + "y" * 300_000 + '"'
    body = request.SerializeToString()
    headers = {"Authorization": f"Bearer {forge.owner_token}", "Content-Type": "application/x-protobuf",
               "X-MLflow-Experiment-Id": exp_id}
    url = forge.tracking_uri(1) + "/v1/traces"
    resp = requests.post(url, data=iter([body[:1000], body[1000:]]), headers=headers)  # no Content-Length
    assert resp.status_code == 200, resp.text
    trace = mlflow.get_trace("tr-" + trace_bytes.hex())
    # (The client reads back the attribute as sent; it JSON-encodes its own when it writes.)
    assert trace.data.spans[0].name == "streamed" and trace.data.spans[0].outputs.strip('"') == "y" * 300_000

    settings = get_state(forge.app).config
    saved, settings.max_trace_body = settings.max_trace_body, 100_000
    try:
        refused = requests.post(url, data=iter([body[:1000], body[1000:]]), headers=headers)
    finally:
        settings.max_trace_body = saved
    assert refused.status_code == 413 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_retried_big_span_export_keeps_one_stored_copy(forge, mlflow_client):
    """An exporter retries an export whose answer it lost: the span's row is replaced, and the
    payload the first export stored goes with the commit of the second (not left for gc)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    exp_id = mlflow.set_experiment(f"retry-{uuid.uuid4().hex[:8]}").experiment_id
    request = ExportTraceServiceRequest()
    trace_bytes = uuid.uuid4().bytes
    span = request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=trace_bytes, span_id=b"\x02" * 8, name="retried", start_time_unix_nano=1_000_000,
        end_time_unix_nano=2_000_000)
    payload = _text(2)
    span.attributes.add(key="mlflow.spanOutputs").value.string_value = payload
    headers = {"Authorization": f"Bearer {forge.owner_token}", "Content-Type": "application/x-protobuf",
               "X-MLflow-Experiment-Id": exp_id}
    url = forge.tracking_uri(1) + "/v1/traces"
    trace_id = "tr-" + trace_bytes.hex()
    assert requests.post(url, data=request.SerializeToString(), headers=headers).status_code == 200
    (first,) = _stored_keys(forge, trace_id)
    assert requests.post(url, data=request.SerializeToString(), headers=headers).status_code == 200
    (second,) = _stored_keys(forge, trace_id)
    storage = _storage(forge)
    assert second != first and storage.exists(second) and not storage.exists(first)
    assert _sha(mlflow.get_trace(trace_id).data.spans[0].outputs) == _sha(payload)
