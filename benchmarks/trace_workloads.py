"""Workload 9, MLflow 3 tracing, side by side: traces ingested per second through the
client (``@mlflow.trace``-style nested spans, the client's default async export, timed
until ``flush_trace_async_logging`` returns), ``search_traces`` p50, ``traces/get`` of a
1,000-span trace (HTTP, server side), and our trace page for it."""
from __future__ import annotations

import json
import time
from collections import Counter

import requests

from .client_ceiling import NULL, NullServer
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


def _use(tracking_uri: str, experiment: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_id=experiment)


# What the trace export reads from a server, answered at once by the null server (the
# client alone): the version probe that enables OTLP, the experiment set_experiment
# asks for, a start-trace answer saying the spans are in the tracking store; the OTLP
# posts get an empty message.
_NULL_EXPERIMENT = {"experiment_id": "1", "name": "bench-traces", "lifecycle_stage": "active"}
_NULL_TRACE_INFO = {"trace_id": "tr-00000000000000000000000000000000", "request_time": "2026-01-01T00:00:00Z",
                    "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}},
                    "state": "OK", "tags": {"mlflow.trace.spansLocation": "TRACKING_STORE"}}
NULL_TRACE_ROUTES = {
    b"/version": (b"3.17.2", "text/plain"),
    b"/api/2.0/mlflow/experiments/get": (json.dumps({"experiment": _NULL_EXPERIMENT}).encode(), "application/json"),
    b"/api/3.0/mlflow/traces": (json.dumps({"trace": {"trace_info": _NULL_TRACE_INFO}}).encode(), "application/json"),
    b"/v1/traces": (b"", "application/x-protobuf"),
}


def _stored_spans(server, experiment: str) -> int:
    """Spans the server's database holds for the experiment (the reference's ``spans``
    table, or ours)."""
    import sqlalchemy as sa

    if server.is_ref:
        sql = "SELECT count(*) FROM spans WHERE experiment_id = :e"
    else:
        sql = ("SELECT count(*) FROM glml_trace_spans s JOIN glml_traces t ON t.id = s.trace_pk "
               "JOIN glml_experiments e ON e.id = t.experiment_id WHERE e.iid = :e")
    engine = sa.create_engine(server.db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), {"e": int(experiment)}).scalar_one()
    finally:
        engine.dispose()


def w_traces(b) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    n = b.n(1000, 20)
    # Three rounds: each server logs in each position of the order once. Not more: every
    # flush waits out the client's queue consumer, which polls its empty queue with a 1 s
    # timeout (mlflow/tracing/export/async_export_queue.py) - a fixed cost per flush that
    # a slow server hides under its backlog and a fast one pays in full. Ten flushes per
    # 1,000 traces made it a third of our time; a user logs a batch and flushes once.
    rounds = min(3, n)
    per = max(1, n // rounds)
    experiments = {s.name: b.experiment(s, "bench-traces") for s in b.servers}
    made, watch = Counter(), Counter()
    with NullServer(routes=NULL_TRACE_ROUTES) as null:
        targets = {s.name: (s.tracking_uri, experiments[s.name]) for s in b.servers}
        targets[NULL] = (null.url, _NULL_EXPERIMENT["experiment_id"])
        names = [NULL] + [s.name for s in b.servers]
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                _use(*targets[name])
                start = time.perf_counter()
                for i in range(per):
                    _one_trace(SPANS_PER_TRACE, f"{r}-{i}")
                mlflow.flush_trace_async_logging()
                watch[name] += time.perf_counter() - start
                made[name] += per
    # Ingested means stored: the client drops spans when its queues are full (a slow server
    # fills them), so each server's rate counts the share of the spans its database holds.
    stored = {}
    for group in {b.group(s) for s in b.servers}:
        members = [s for s in b.servers if b.group(s) == group]
        sent = sum(made[s.name] for s in members) * SPANS_PER_TRACE
        stored[group] = _stored_spans(members[0], experiments[members[0].name]) / sent
    rates = {s.name: made[s.name] * min(1.0, stored[b.group(s)]) / watch[s.name] for s in b.servers}
    note = "spans stored of those sent: " + ", ".join(f"{g} {100 * f:.1f}%" for g, f in sorted(stored.items()))
    b.add(Figure(b.db, "9 traces", f"traces ingested through the client ({per * rounds} × {SPANS_PER_TRACE} spans)",
                 "traces/s", True, rates, ("speedup", 3.0), "≥ 3×", client_alone=made[NULL] / watch[NULL],
                 sequential=False, note=note))

    searches = {}
    for server in b.servers:
        client = MlflowClient(server.tracking_uri)
        times = []
        for _ in range(10):
            start = time.perf_counter()
            found = client.search_traces(locations=[experiments[server.name]], filter_string="status = 'OK'",
                                         max_results=100, include_spans=False)
            times.append(time.perf_counter() - start)
            # The reference configurations share one experiment: the group's traces.
            assert len(found) == min(100, sum(made[s.name] for s in b.servers if b.group(s) == b.group(server)))
        searches[server.name] = p50(times)
    b.add(Figure(b.db, "9 traces", f"search_traces p50 ({per * rounds} traces, 100 a page)", "s", False, searches,
                 ("speedup", 3.0), "≥ 3×"))

    big, gets = {}, {}
    for server in b.servers:
        _use(server.tracking_uri, experiments[server.name])
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
