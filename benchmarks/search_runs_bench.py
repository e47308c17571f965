"""Time ``search_runs`` on a large experiment (default 100,000 runs).

    .venv/bin/python -m benchmarks.search_runs_bench [sqlite|postgresql] [runs]    # from the repository root

Each run has 5 latest metrics, 5 params and 3 tags (a few with NaN metrics and
missing keys). Prints the time of the first page and of a deep page (reached by
its keyset token) for a table of filters and orders, and the query plan of the
default search.
"""
from __future__ import annotations

import random
import sys
import tempfile
import time
import uuid

from sqlalchemy import create_engine, insert, text
from sqlalchemy.orm import Session

from gl_ml_tracking.models import Base, Experiment, LatestMetric, Param, Run, RunTag
from gl_ml_tracking.services.search import search_runs

CASES = [
    ("", None),
    ("", ["metrics.m0 DESC"]),
    ("", ["params.p1"]),
    ("", ["start_time ASC"]),
    ("metrics.m0 > 0.5", None),
    ("metrics.m0 > 0.99", ["metrics.m1"]),
    ("params.p2 = 'v7'", None),
    ("params.p2 LIKE 'v1%'", ["tags.t0 DESC"]),
    ("params.p2 ILIKE 'V1%'", None),
    ("tags.t1 = 'x3' AND metrics.m2 < 0.1", None),
    ("tags.t1 = 'x3' OR metrics.m2 < 0.01", None),
    ("status = 'FINISHED' AND start_time > 50000", None),
    ("run_name LIKE 'run-1%'", None),
    ("metrics.m0 > 0.5 AND params.p1 = 'v7'", ["metrics.m2 DESC"]),  # the benchmark's filtered search
]


def populate(session: Session, n: int) -> int:
    rnd = random.Random(7)
    exp = Experiment(project_id="p", iid=1, name="big", lifecycle_stage="active", creation_time=0, last_update_time=0)
    other = Experiment(project_id="p", iid=2, name="other", lifecycle_stage="active", creation_time=0,
                       last_update_time=0)
    session.add_all([exp, other])
    session.flush()
    batch = 5000
    for start in range(0, n, batch):
        runs = []
        for i in range(start, min(n, start + batch)):
            runs.append(
                dict(
                    id=i + 1,
                    run_uuid=uuid.UUID(int=rnd.getrandbits(128)).hex,
                    project_id="p",
                    experiment_id=exp.id if i % 10 else other.id,
                    iid=i + 1,
                    name=f"run-{i}",
                    status=rnd.choice(["FINISHED", "FAILED", "RUNNING"]),
                    start_time=i * 2 + rnd.randint(0, 3),
                    lifecycle_stage="active" if i % 50 else "deleted",
                    user_id="u",
                )
            )
        session.execute(insert(Run), runs)
        metrics, params, tags = [], [], []
        for r in runs:
            for k in range(5):
                if rnd.random() < 0.05:
                    continue
                nan = rnd.random() < 0.01
                metrics.append(dict(run_id=r["id"], key=f"m{k}", value=None if nan else rnd.random(), is_nan=nan,
                                    timestamp=0, step=0))
                params.append(dict(run_id=r["id"], key=f"p{k}", value=f"v{rnd.randint(0, 100)}"))
            for k in range(3):
                tags.append(dict(run_id=r["id"], key=f"t{k}", value=f"x{rnd.randint(0, 20)}"))
        session.execute(insert(LatestMetric), metrics)
        session.execute(insert(Param), params)
        session.execute(insert(RunTag), tags)
    session.commit()
    return exp.id


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    from tests.support.livedb import fresh_database

    with tempfile.TemporaryDirectory() as tmp, fresh_database(kind, tmp) as url:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            t0 = time.perf_counter()
            exp_pk = populate(s, n)
            print(f"{kind}: populated {n} runs in {time.perf_counter() - t0:.1f}s")
            if kind == "postgresql":
                s.execute(text("ANALYZE"))
            else:
                s.execute(text("ANALYZE"))
            s.commit()
            print(f"{'filter':45} {'order_by':22} {'page 1':>8} {'page 50':>8}  rows")
            for flt, order in CASES:
                t0 = time.perf_counter()
                runs, token = search_runs(s, "p", [exp_pk], flt, max_results=100, order_by=order)
                first = time.perf_counter() - t0
                deep = 0.0
                pages = 1
                while token and pages < 50:
                    t0 = time.perf_counter()
                    runs, token = search_runs(s, "p", [exp_pk], flt, max_results=100, order_by=order, page_token=token)
                    deep = time.perf_counter() - t0
                    pages += 1
                print(f"{flt[:45]:45} {str(order)[:22]:22} {first * 1000:7.1f}ms {deep * 1000:7.1f}ms  {len(runs)}")
            t0 = time.perf_counter()
            runs, _ = search_runs(s, "p", [exp_pk], "", max_results=50000)
            print(f"max_results=50000 default order: {len(runs)} runs in {(time.perf_counter() - t0) * 1000:.0f}ms")
        engine.dispose()


if __name__ == "__main__":
    main()
