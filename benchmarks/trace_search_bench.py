"""Workload 10, ``search_traces`` on a big experiment (issue 15: 100,000 traces at
``--scale 1``), side by side with the reference on the same kind of database.

The traces are bulk-loaded into each server's own schema (:mod:`.trace_populate`: one
template trace logged through the client per server, cloned with SQL, the same logical
traces in both). Then, per filter, interleaved round by round:

* the client: ``MlflowClient().search_traces(locations=[exp], max_results=100,
  include_spans=False, ...)``;
* the server alone: a plain HTTP ``POST /api/3.0/mlflow/traces/search`` of the same
  request (what the client sends), timed until the whole answer is read;
* the client alone: the same client call against a null server replaying, at once, our
  server's answer to it (:mod:`.client_ceiling`): the ratio no server can beat.

Plus the default ``mlflow.search_traces`` DataFrame path (spans included: the client
fetches them with ``traces/batchGet``, ten at a time) for the unfiltered page.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from contextlib import ExitStack
from time import perf_counter, process_time
from typing import Optional

from . import trace_populate as tp
from .client_ceiling import NullServer
from .populate import Writer, chunked
from .report import Figure, p50

WORKLOAD = "10 search_traces"
EXPERIMENT = "bench-trace-search"
RUNS = 50
NULL = "null-server"
PAGE = 100


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class _Watch:
    """Wall times per name, and this process's CPU (the client's) meanwhile."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.cpu: dict[str, float] = defaultdict(float)

    def timed(self, name: str, call):
        t0, c0 = perf_counter(), process_time()
        result = call()
        self.wall[name].append(perf_counter() - t0)
        self.cpu[name] += process_time() - c0
        return result

    def p50s(self) -> dict[str, float]:
        return {k: p50(v) for k, v in self.wall.items() if k != NULL}

    def shares(self) -> dict[str, float]:
        return {k: self.cpu[k] / sum(v) for k, v in self.wall.items() if k != NULL and sum(v) > 0}

    def alone(self) -> Optional[float]:
        return p50(self.wall[NULL]) if self.wall.get(NULL) else None


def populate(b, n: int) -> dict:
    """Per database group: {"exp": experiment id, "runs": [run ids]}."""
    out = {}
    t0 = perf_counter()
    for server in b.servers:
        group = b.group(server)
        if group in out:
            continue
        client = b.clients[server.name]
        exp = b.experiment(server, EXPERIMENT)
        runs = [client.create_run(exp, run_name=f"agent-eval-{i}").info.run_id for i in range(RUNS)]
        template = tp.make_template(server.tracking_uri, exp, runs[0])
        writer = Writer(server.db_url)
        try:
            if server.is_ref:
                cloner = tp.RefCloner(writer, template, runs)
                cloner.load(template)
            else:
                cloner = tp.OurCloner(writer, template, runs)
                cloner.load("1", template)
            for specs in chunked(tp.trace_specs(n, RUNS), 5000):
                cloner.write(specs)
            writer.analyze()
        finally:
            writer.close()
        client.delete_traces(exp, trace_ids=[template])  # only the clones remain
        out[group] = {"exp": exp, "runs": runs}
    _log(f"loaded {n:,} traces into each database in {perf_counter() - t0:.1f}s")
    return out


def _cases(n: int) -> list[tuple[str, str, Optional[list[str]]]]:
    """(label, filter, order_by); ``{run}`` stands for one of each server's runs."""
    mid = tp.BASE_TIME + (n // 2) * 1000
    span = max(PAGE * 2, n // 10) * 1000
    return [
        ("no filter, newest first", "", ["timestamp_ms DESC"]),
        ("status = 'OK'", "status = 'OK'", None),
        ("tag equality", "tags.env = 'prod'", None),
        ("source run (metadata)", "metadata.mlflow.sourceRun = '{run}'", None),
        ("run_id (the client's run_id=)", "attribute.run_id = '{run}'", None),
        ("timestamp range", f"timestamp_ms >= {mid} AND timestamp_ms < {mid + span}", None),
        ("execution_time_ms > 2000", "execution_time_ms > 2000", None),
        ("page 2 (token), no filter", "", ["timestamp_ms DESC"]),
    ]


def _body(exp: str, flt: str, order: Optional[list[str]], token: Optional[str]) -> dict:
    body: dict = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}],
                  "max_results": PAGE}
    if flt:
        body["filter"] = flt
    if order:
        body["order_by"] = order
    if token:
        body["page_token"] = token
    return body


def w_trace_search(b) -> None:
    from mlflow.tracking import MlflowClient

    n = b.n(100_000, 500)
    data = populate(b, n)
    reps = 9 if n <= 30_000 else 7
    label = f"{n:,} traces"
    ours = next((s for s in b.servers if not s.is_ref), None)
    for case, (name, template, order) in enumerate(_cases(n)):
        paged = name.startswith("page 2")
        asks = {}  # server name -> (experiment, filter, page token)
        for s in b.servers:
            group = data[b.group(s)]
            flt = template.format(run=group["runs"][3])
            token = None
            if paged:
                first = b.clients[s.name].search_traces(locations=[group["exp"]], filter_string=flt or None,
                                                        max_results=PAGE, order_by=order, include_spans=False)
                token = first.token
            asks[s.name] = (group["exp"], flt, token)
        http_url = {s.name: s.tracking_uri + "/api/3.0/mlflow/traces/search" for s in b.servers}
        answers: dict[str, list[str]] = {}
        client_w, http_w = _Watch(), _Watch()
        with ExitStack() as stack:
            null = None
            if ours is not None:  # the client alone, reading our answer
                exp, flt, token = asks[ours.name]
                resp = b.http.post(http_url[ours.name], json=_body(exp, flt, order, token), timeout=600)
                resp.raise_for_status()
                null = MlflowClient(stack.enter_context(NullServer(resp.content)).url)
            for r in range(reps):
                for s in b.order(r):
                    exp, flt, token = asks[s.name]
                    found = client_w.timed(s.name, lambda: b.clients[s.name].search_traces(
                        locations=[exp], filter_string=flt or None, max_results=PAGE, order_by=order,
                        page_token=token, include_spans=False))
                    answers[s.name] = [t.info.trace_id for t in found]
                    resp = http_w.timed(s.name, lambda: b.http.post(http_url[s.name], json=_body(exp, flt, order, token),
                                                                    timeout=600))
                    resp.raise_for_status()
                if null is not None:
                    exp, flt, token = asks[ours.name]
                    client_w.timed(NULL, lambda: null.search_traces(
                        locations=[exp], filter_string=flt or None, max_results=PAGE, order_by=order,
                        page_token=token, include_spans=False))
        distinct = {tuple(v) for v in answers.values()}
        note = f"{len(next(iter(answers.values())))} traces a page"
        if len(distinct) != 1:
            note += "; **results differ between servers**: " + ", ".join(f"{k}: {len(v)}" for k, v in answers.items())
        b.add(Figure(b.db, WORKLOAD, f"{name}, {label}: client p50", "s", False, client_w.p50s(), ("speedup", 3.0),
                     "≥ 3×", note=note, client_share=client_w.shares(), client_alone=client_w.alone()))
        b.add(Figure(b.db, WORKLOAD, f"{name}: server alone (HTTP) p50", "s", False, http_w.p50s(),
                     ("speedup", 3.0), "≥ 3×"))
        _log(f"{b.db}: {name}: client " + json.dumps({k: round(v * 1000, 1) for k, v in client_w.p50s().items()})
             + " ms; HTTP " + json.dumps({k: round(v * 1000, 1) for k, v in http_w.p50s().items()}) + " ms")
    _dataframe(b, data, label)


def _dataframe(b, data: dict, label: str) -> None:
    """The default ``mlflow.search_traces`` (a DataFrame, spans fetched) of the newest 100."""
    import mlflow

    watch = _Watch()
    for r in range(5):
        for s in b.order(r):
            mlflow.set_tracking_uri(s.tracking_uri)
            exp = data[b.group(s)]["exp"]
            frame = watch.timed(s.name, lambda: mlflow.search_traces(locations=[exp], max_results=PAGE))
            assert len(frame) == PAGE, (s.name, len(frame))
    b.add(Figure(b.db, WORKLOAD, f"mlflow.search_traces DataFrame (spans included), newest {PAGE}, {label}: p50",
                 "s", False, watch.p50s(), ("speedup", 3.0), "≥ 3×", client_share=watch.shares()))
