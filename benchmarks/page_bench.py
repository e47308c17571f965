"""Server time of the experiment page (the runs table) at 100,000 runs, unfiltered
and with filters of every kind, rare ones most of all: a filter that matches fewer
runs than a page holds cannot stop at the page size, so it is as fast as the
database finds its few matches; and the match count's own request.

    python -m benchmarks.page_bench --db sqlite [--runs 100000 --repeat 9 --keep FILE]
    python -m benchmarks.page_bench --db postgresql [--keep DBNAME]

Runs (10 params, 10 metrics, 5 tags each; param values v0..v99, tags x0..x19,
metrics uniform in [0, 1)) are bulk loaded into the extension's tables with the
driver (``benchmarks.populate``, the main benchmark's loader). Timed through
Flask's test client, as the owner: the server's time (routing, permissions, SQL,
templates) without a network; wall and CPU time, because the machine may be shared.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from urllib.parse import quote

from benchmarks.curves_bench import DatabaseCpu, kept_data_parser, kept_database, timed_requests
from benchmarks.populate import OurSchema, Writer, chunked, search_runs_specs
from tests.support.livedb import fresh_database
from tests.support.liveserver import OWNER_TOKEN, build_app, migrate_and_seed

EXPERIMENT = "page-bench"
PROJECT = "demo/mnist"
# (label, filter): matches expected at 100,000 runs in brackets.
CASES = [
    ("unfiltered", ""),
    ("common param (1,000)", "params.p0 = 'v7'"),
    ("rare metric (~10)", "metrics.m0 > 0.9999"),
    ("rare metric, ordered by another (~10)", "metrics.m0 > 0.9999"),
    ("two params (~10)", "params.p0 = 'v7' AND params.p1 = 'v3'"),
    ("param and metric (~10)", "params.p0 = 'v7' AND metrics.m1 > 0.99"),
    ("tag and param (~50)", "tags.t0 = 'x1' AND params.p3 = 'v4'"),
    ("metric range (~100)", "metrics.m2 < 0.001"),
    ("no match", "params.p0 = 'nothing'"),
]
ORDERED = {"rare metric, ordered by another (~10)": "metrics.m1"}


def _sqlalchemy_to_writer_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _populate(app, url: str, runs: int) -> float:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {OWNER_TOKEN}"}
    api = "/api/v4/projects/1/ml/mlflow/api/2.0/mlflow"
    exp = client.post(f"{api}/experiments/create", json={"name": EXPERIMENT}, headers=headers).get_json()
    with app.app_context():
        from gl_ml_tracking import get_state
        from gl_ml_tracking.models import Experiment
        from sqlalchemy import select

        project_id = get_state(app).session.scalar(
            select(Experiment.project_id).where(Experiment.name == EXPERIMENT))
    started = time.perf_counter()
    writer = Writer(_sqlalchemy_to_writer_url(url))
    schema = OurSchema(writer, project_id, exp["experiment_id"], author_id="1")
    for specs in chunked(search_runs_specs(runs), 10_000):
        schema.add_runs(specs)
        writer.commit()
    writer.analyze()
    writer.close()
    return time.perf_counter() - started


def _measure(app, args) -> None:
    with app.app_context():
        from gl_ml_tracking import get_state
        from gl_ml_tracking.models import Experiment
        from sqlalchemy import select

        iid = get_state(app).session.scalar(select(Experiment.iid).where(Experiment.name == EXPERIMENT))
    client = app.test_client()
    client.environ_base["HTTP_PRIVATE_TOKEN"] = OWNER_TOKEN
    base = f"/{PROJECT}/-/ml/experiments/{iid}"
    client.get(base)  # the pool's connection, whose server process DatabaseCpu reads
    db_cpu = DatabaseCpu.of(app)
    print(f"{'case':40} {'page wall':>10} {'page CPU':>9} {'count wall':>11} {'count':>7}")
    for label, flt in CASES:
        url = base + (f"?filter={quote(flt)}" if flt else "")
        if label in ORDERED:
            url += ("&" if "?" in url else "?") + f"order={quote(ORDERED[label])}"
        client.get(url)  # warm: plans, templates
        wall, cpu = timed_requests(client, url, args.repeat, db_cpu)
        count_cell, count_wall = "", ""
        if flt:
            count_url = f"{base}/match-count?filter={quote(flt)}"
            body = client.get(count_url).get_json()
            count_cell = f"{body['count']}{'+' if body['capped'] else ''}"
            c_wall, _ = timed_requests(client, count_url, args.repeat, None)
            count_wall = f"{statistics.median(c_wall):.0f} ms"
        print(f"{label[:40]:40} {statistics.median(wall):7.0f} ms {statistics.median(cpu):6.0f} ms "
              f"{count_wall:>11} {count_cell:>7}")
    if db_cpu:
        print("  page CPU: this process + the PostgreSQL server's CPU per request")
    print(f"  medians of {args.repeat}; load average while measuring: {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")


def main() -> None:
    args = kept_data_parser(runs=100_000, repeat=9).parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.db, tmp) as url:
        reuse, url = kept_database(args.db, args.keep, url)
        app = build_app(url, tmp + "/storage")
        if not reuse:
            migrate_and_seed(app)
            loaded = _populate(app, url, args.runs)
            print(f"db={args.db}: {args.runs:,} runs loaded in {loaded:.0f}s")
        _measure(app, args)


if __name__ == "__main__":
    main()
