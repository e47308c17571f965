"""Many writers at once: gunicorn with 4 workers (threads too) on PostgreSQL and
on SQLite; 16 client threads create experiments and runs and log batches into
the same experiment and the same runs at the same time.

Held: no 5xx (on SQLite a busy database may answer 503 TEMPORARILY_UNAVAILABLE,
which the client retries - a clean retry, never a corrupt row); IIDs unique;
every acknowledged metric point present exactly once; no batch half applied;
latest values right; params never lost.

Size: ``GLML_CONCURRENCY_SCALE`` multiplies the batches per thread (default 1).
"""
from __future__ import annotations

import collections
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests

from tests.support.livedb import fresh_database
from tests.support.procserver import OWNER_TOKEN, ServerProcess, prepare_database, server_env

THREADS = 16
RUNS_PER_THREAD = 2
SHARED_RUNS = 4
BATCHES_PER_RUN = 3 * int(os.environ.get("GLML_CONCURRENCY_SCALE", "1"))
POINTS_PER_BATCH = 20
API = "/api/2.0/mlflow/"


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("concurrency")
    with fresh_database(request.param, str(tmp)) as url:
        env = server_env(url, str(tmp / "storage"))
        prepare_database(env)
        proc = ServerProcess(env, workers=4, threads=4, log_path=str(tmp / "gunicorn.log")).start()
        proc.kind = request.param
        proc.database_url = url
        try:
            yield proc
        finally:
            proc.stop()


@dataclass
class Outcome:
    acked_points: dict = field(default_factory=lambda: collections.defaultdict(set))  # run -> {(key, step, ts, value)}
    unacked_batches: list = field(default_factory=list)  # (run, points) whose answer was lost or refused
    acked_params: dict = field(default_factory=lambda: collections.defaultdict(dict))
    statuses: collections.Counter = field(default_factory=collections.Counter)
    retries: int = 0
    server_errors: list = field(default_factory=list)
    created_runs: list = field(default_factory=list)
    created_experiments: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(session: requests.Session, outcome: Outcome, url: str, body: dict, allow_busy: bool):
    """POST with the MLflow client's policy for 503: retry (here up to 8 times).
    Returns the response, or None when no answer came."""
    for attempt in range(9):
        try:
            r = session.post(url, json=body, timeout=120)
        except requests.RequestException:
            return None
        with outcome.lock:
            outcome.statuses[r.status_code] += 1
        if r.status_code == 503 and allow_busy:
            body_json = r.json()
            assert body_json["error_code"] == "TEMPORARILY_UNAVAILABLE", r.text  # a clear error
            with outcome.lock:
                outcome.retries += 1
            continue
        if r.status_code >= 500:
            with outcome.lock:
                outcome.server_errors.append(f"{url}: {r.status_code} {r.text[:200]}")
        return r
    return r


def worker(server: ServerProcess, outcome: Outcome, thread_no: int, experiment_id: str, shared_runs: list[str]) -> None:
    base = server.tracking_uri(1) + API
    busy_ok = server.kind == "sqlite"
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {OWNER_TOKEN}"
    r = send(s, outcome, base + "experiments/create", {"name": f"conc-{thread_no}-{uuid.uuid4().hex[:6]}"}, busy_ok)
    if r is not None and r.status_code == 200:
        with outcome.lock:
            outcome.created_experiments.append(r.json()["experiment_id"])
    own = []
    for _ in range(RUNS_PER_THREAD):
        r = send(s, outcome, base + "runs/create", {"experiment_id": experiment_id, "run_name": f"t{thread_no}"}, busy_ok)
        if r is not None and r.status_code == 200:
            own.append(r.json()["run"]["info"]["run_id"])
    with outcome.lock:
        outcome.created_runs.extend(own)
    for batch in range(BATCHES_PER_RUN):
        for run_id in own + shared_runs:
            # Unique steps per (thread, batch): two threads never send the same point.
            base_step = (thread_no * 1000 + batch) * POINTS_PER_BATCH
            points = [("loss", base_step + i, base_step + i, float(base_step + i) / 7) for i in range(POINTS_PER_BATCH)]
            params = [{"key": f"p{thread_no}_{batch}", "value": str(thread_no)}]
            body = {"run_id": run_id, "metrics": [{"key": k, "step": st, "timestamp": ts, "value": v} for k, st, ts, v in points],
                    "params": params}
            r = send(s, outcome, base + "runs/log-batch", body, busy_ok)
            with outcome.lock:
                if r is not None and r.status_code == 200:
                    outcome.acked_points[run_id].update(points)
                    outcome.acked_params[run_id][params[0]["key"]] = params[0]["value"]
                else:
                    outcome.unacked_batches.append((run_id, points))


def history(session: requests.Session, base: str, run_id: str, key: str) -> list[tuple]:
    points, token = [], None
    while True:
        query = {"run_id": run_id, "metric_key": key, "max_results": 25000}
        if token:
            query["page_token"] = token
        r = session.get(base + "metrics/get-history", params=query, timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        points += [(m["key"], int(m["step"]), int(m["timestamp"]), float(m["value"])) for m in body.get("metrics", [])]
        token = body.get("next_page_token")
        if not token:
            return points


def test_concurrent_writers(server):
    base = server.tracking_uri(1) + API
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {OWNER_TOKEN}"
    experiment_id = s.post(base + "experiments/create", json={"name": "concurrency-" + uuid.uuid4().hex[:6]}).json()["experiment_id"]
    shared = [s.post(base + "runs/create", json={"experiment_id": experiment_id}).json()["run"]["info"]["run_id"]
              for _ in range(SHARED_RUNS)]
    outcome = Outcome()
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(worker, server, outcome, n, experiment_id, shared) for n in range(THREADS)]
        for f in futures:
            f.result()

    summary = (f"{server.kind}: statuses {dict(outcome.statuses)}, 503-retries {outcome.retries}, "
               f"unacknowledged batches {len(outcome.unacked_batches)}")
    print("\n" + summary)
    assert not outcome.server_errors, outcome.server_errors[:5]
    if server.kind == "postgresql":
        assert not outcome.unacked_batches and outcome.retries == 0, summary
    assert len(outcome.created_runs) == THREADS * RUNS_PER_THREAD, summary
    assert len(outcome.created_experiments) == THREADS, summary

    # IIDs: unique per project (gaps allowed).
    found = s.post(base + "runs/search", json={"experiment_ids": [experiment_id], "max_results": 1000}).json()["runs"]
    assert {r["info"]["run_id"] for r in found} == set(shared + outcome.created_runs)
    exp_ids = outcome.created_experiments + [experiment_id]
    assert len(set(exp_ids)) == len(exp_ids)
    run_iids = _run_iids(server)
    assert len(run_iids) == len(set(run_iids)) == len(shared) + len(outcome.created_runs)

    # Every acknowledged point exactly once; no batch half applied; latest value right.
    unacked = collections.defaultdict(list)
    for run_id, points in outcome.unacked_batches:
        unacked[run_id].append(set(points))
    for run in found:
        run_id = run["info"]["run_id"]
        got = history(s, base, run_id, "loss")
        assert len(got) == len(set(got)), f"duplicate points in {run_id}"
        acked = outcome.acked_points[run_id]
        assert acked <= set(got), f"{len(acked - set(got))} acknowledged points missing from {run_id}"
        extra = set(got) - acked
        for batch in unacked[run_id]:
            present = batch & extra
            assert not present or present == batch, "a batch was half applied"
            extra -= batch
        assert not extra, f"points nobody sent in {run_id}"
        if got:
            key, step, ts, value = max(got, key=lambda p: (p[1], p[2], p[3]))
            latest = {m["key"]: m for m in run["data"]["metrics"]}["loss"]
            assert (int(latest["step"]), float(latest["value"])) == (step, value)
        params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
        for key, value in outcome.acked_params[run_id].items():
            assert params.get(key) == value
    if server.kind == "sqlite":
        _sqlite_integrity(server.database_url)


def _run_iids(server: ServerProcess) -> list[int]:
    from sqlalchemy import create_engine, text

    url = server.database_url
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT iid FROM glml_runs WHERE project_id = '1'"))]
    finally:
        engine.dispose()


def _sqlite_integrity(url: str) -> None:
    import sqlite3

    path = url.split("sqlite:///", 1)[1]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_sqlite_busy_is_a_clear_error_then_a_clean_retry(tmp_path):
    """A writer that cannot get SQLite's lock within the busy timeout (lowered here to
    0.2 s; 30 s by default) gets 503 TEMPORARILY_UNAVAILABLE in MLflow's JSON - which the
    client retries - with nothing written; the retry after the lock is free succeeds."""
    import sqlite3

    from sqlalchemy import event

    from gl_ml_tracking import get_state
    from tests.support.liveserver import OWNER_TOKEN as TEST_OWNER, build_app, migrate_and_seed

    path = tmp_path / "busy.db"
    app = build_app(f"sqlite:///{path}", str(tmp_path / "storage"))
    migrate_and_seed(app)
    with app.app_context():
        engine = get_state(app).db.engine
        event.listen(engine, "connect", lambda conn, _rec: conn.execute("PRAGMA busy_timeout = 200"))
        engine.dispose()
    c = app.test_client()
    h = {"Authorization": f"Bearer {TEST_OWNER}"}
    url = "/api/v4/projects/1/ml/mlflow/api/2.0/mlflow/"
    exp = c.post(url + "experiments/create", json={"name": "busy"}, headers=h).get_json()["experiment_id"]
    run_id = c.post(url + "runs/create", json={"experiment_id": exp}, headers=h).get_json()["run"]["info"]["run_id"]
    batch = {"run_id": run_id, "metrics": [{"key": "m", "value": float(i), "timestamp": i, "step": i} for i in range(50)],
             "params": [{"key": "p", "value": "1"}]}
    holder = sqlite3.connect(str(path), timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        r = c.post(url + "runs/log-batch", json=batch, headers=h)
        assert r.status_code == 503, r.get_data(as_text=True)
        assert r.get_json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    finally:
        holder.rollback()
        holder.close()
    got = c.get(url + "runs/get", query_string={"run_id": run_id}, headers=h).get_json()["run"]["data"]
    assert not got.get("metrics") and not got.get("params"), "a refused batch left rows behind"
    r = c.post(url + "runs/log-batch", json=batch, headers=h)
    assert r.status_code == 200, r.get_data(as_text=True)
    history = c.get(url + "metrics/get-history", query_string={"run_id": run_id, "metric_key": "m", "max_results": 100},
                    headers=h).get_json()["metrics"]
    assert sorted(int(m["step"]) for m in history) == list(range(50))
    with app.app_context():
        get_state(app).db.engine.dispose()
