"""``python -m benchmarks.run``: our forge against the reference ``mlflow server``.

For each database kind it starts, side by side on free loopback ports, the
reference server (``--workers 1`` and its default worker count, sharing one
fresh database) and our example forge under gunicorn (its own fresh database
of the same kind), drives all of them with the same MLflow-client workloads,
interleaved, and prints and writes the comparison (``benchmarks/RESULTS.md``).

    python -m benchmarks.run                      # default scale, SQLite and PostgreSQL
    python -m benchmarks.run --scale 0.05 --db sqlite --only log_metric search
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

# The client must fail fast, not retry for minutes, and never pick up a user's config.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "600")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", None)

from . import report  # noqa: E402
from .report import Figure  # noqa: E402
from .servers import (  # noqa: E402
    OUR_TOKEN,
    MemorySampler,
    fresh_database,
    postgres_available,
    start_ours,
    start_reference,
    wait_ready,
)
from .workloads import WORKLOADS, Bench, log  # noqa: E402

HERE = Path(__file__).resolve().parent
# Chosen so that `make bench` (both databases, every workload) stays under ~20 minutes
# on the 2-core reference machine; the full sizes are --scale 1.
DEFAULT_SCALE = 0.25
NOTES_MARKER = "<!-- Everything below this line is kept when the benchmark rewrites this file. -->"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE,
                        help=f"multiply every workload size (1 = the issue's sizes; default {DEFAULT_SCALE})")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--only", nargs="+", choices=list(WORKLOADS), metavar="WORKLOAD",
                        help="run only these workloads: " + ", ".join(WORKLOADS))
    parser.add_argument("--ref-workers", default="1,default",
                        help="reference configurations, comma-separated worker counts ('default' = its own)")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"), help="markdown report to write")
    parser.add_argument("--json", default=None, help="also write every figure as JSON here")
    parser.add_argument("--work-dir", default=None, help="keep databases, artifacts and server logs here")
    return parser.parse_args(argv)


def run_database(kind: str, args: argparse.Namespace, work: Path, selected: list[str]) -> list[Figure]:
    work = work / kind
    work.mkdir(parents=True, exist_ok=True)
    ref_configs = [c.strip() for c in args.ref_workers.split(",") if c.strip()]
    servers = []
    sampler = None
    with fresh_database(kind, work, "ref") as ref_url, fresh_database(kind, work, "ours") as our_url:
        try:
            log(f"{kind}: starting servers")
            for i, config in enumerate(ref_configs):
                workers = None if config == "default" else int(config)
                name = "ref-default" if workers is None else f"ref-w{workers}"
                servers.append(start_reference(name, ref_url, work, workers))
                if i == 0:  # the first one creates the schema; the others would race it
                    wait_ready(servers[0])
            servers.append(start_ours("ours", our_url, work))
            for server in servers:
                wait_ready(server)
            log(f"{kind}: ready: " + ", ".join(f"{s.name} {s.base_url}" for s in servers))
            sampler = MemorySampler(servers)
            sampler.start()
            bench = Bench(kind, servers, args.scale, sampler, work)
            for name in selected:
                log(f"{kind}: workload {name}")
                t0 = time.perf_counter()
                try:
                    WORKLOADS[name](bench)
                except Exception as exc:  # noqa: BLE001 - one broken workload must not hide the others
                    traceback.print_exc()
                    bench.skip(name, name, f"failed: {exc.__class__.__name__}: {str(exc)[:160]}")
                log(f"{kind}: workload {name} took {time.perf_counter() - t0:.1f}s")
            return bench.figures
        finally:
            for server in servers:
                try:
                    server.stop()
                except Exception:  # noqa: BLE001 - stop the others regardless
                    traceback.print_exc()
            if sampler is not None:
                sampler.stop()


def write_results(path: str, figures: list[Figure], meta: dict) -> None:
    kept = ""
    if os.path.exists(path):
        with open(path) as fh:
            text = fh.read()
        if NOTES_MARKER in text:
            kept = text.split(NOTES_MARKER, 1)[1]
    m = meta["machine"]
    lines = [
        "# Benchmark: our forge vs the reference `mlflow server`",
        "",
        f"- date: {meta['date']}; wall time {meta['wall_minutes']:.1f} min",
        f"- machine: `nproc` = {m.get('nproc')}, memory {m.get('memory_gib')} GiB, {m.get('cpu', '?')}; "
        f"Python {m.get('python')}",
        f"- command: `{meta['command']}` (scale {meta['scale']}; databases: {', '.join(meta['databases'])})",
        f"- reference: `mlflow server` {meta['mlflow_version']} (uvicorn), configurations "
        f"{', '.join(meta['ref_configs'])}: `mlflow server --backend-store-uri <db> --artifacts-destination <dir> "
        "--host 127.0.0.1 --port N [--workers 1]`, env `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`; "
        "the configurations share one fresh database",
        "- ours: `flask --app examples.host_app forge init-db && flask --app examples.host_app ml-tracking db upgrade "
        "&& flask --app examples.host_app forge seed`, then `gunicorn -c examples/gunicorn_conf.py -w 4 --threads 4 "
        "-b 127.0.0.1:N examples.host_app:app` (gthread, keep-alive 5 s; env `DATABASE_URL`), on its own fresh "
        "database of the same kind",
        "- client alone: the same client against a null server that answers at once (`benchmarks/client_ceiling.py`), "
        "interleaved with the others: `{}` to the writes of workloads 1 and 2, and for the reads of workloads 4 and 5 "
        "the bytes our server answered to the same request (the client's own cost of reading that answer): "
        "no server can do better",
        f"- client: MLflow {meta['mlflow_version']} `MlflowClient` in one process; workloads interleaved round by round",
        "- \"ours vs ref\": how many times better ours is than the reference's best configuration "
        "(throughput ratio, or latency ratio ref/ours)",
        "",
        "## Results",
        "",
        report.table(figures),
        "## Every configuration",
        "",
        report.detail_table(figures),
        NOTES_MARKER,
    ]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + (kept if kept else "\n"))


def main(argv=None) -> int:
    args = parse_args(argv)
    selected = args.only or list(WORKLOADS)
    selected = [w for w in WORKLOADS if w in selected]  # always in the order
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    if "postgresql" in kinds:
        why = postgres_available()
        if why:
            if args.db == "postgresql":
                print(f"PostgreSQL is not available: {why}", file=sys.stderr)
                return 2
            log(f"PostgreSQL is not available ({why}); SQLite only")
            kinds = ["sqlite"]
    os.environ["MLFLOW_TRACKING_TOKEN"] = OUR_TOKEN  # ours needs it; the reference ignores it
    started = time.time()
    figures: list[Figure] = []
    tmp = None
    if args.work_dir:
        work = Path(args.work_dir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="glml-bench-")
        work = Path(tmp.name)
    try:
        for kind in kinds:
            figures += run_database(kind, args, work, selected)
    finally:
        if tmp is not None:
            tmp.cleanup()
    import mlflow

    meta = {
        "date": report.now_utc(),
        "wall_minutes": (time.time() - started) / 60,
        "machine": report.machine(),
        "command": "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "scale": args.scale,
        "databases": kinds,
        "workloads": selected,
        "ref_configs": [c.strip() for c in args.ref_workers.split(",")],
        "mlflow_version": mlflow.__version__,
    }
    print()
    print(report.table(figures))
    write_results(args.results, figures, meta)
    log(f"wrote {args.results}")
    if args.json:
        report.write_json(args.json, figures, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
