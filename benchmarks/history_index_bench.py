"""What migration 0008's covering history index costs the writes on PostgreSQL:
``runs/log-batch`` of 1,000 metrics, in-process (Flask's test client), on two fresh
databases, one downgraded to 0007 (the old index), one at head, interleaved.

    python -m benchmarks.history_index_bench [--rounds 10 --calls 20]

Prints the wall time and the CPU time (this process + the PostgreSQL server's
backends, from /proc) per call: on a shared machine the CPU time is the figure to
compare. The same code serves both; only the index differs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from benchmarks.curves_bench import DatabaseCpu
from tests.support.livedb import fresh_database
from tests.support.liveserver import OWNER_TOKEN, build_app, migrate_and_seed

API = "/api/v4/projects/1/ml/mlflow/api/2.0/mlflow"
HEADERS = {"Authorization": f"Bearer {OWNER_TOKEN}"}


def _side(url: str, storage: str, revision: str) -> dict:
    from gl_ml_tracking import migrate

    app = build_app(url, storage)
    migrate_and_seed(app)
    if revision != "head":
        with app.app_context():
            migrate.downgrade(revision)
    client = app.test_client()
    exp = client.post(f"{API}/experiments/create", json={"name": "writes"}, headers=HEADERS).get_json()
    runs = [client.post(f"{API}/runs/create", json={"experiment_id": exp["experiment_id"]}, headers=HEADERS)
            .get_json()["run"]["info"]["run_id"] for _ in range(4)]
    client.post(f"{API}/runs/log-batch", headers=HEADERS,
                json={"run_id": runs[0], "metrics": [{"key": "warm", "value": 1, "timestamp": 1, "step": 0}]})
    return {"app": app, "client": client, "runs": runs, "db_cpu": DatabaseCpu.of(app), "wall": [], "cpu": []}


def _round(side: dict, calls: int, first_step: int) -> None:
    client, runs, db_cpu = side["client"], side["runs"], side["db_cpu"]
    d0, w0, c0 = db_cpu.ms() if db_cpu else 0.0, time.perf_counter(), time.process_time()
    for k in range(calls):
        step = first_step + 1000 * k
        body = {"run_id": runs[k % len(runs)], "metrics": [
            {"key": f"m{i % 10}", "value": i * 0.5, "timestamp": 1_700_000_000_000 + step + i, "step": step + i}
            for i in range(1000)]}
        response = client.post(f"{API}/runs/log-batch", json=body, headers=HEADERS)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    side["wall"].append((time.perf_counter() - w0) * 1000 / calls)
    db_ms = db_cpu.ms() - d0 if db_cpu else 0.0  # None: a remote server, only our CPU
    side["cpu"].append(((time.process_time() - c0) * 1000 + db_ms) / calls)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20, help="log-batch calls of 1,000 metrics per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database("postgresql", tmp) as old_url, \
            fresh_database("postgresql", tmp) as new_url:
        sides = {"0007 (run, key, step, timestamp, id)": _side(old_url, tmp + "/old", "0007"),
                 "0008 (... INCLUDE (value, is_nan))": _side(new_url, tmp + "/new", "head")}
        for r in range(args.rounds):
            for side in sides.values():
                _round(side, args.calls, r * 1000 * args.calls)
        for name, side in sides.items():
            print(f"{name}: log-batch of 1,000 metrics: wall median {statistics.median(side['wall']):.1f} ms/call, "
                  f"CPU median {statistics.median(side['cpu']):.1f} ms/call (ours + PostgreSQL)")
            with side["app"].app_context():
                from gl_ml_tracking import get_state

                get_state(side["app"]).db.engine.dispose()
        print(f"  {args.rounds} rounds of {args.calls} calls, interleaved; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
