"""Load and faults on the production setup: gunicorn (examples/gunicorn_conf.py) on
PostgreSQL with S3 (a moto server process), concurrent clients logging metric points
(log_batch and log_metric, retrying 503s and dropped connections as the MLflow client
does), while workers are SIGKILLed, every database connection is terminated and the S3
server is stopped and started again. Every acknowledged point must be stored exactly
once, and every artifact acknowledged once S3 is back must read back byte for byte.

Sized for CI by default; ``make soak`` (GLML_SOAK_FULL=1) runs the issue's size: 32
clients × 2,000 points. The figures print at the end (docs/RELIABILITY.md has a run's)."""
from __future__ import annotations

import hashlib
import os
import random
import signal
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import boto3
import psutil
import pytest
import requests

from tests.support.livedb import fresh_database
from tests.support.procserver import OWNER_TOKEN, ServerProcess, prepare_database, server_env
from tests.support.s3_server import S3_TEST_ENV, apply_s3_env, start_moto_server, stop_moto_server

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]

FULL = os.environ.get("GLML_SOAK_FULL") == "1"
CLIENTS = int(os.environ.get("GLML_SOAK_CLIENTS", 32 if FULL else 4))
POINTS = int(os.environ.get("GLML_SOAK_POINTS", 2000 if FULL else 300))
KILLS = int(os.environ.get("GLML_SOAK_KILLS", 9 if FULL else 3))
BATCH = 20  # points per log_batch; every fifth call is a log_metric instead


class Client:
    """Raw REST with the MLflow client's retry policy: a 503 or a lost connection is
    retried (honouring Retry-After, capped); whatever else is final."""

    def __init__(self, base: str, stats: "Stats") -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {OWNER_TOKEN}"
        self.stats = stats

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        for attempt in range(60):
            started = time.perf_counter()
            try:
                answer = self.http.request(method, self.base + path, timeout=60, **kwargs)
            except requests.ConnectionError:
                self.stats.add("connection error", time.perf_counter() - started)
                self.http.close()
                time.sleep(min(0.05 * (attempt + 1), 1))  # backoff before the resend
                continue
            self.stats.add(answer.status_code, time.perf_counter() - started)
            if answer.status_code != 503:
                return answer
            time.sleep(min(float(answer.headers.get("Retry-After", 1)), 0.5))
        raise AssertionError(f"{method} {path}: no answer after 60 attempts")


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.latencies: list[float] = []

    def add(self, status, seconds: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(seconds)


def _workers(server: ServerProcess) -> list[psutil.Process]:
    return psutil.Process(server.process.pid).children()


def _terminate_connections(url: str) -> int:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        name = urlparse(dsn).path.lstrip("/")
        rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall()
    return len(rows)


def test_soak(moto_endpoint, tmp_path, monkeypatch):
    apply_s3_env(monkeypatch)
    bucket = f"glml-soak-{uuid.uuid4().hex[:8]}"
    moto = {}
    moto["endpoint"], moto["proc"] = start_moto_server()
    boto3.client("s3", endpoint_url=moto["endpoint"], region_name="us-east-1").create_bucket(Bucket=bucket)
    try:
        with fresh_database("postgresql", str(tmp_path)) as url:
            env = server_env(url, str(tmp_path / "unused"), {
                **S3_TEST_ENV, "GL_ML_TRACKING_STORAGE": "s3", "GL_ML_TRACKING_S3_BUCKET": bucket,
                "GL_ML_TRACKING_S3_ENDPOINT_URL": moto["endpoint"], "GL_ML_TRACKING_S3_REGION": "us-east-1",
                "GL_ML_TRACKING_RETRY_AFTER": "1"})
            prepare_database(env)
            server = ServerProcess(env, workers=2, threads=4, log_path=str(tmp_path / "gunicorn.log")).start()
            try:
                run_soak(server, url, moto, bucket)
            finally:
                server.stop()
    finally:
        stop_moto_server(moto["proc"])


def run_soak(server: ServerProcess, url: str, moto: dict, bucket: str) -> None:
    stats = Stats()
    api = "/api/2.0/mlflow"
    setup = Client(server.tracking_uri(), stats)
    exp = setup.call("POST", f"{api}/experiments/create", json={"name": "soak"}).json()["experiment_id"]
    runs = [setup.call("POST", f"{api}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]
            for _ in range(CLIENTS)]
    acknowledged: dict[str, set] = {r["run_id"]: set() for r in runs}
    loading_done = threading.Event()

    def client(no: int) -> None:
        run_id = runs[no]["run_id"]
        c = Client(server.tracking_uri(), stats)
        sent, call = 0, 0
        while sent < POINTS:
            call += 1
            if call % 5 == 0:
                point = (f"m{no}", sent * 0.5, 1_000 + sent, sent)
                answer = c.call("POST", f"{api}/runs/log-metric", json=dict(
                    run_id=run_id, key=point[0], value=point[1], timestamp=point[2], step=point[3]))
                points = [point]
            else:
                points = [(f"m{no}", (sent + i) * 0.5, 1_000 + sent + i, sent + i) for i in range(BATCH)]
                answer = c.call("POST", f"{api}/runs/log-batch", json={"run_id": run_id, "metrics": [
                    {"key": k, "value": v, "timestamp": t, "step": s} for k, v, t, s in points]})
            assert answer.status_code == 200, answer.text
            acknowledged[run_id].update(points)
            sent += len(points)

    faults = Counter()
    storage_back_at: list[float] = []

    def fault_injector() -> None:
        rng = random.Random(7)
        pace = threading.Event()  # pacing between faults (not synchronisation): wait on an event never set
        for k in range(KILLS):
            pace.wait(0.7)
            workers = _workers(server)
            if workers:
                rng.choice(workers).send_signal(signal.SIGKILL)
                faults["worker SIGKILL"] += 1
            if k in (KILLS // 2, KILLS - 1):
                faults["pg connections terminated"] += _terminate_connections(url)
        # The storage goes away and comes back (moto forgets its buckets: given it again).
        stop_moto_server(moto["proc"])
        faults["S3 stopped and restarted"] += 1
        pace.wait(1.0)
        moto["endpoint"], moto["proc"] = start_moto_server(port=urlparse(moto["endpoint"]).port)
        boto3.client("s3", endpoint_url=moto["endpoint"], region_name="us-east-1").create_bucket(Bucket=bucket)
        storage_back_at.append(time.monotonic())

    artifacts: dict[str, str] = {}

    def uploader() -> None:
        """Uploads an artifact again and again through the outage: each one acknowledged
        after the storage came back must read back exactly."""
        c = Client(server.tracking_uri(), stats)
        base = "/api/2.0/mlflow-artifacts/artifacts/" + runs[0]["artifact_uri"].split(":/", 1)[1]
        n = 0
        pace = threading.Event()

        def upload_one(keep: bool) -> None:
            nonlocal n
            n += 1
            data = os.urandom(256 * 1024 + n)
            answer = c.call("PUT", f"{base}/file-{n}.bin", data=data)
            assert answer.status_code == 200, answer.text
            if keep:
                artifacts[f"{base}/file-{n}.bin"] = hashlib.sha256(data).hexdigest()

        while not loading_done.is_set():
            upload_one(keep=bool(storage_back_at))
            pace.wait(0.2)  # pacing, not synchronisation
        if storage_back_at:
            upload_one(keep=True)  # at least one once the storage is back

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS + 2) as pool:
        injector = pool.submit(fault_injector)
        upload = pool.submit(uploader)
        loaders = [pool.submit(client, no) for no in range(CLIENTS)]
        try:
            for future in loaders:
                future.result()
            injector.result()
        finally:
            loading_done.set()  # the uploader stops, whatever happened
        upload.result()
    elapsed = time.monotonic() - started

    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as db:
        rows = db.execute("SELECT r.run_uuid, m.key, m.value, m.timestamp, m.step FROM glml_metrics m "
                          "JOIN glml_runs r ON r.id = m.run_id").fetchall()
    stored: dict[str, Counter] = {rid: Counter() for rid in acknowledged}
    for run_uuid, key, value, ts, step in rows:
        stored[run_uuid][(key, value, ts, step)] += 1
    missing = sum(len(points - set(stored[rid])) for rid, points in acknowledged.items())
    duplicates = sum(n - 1 for counts in stored.values() for n in counts.values() if n > 1)
    acked = sum(len(points) for points in acknowledged.values())
    check = Client(server.tracking_uri(), stats)
    bad_artifacts = [path for path, sha in artifacts.items()
                     if hashlib.sha256(check.call("GET", path).content).hexdigest() != sha]
    latencies = sorted(stats.latencies)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"\nsoak: {CLIENTS} clients x {POINTS} points in {elapsed:.1f}s; faults {dict(faults)}; "
          f"acknowledged {acked}, stored {len(rows)}, missing {missing}, duplicates {duplicates}; "
          f"artifacts verified {len(artifacts)} (bad {len(bad_artifacts)}); statuses {dict(stats.statuses)}; "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    assert acked >= CLIENTS * POINTS
    assert missing == 0 and duplicates == 0 and len(rows) == acked
    assert artifacts and not bad_artifacts
    assert faults["worker SIGKILL"] == KILLS and faults["S3 stopped and restarted"] == 1
    assert not any(isinstance(s, int) and s >= 500 and s != 503 for s in stats.statuses), stats.statuses
