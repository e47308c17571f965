"""Workload 9, MLflow 3 tracing, side by side: traces ingested per second through the
client (``@mlflow.trace``-style nested spans, the client's default async export, timed
until ``flush_trace_async_logging`` returns), ``search_traces`` p50, ``traces/get`` of a
1,000-span trace (HTTP, server side), and our trace page for it."""
from __future__ import annotations

import time
from collections import Counter

import requests

from .report import Figure, p50
from .servers import OUR_PROJECT, OUR_TOKEN

SPANS_PER_TRACE = 20
BIG_TRACE_SPANS = 1000


def _one_trace(spans: int, label: str) -> str:
    import mlflow

    with mlflow.start_span(name=f"root-{label}", span_type="CHAIN") as root:
        root.set_inputs({"question": f"q-{label}"})
        for i in range(spans - 1):
            with mlflow.start_span(name=f"step-{i}", span_type="TOOL") as span:
                span.set_inputs({"i": i})
                span.set_outputs({"ok": True})
        root.set_outputs({"answer": label})
    return mlflow.get_last_active_trace_id()


def _use(server, experiment: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(server.tracking_uri)
    mlflow.set_experiment(experiment_id=experiment)


def w_traces(b) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    n = b.n(1000, 20)
    rounds = min(10, n)
    per = max(1, n // rounds)
    experiments = {s.name: b.experiment(s, "bench-traces") for s in b.servers}
    made, watch = Counter(), Counter()
    for r in range(rounds):
        for server in b.order(r):
            _use(server, experiments[server.name])
            start = time.perf_counter()
            for i in range(per):
                _one_trace(SPANS_PER_TRACE, f"{r}-{i}")
            mlflow.flush_trace_async_logging()
            watch[server.name] += time.perf_counter() - start
            made[server.name] += per
    rates = {s.name: made[s.name] / watch[s.name] for s in b.servers}
    b.add(Figure(b.db, "9 traces", f"traces ingested through the client ({per * rounds} × {SPANS_PER_TRACE} spans)",
                 "traces/s", True, rates, ("speedup", 3.0), "≥ 3×"))

    searches = {}
    for server in b.servers:
        client = MlflowClient(server.tracking_uri)
        times = []
        for _ in range(10):
            start = time.perf_counter()
            found = client.search_traces(locations=[experiments[server.name]], filter_string="status = 'OK'",
                                         max_results=100, include_spans=False)
            times.append(time.perf_counter() - start)
            assert len(found) == min(100, made[server.name])
        searches[server.name] = p50(times)
    b.add(Figure(b.db, "9 traces", f"search_traces p50 ({per * rounds} traces, 100 a page)", "s", False, searches,
                 ("speedup", 3.0), "≥ 3×"))

    big, gets = {}, {}
    for server in b.servers:
        _use(server, experiments[server.name])
        big[server.name] = _one_trace(BIG_TRACE_SPANS, f"big-{server.name}")
        mlflow.flush_trace_async_logging()
        web = requests.Session()
        web.headers["Authorization"] = f"Bearer {OUR_TOKEN}"
        url = f"{server.tracking_uri}/api/3.0/mlflow/traces/get"
        times = []
        for _ in range(7):
            start = time.perf_counter()
            resp = web.get(url, params={"trace_id": big[server.name]}, timeout=120)
            times.append(time.perf_counter() - start)
            resp.raise_for_status()
            assert len(resp.json()["trace"]["spans"]) == BIG_TRACE_SPANS
        gets[server.name] = p50(times)
    b.add(Figure(b.db, "9 traces", f"traces/get of a {BIG_TRACE_SPANS:,}-span trace p50", "s", False, gets,
                 ("speedup", 3.0), "≥ 3×"))

    ours = [s for s in b.servers if not s.is_ref]
    if ours:
        page = f"{ours[0].base_url}/{OUR_PROJECT}/-/ml/traces/{big[ours[0].name]}"
        web = requests.Session()  # anonymous: the bench project is public
        web.get(page, timeout=120).raise_for_status()
        times = []
        for _ in range(7):
            start = time.perf_counter()
            web.get(page, timeout=120).raise_for_status()
            times.append(time.perf_counter() - start)
        b.add(Figure(b.db, "9 traces", f"trace page, {BIG_TRACE_SPANS:,} spans: p50", "s", False, {"ours": p50(times)},
                     ("below", 0.3), "< 300 ms"))
