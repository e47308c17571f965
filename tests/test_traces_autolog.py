"""An LLM library's autolog sends real traces: ``mlflow.openai.autolog()`` with the
OpenAI client pointed at a small fake OpenAI-compatible server on loopback (SQLite
and PostgreSQL)."""
from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import pytest

openai = pytest.importorskip("openai")


class _FakeOpenAI(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        question = body["messages"][-1]["content"]
        answer = {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"echo: {question}"}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def fake_openai():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    thread.join(timeout=10)


def test_openai_autolog_traces_arrive(forge, mlflow_client, fake_openai):
    exp_id = mlflow.set_experiment(f"autolog-{uuid.uuid4().hex[:8]}").experiment_id
    mlflow.openai.autolog()
    try:
        client = openai.OpenAI(base_url=fake_openai, api_key="not-a-real-key")
        reply = client.chat.completions.create(model="fake-4", messages=[{"role": "user", "content": "hello there"}])
        assert reply.choices[0].message.content == "echo: hello there"
        trace_id = mlflow.get_last_active_trace_id()
        mlflow.flush_trace_async_logging()
    finally:
        mlflow.openai.autolog(disable=True)
    trace = mlflow.get_trace(trace_id)
    assert trace.info.experiment_id == exp_id and trace.info.state.value == "OK"
    (span,) = trace.data.spans
    assert span.span_type == "CHAT_MODEL"
    assert span.inputs["messages"][-1]["content"] == "hello there"
    assert "echo: hello there" in json.dumps(span.outputs)
    assert trace.info.token_usage == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    found = mlflow.search_traces(locations=[exp_id], filter_string="span.type = 'CHAT_MODEL'", return_type="list")
    assert [t.info.trace_id for t in found] == [trace_id]
