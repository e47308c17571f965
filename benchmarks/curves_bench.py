"""Server time of the experiment charts' ``curves.json``: per-step curves of one
metric for many runs with long histories (default 100 runs x 100,000 points).

    python -m benchmarks.curves_bench --db sqlite [--runs 100 --points 100000 --repeat 15]
    python -m benchmarks.curves_bench --db postgresql

Runs are created through the extension's own services; the metric rows are bulk
loaded with the driver (what logging 10 million points through the API would
leave behind, minus hours). Timed through Flask's test client, so the figure is
the server's time (routing, permission checks, SQL, JSON), without a network.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from tests.support.livedb import fresh_database
from tests.support.liveserver import OWNER_TOKEN, build_app, migrate_and_seed

KEY = "loss"


def _load_points(app, run_pks: list[int], points: int) -> None:
    from gl_ml_tracking import get_state

    session = get_state(app).session
    conn = session.connection()
    raw = conn.connection.driver_connection
    base = 1_700_000_000_000
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur:
            for pk in run_pks:
                with cur.copy("COPY glml_metrics (run_id, key, value, is_nan, timestamp, step) FROM STDIN") as copy:
                    for step in range(points):
                        copy.write_row((pk, KEY, 1.0 / (1 + step) + pk * 1e-3, False, base + step, step))
    else:
        rows = ((pk, KEY, 1.0 / (1 + step) + pk * 1e-3, 0, base + step, step)
                for pk in run_pks for step in range(points))
        raw.executemany("INSERT INTO glml_metrics (run_id, key, value, is_nan, timestamp, step) VALUES (?,?,?,?,?,?)",
                        rows)
    session.commit()
    if conn.dialect.name == "postgresql":
        session.execute(__import__("sqlalchemy").text("ANALYZE glml_metrics"))
        session.commit()


def kept_postgres(fresh_url: str, name: str) -> tuple[bool, str]:
    import psycopg

    base = fresh_url.rsplit("/", 1)[0]
    admin = "postgresql://" + base.split("://", 1)[1] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return exists, f"{base}/{name}"


def kept_database(db: str, keep: str | None, fresh_url: str) -> tuple[bool, str]:
    """(reuse, url): ``--keep``'s SQLite file or PostgreSQL database (reused when it
    already holds data), else the fresh database."""
    if not keep:
        return False, fresh_url
    if db == "sqlite":
        return os.path.exists(keep), f"sqlite:///{os.path.abspath(keep)}"
    return kept_postgres(fresh_url, keep)


def kept_data_parser(runs: int, repeat: int) -> argparse.ArgumentParser:
    """The arguments the full-size benchmarks share: database kind, runs, repeats, and
    where to keep the loaded data (``kept_database``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--keep", help="SQLite file, or PostgreSQL database name, to keep the loaded data in "
                                       "(reused when it exists)")
    return parser


def main() -> None:
    parser = kept_data_parser(runs=100, repeat=15)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--chart-points", type=int, default=400, help="points per curve the page asks for")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.db, tmp) as url:
        reuse, url = kept_database(args.db, args.keep, url)
        app = build_app(url, tmp + "/storage")
        if reuse:
            _measure(app, args, None, 0.0)
            return
        migrate_and_seed(app)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {OWNER_TOKEN}"}
        api = "/api/v4/projects/1/ml/mlflow/api/2.0/mlflow"
        exp = client.post(f"{api}/experiments/create", json={"name": "curves-bench"}, headers=headers).get_json()
        experiment_id = exp["experiment_id"]
        run_ids = [client.post(f"{api}/runs/create", json={"experiment_id": experiment_id, "run_name": f"r{i}"},
                               headers=headers).get_json()["run"]["info"]["run_id"] for i in range(args.runs)]
        with app.app_context():
            from gl_ml_tracking import get_state
            from gl_ml_tracking.models import Run
            from sqlalchemy import select

            session = get_state(app).session
            found = dict(session.execute(select(Run.run_uuid, Run.id).where(Run.run_uuid.in_(run_ids))).all())
            iids = dict(session.execute(select(Run.run_uuid, Run.iid).where(Run.run_uuid.in_(run_ids))).all())
            started = time.perf_counter()
            _load_points(app, [found[r] for r in run_ids], args.points)
            loaded = time.perf_counter() - started
        _measure(app, args, [iids[r] for r in run_ids], loaded)


def _measure(app, args, iids, loaded: float) -> None:
    with app.app_context():
        from gl_ml_tracking import get_state
        from gl_ml_tracking.models import Experiment, Run
        from sqlalchemy import select

        session = get_state(app).session
        experiment = session.scalar(select(Experiment).where(Experiment.name == "curves-bench"))
        experiment_id = experiment.iid
        if iids is None:
            iids = list(session.scalars(select(Run.iid).where(Run.experiment_id == experiment.id).order_by(Run.iid)))
    client = app.test_client()
    url = (f"/demo/mnist/-/ml/experiments/{experiment_id}/curves.json?key={KEY}&points={args.chart_points}"
           "&runs=" + ",".join(str(i) for i in iids))
    client.environ_base["HTTP_PRIVATE_TOKEN"] = OWNER_TOKEN
    first = client.get(url)
    assert first.status_code == 200, first.get_data(as_text=True)[:300]
    body = first.get_json()
    drawn = sum(len(r["points"]) for r in body["runs"])
    zoomed = url + f"&start={args.points // 2}&end={args.points // 2 + 1000}"
    zoom = client.get(zoomed)
    db_cpu = DatabaseCpu.of(app)
    times, cpu = timed_requests(client, url, args.repeat, db_cpu)
    z_times, z_cpu = timed_requests(client, zoomed, args.repeat, db_cpu)
    print(f"db={args.db} runs={args.runs} points/run={args.points:,} loaded in {loaded:.0f}s; "
          f"curves.json answers {len(body['runs'])} curves, {drawn:,} points, "
          f"{len(first.data) / 1024:.0f} KiB")
    print(f"  full range: wall median {statistics.median(times):.0f} ms (min {min(times):.0f}, max {max(times):.0f}),"
          f" CPU median {statistics.median(cpu):.0f} ms{' (ours + the database server)' if db_cpu else ''}")
    print(f"  zoomed (1,000 steps): wall median {statistics.median(z_times):.0f} ms, CPU median "
          f"{statistics.median(z_cpu):.0f} ms ({sum(len(r['points']) for r in zoom.get_json()['runs']):,} points)")
    print(f"  load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def timed_requests(client, url: str, repeat: int, db_cpu: "DatabaseCpu | None" = None) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each request: on a shared machine the wall time
    measures the neighbours too; the process's CPU time is this server's work (SQLite's
    included). With ``db_cpu`` (PostgreSQL), each CPU figure adds the database server's
    CPU time per request, averaged over the requests (/proc counts in 10 ms ticks)."""
    wall, cpu = [], []
    db_before = db_cpu.ms() if db_cpu else 0.0
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        response = client.get(url)
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    if db_cpu:
        per_request = (db_cpu.ms() - db_before) / repeat
        cpu = [c + per_request for c in cpu]
    return wall, cpu


class DatabaseCpu:
    """User + system CPU time of the PostgreSQL backends connected to the app's
    database, from /proc (the benchmark's server runs on this machine): what the
    database spent answering, which a busy machine's wall time does not show."""

    def __init__(self, app):
        from gl_ml_tracking import get_state
        from sqlalchemy import text

        with app.app_context():
            session = get_state(app).session
            self.pids = [int(pid) for pid in session.scalars(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))]
            session.rollback()
        self.tick_ms = 1000 / os.sysconf("SC_CLK_TCK")

    @classmethod
    def of(cls, app) -> "DatabaseCpu | None":
        from gl_ml_tracking import get_state

        with app.app_context():
            if get_state(app).session.get_bind().dialect.name != "postgresql":
                return None
        found = cls(app)
        return found if found.ms() is not None else None

    def ms(self):
        total = 0
        try:
            for pid in self.pids:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            return None  # a remote server, or a backend gone
        return total * self.tick_ms


if __name__ == "__main__":
    main()
