"""examples/gunicorn_conf.py replaces gunicorn's request-body ``read``: it must
return exactly the bytes gunicorn's own reader returns, for every read pattern, and
an upload through a gunicorn started with it must store the bytes sent."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import random

import pytest
import requests

from gunicorn.http.body import Body, ChunkedReader, EOFReader, LengthReader
from gunicorn.http.unreader import IterUnreader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_conf():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", os.path.join(ROOT, "examples", "gunicorn_conf.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pieces(data: bytes, rng: random.Random) -> list[bytes]:
    """The body as a socket would deliver it: pieces of random sizes."""
    out, i = [], 0
    while i < len(data):
        n = rng.choice([1, 7, 1024, 8192, 65536, 300_000])
        out.append(data[i:i + n])
        i += n
    return out


def read_all(body: Body, sizes: list) -> list[bytes]:
    got = []
    for size in sizes:
        got.append(body.read(size))
    while chunk := body.read(65536):
        got.append(chunk)
    return got


@pytest.mark.parametrize("seed", range(6))
def test_fast_read_matches_gunicorns_reader(seed):
    conf = load_conf()
    rng = random.Random(seed)
    data = rng.randbytes(rng.choice([0, 1, 5000, 1_500_000]))
    sizes = [rng.choice([None, -1, 0, 1, 10, 1023, 1024, 4096, 70_000, 2 ** 20, 5 * 2 ** 20]) for _ in range(8)]
    # A body trailed by the next pipelined request: the length reader must stop at the body's end.
    wire = pieces(data + b"GET /next HTTP/1.1\r\n", rng)

    def fresh(fast: bool) -> Body:
        body = Body(LengthReader(IterUnreader(list(wire)), len(data)))
        if fast:
            body.read = conf._fast_body_read.__get__(body)
        return body

    theirs, ours = read_all(fresh(False), sizes), read_all(fresh(True), sizes)
    assert b"".join(ours) == data
    assert [len(x) for x in ours] == [len(x) for x in theirs]
    assert ours == theirs


def test_fast_read_on_eof_and_chunked_bodies():
    conf = load_conf()
    data = random.Random(1).randbytes(300_000)
    body = Body(EOFReader(IterUnreader(pieces(data, random.Random(2)))))
    body.read = conf._fast_body_read.__get__(body)
    assert body.read(100) == data[:100] and body.read() == data[100:] and body.read(10) == b""

    class Req:  # what ChunkedReader needs of the request: somewhere for trailers
        trailers = []
        cfg = None
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces(data, random.Random(3))) + b"0\r\n\r\n"
    try:
        reader = ChunkedReader(Req(), IterUnreader([chunked]))
    except Exception as exc:  # noqa: BLE001 - the constructor's needs differ between gunicorn versions
        pytest.skip(f"ChunkedReader could not be built outside a request here: {exc}")
    body = Body(reader)
    body.read = conf._fast_body_read.__get__(body)
    assert body.read(2 ** 20) == data


@pytest.mark.slow
def test_upload_through_gunicorn_with_the_conf(tmp_path):
    """A 24 MB artifact PUT through gunicorn started with the conf comes back byte-identical,
    whole and as a range."""
    from tests.support.procserver import OWNER_TOKEN, ServerProcess, prepare_database, server_env

    env = server_env(f"sqlite:///{tmp_path / 'forge.db'}", str(tmp_path / "storage"))
    prepare_database(env)
    blob = random.Random(5).randbytes(24 * 2 ** 20)
    proc = ServerProcess(env, workers=2, threads=2, log_path=str(tmp_path / "gunicorn.log")).start()
    try:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {OWNER_TOKEN}"
        api = proc.tracking_uri() + "/api/2.0/mlflow/"
        exp = s.post(api + "experiments/create", json={"name": "gconf"}).json()["experiment_id"]
        run = s.post(api + "runs/create", json={"experiment_id": exp}).json()["run"]["info"]
        path = run["artifact_uri"].split("mlflow-artifacts:/", 1)[1] + "/blob.bin"
        url = proc.tracking_uri() + "/api/2.0/mlflow-artifacts/artifacts/" + path
        put = s.put(url, data=blob)
        assert put.status_code == 200, put.text[:300]
        got = s.get(url)  # the whole file: gunicorn's sendfile, sized by Content-Length
        assert got.status_code == 200 and int(got.headers["Content-Length"]) == len(blob)
        assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(blob).hexdigest()
        part = s.get(url, headers={"Range": "bytes=1000000-1999999"})  # a range: stops at its end
        assert part.status_code == 206 and part.content == blob[1_000_000:2_000_000]
    finally:
        proc.stop()


def test_traces_through_gunicorn_with_the_conf(tmp_path, monkeypatch):
    """The MLflow client's span export (OTLP protobuf to /v1/traces) through gunicorn: its
    request body is read by gunicorn's own reader, not werkzeug's (a read that only worked
    under werkzeug once answered every export 500 there)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.tracing.provider import reset

    from tests.support.procserver import OWNER_TOKEN, ServerProcess, prepare_database, server_env

    env = server_env(f"sqlite:///{tmp_path / 'forge.db'}", str(tmp_path / "storage"))
    prepare_database(env)
    proc = ServerProcess(env, workers=2, threads=2, log_path=str(tmp_path / "gunicorn.log")).start()
    try:
        uri = proc.tracking_uri()
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", OWNER_TOKEN)
        monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        mlflow.set_tracking_uri(uri)
        reset()
        exp = MlflowClient(uri).create_experiment("gconf-traces")
        mlflow.set_experiment(experiment_id=exp)

        @mlflow.trace
        def child(x):
            return x * 2

        @mlflow.trace
        def parent(x):
            return child(x) + child(x + 1)

        assert parent(3) == 14
        trace_id = mlflow.get_last_active_trace_id()
        trace = MlflowClient(uri).get_trace(trace_id)
        assert sorted(s.name for s in trace.data.spans) == ["child", "child", "parent"]
        assert trace.info.state.value == "OK"
        assert any(s.outputs == 14 for s in trace.data.spans)
        # Stored from the OTLP export, not from the traces.json the client falls back to
        # uploading when the export fails.
        assert trace.info.tags.get("mlflow.trace.spansLocation") == "TRACKING_STORE", trace.info.tags
    finally:
        proc.stop()
        reset()


class _FakeWorker:
    class log:  # noqa: N801 - stands in for gunicorn's logger
        @staticmethod
        def debug(*_args):
            pass


@pytest.mark.parametrize("setting, frozen", [("1", True), ("0", False)])
def test_worker_init_freezes_startup_objects(monkeypatch, setting, frozen):
    """Once the app is loaded, each worker moves what exists out of the collector's
    reach (GLML_GUNICORN_GC_FREEZE=0 turns it off)."""
    import gc

    conf = load_conf()
    monkeypatch.setenv("GLML_GUNICORN_FAST_BODY", "0")  # leave gunicorn's reader alone in this process
    monkeypatch.setenv("GLML_GUNICORN_GC_FREEZE", setting)
    gc.unfreeze()
    try:
        conf.post_worker_init(_FakeWorker())
        assert (gc.get_freeze_count() > 1000) is frozen, gc.get_freeze_count()
    finally:
        gc.unfreeze()
    assert Body.read is not conf._fast_body_read
