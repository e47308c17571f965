"""GenAI evaluation datasets: 1,000 records inserted, merged and read back through the
MLflow client (``mlflow.genai.datasets``), against the reference ``mlflow server``
(SQLite, one uvicorn worker) and our forge under gunicorn (SQLite and PostgreSQL).

    python -m benchmarks.genai_datasets_bench [--records 1000] [--repeat 3] [--db sqlite postgresql]

Each figure is the median of ``--repeat`` rounds, each on a new dataset:
``insert`` one ``merge_records`` of N new records; ``merge`` one ``merge_records`` of the
same N inputs with new expectations (all merged); ``read`` ``to_df()`` of the N records.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from .servers import OUR_TOKEN, fresh_database, start_ours, start_reference, wait_ready


def _records(n: int, round_: int, version: int) -> list[dict]:
    return [{"inputs": {"question": f"r{round_} question {i}", "n": i},
             "expectations": {"answer": f"answer {i} v{version}", "score": version}} for i in range(n)]


def measure(tracking_uri: str, n: int, repeat: int) -> dict[str, float]:
    import mlflow
    from mlflow.genai import datasets as gd

    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.set_experiment("genai-bench-" + uuid.uuid4().hex[:6]).experiment_id
    times: dict[str, list[float]] = {"insert": [], "merge": [], "read": []}
    for round_ in range(repeat):
        ds = gd.create_dataset(name=f"bench-{round_}", experiment_id=[exp])
        for phase, version in (("insert", 1), ("merge", 2)):
            records = _records(n, round_, version)
            start = time.perf_counter()
            ds.merge_records(records)
            times[phase].append(time.perf_counter() - start)
        start = time.perf_counter()
        df = gd.get_dataset(dataset_id=ds.dataset_id).to_df()
        times["read"].append(time.perf_counter() - start)
        assert len(df) == n and df["expectations"].iloc[0]["score"] == 2, (len(df), df["expectations"].iloc[0])
    return {phase: statistics.median(values) for phase, values in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args(argv)
    os.environ["MLFLOW_TRACKING_TOKEN"] = OUR_TOKEN  # the reference ignores it
    rows = []
    with tempfile.TemporaryDirectory(prefix="genai-bench-") as tmp:
        work = Path(tmp)
        with fresh_database("sqlite", work, "ref") as url:
            server = start_reference("ref-w1", url, work, workers=1)
            try:
                wait_ready(server)
                rows.append(("reference, SQLite", measure(server.tracking_uri, args.records, args.repeat)))
            finally:
                server.stop()
        for kind in args.db:
            with fresh_database(kind, work, f"ours_{kind}") as url:
                server = start_ours(f"ours-{kind}", url, work)
                try:
                    wait_ready(server)
                    rows.append((f"ours, {kind}", measure(server.tracking_uri, args.records, args.repeat)))
                finally:
                    server.stop()
    print(f"| server ({args.records} records, median of {args.repeat}) | insert s | merge s | read s |")
    print("|---|---:|---:|---:|")
    for name, figures in rows:
        print(f"| {name} | {figures['insert']:.3f} | {figures['merge']:.3f} | {figures['read']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
