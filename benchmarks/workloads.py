"""The eight workloads of issue 7, each run against every server with the
unmodified MLflow client, interleaved round by round (the order of servers
rotates every round) so that machine noise falls on all of them alike."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter, process_time
from typing import Callable, Optional

import requests

from . import populate
from .client_ceiling import NULL, NullServer
from .report import Figure, p50, percentile
from .servers import OUR_PROJECT, OUR_TOKEN, MemorySampler, Server

MB = 1024 * 1024
SEARCH_FILTER = "metrics.m0 > 0.5 AND params.p1 = 'v7'"
SEARCH_ORDER = ["metrics.m2 DESC"]
CHART_POINTS = 320  # what MLflow's UI asks get-history-bulk-interval for
CHART_RUNS = 100


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Stopwatch:
    """Wall time per server, and the CPU this process (the MLflow client) spent
    meanwhile: the client's share bounds how much faster any server can look."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.cpu: Counter = Counter()

    @contextmanager
    def time(self, name: str):
        t0, c0 = perf_counter(), process_time()
        try:
            yield
        finally:
            self.wall[name].append(perf_counter() - t0)
            self.cpu[name] += process_time() - c0

    def total(self, name: str) -> float:
        return sum(self.wall[name])

    def client_share(self) -> dict[str, float]:
        return {name: self.cpu[name] / sum(walls) for name, walls in self.wall.items() if sum(walls) > 0}


@dataclass
class Datasets:
    """What the bulk loads made, per database group ("ref" shares one database)."""

    search_exp: dict = field(default_factory=dict)  # group -> experiment id
    search_n: int = 0
    history_run: dict = field(default_factory=dict)  # group -> run id
    history_points: int = 0
    chart_runs: dict = field(default_factory=dict)  # group -> [run ids]
    chart_points: int = 0
    our_history_run_iid: Optional[int] = None
    our_search_exp_iid: Optional[str] = None


class Bench:
    def __init__(self, db: str, servers: list[Server], scale: float, sampler: MemorySampler, work: Path):
        from mlflow.tracking import MlflowClient

        self.db = db
        self.servers = servers
        self.scale = scale
        self.sampler = sampler
        self.work = work
        self.clients = {s.name: MlflowClient(tracking_uri=s.tracking_uri) for s in servers}
        self.figures: list[Figure] = []
        self.data = Datasets()
        self._experiments: dict[tuple[str, str], str] = {}
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {OUR_TOKEN}"

    # -- helpers ------------------------------------------------------------------
    def n(self, base: int, minimum: int) -> int:
        return max(minimum, int(round(base * self.scale)))

    def order(self, round_index: int) -> list[Server]:
        k = round_index % len(self.servers)
        return self.servers[k:] + self.servers[:k]

    @staticmethod
    def group(server: Server) -> str:
        # Every reference configuration serves the same database.
        return "ref" if server.is_ref else "ours"

    def experiment(self, server: Server, name: str) -> str:
        key = (self.group(server), name)
        if key not in self._experiments:
            client = self.clients[server.name]
            found = client.get_experiment_by_name(name)
            self._experiments[key] = found.experiment_id if found else client.create_experiment(name)
        return self._experiments[key]

    def new_run(self, server: Server, experiment: str, **kwargs) -> str:
        return self.clients[server.name].create_run(self.experiment(server, experiment), **kwargs).info.run_id

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def memory_figures(self, workload: str, growth_target: Optional[float] = None, growth_text: str = "") -> None:
        peaks, growths = {}, {}
        for s in self.servers:
            base, peak = self.sampler.window(s.name)
            peaks[s.name] = peak / MB
            growths[s.name] = (peak - base) / MB
        self.add(Figure(self.db, workload, "server peak RSS", "MB", False, peaks))
        target = ("below", growth_target) if growth_target is not None else ("none", None)
        self.add(Figure(self.db, workload, "server RSS growth", "MB", False, growths, target, growth_text))

    def skip(self, workload: str, name: str, why: str, target_text: str = "") -> None:
        self.add(Figure(self.db, workload, name, "", False, target_text=target_text, skipped=why))


# ------------------------------------------------------------------------------ 1, 2


def _with_null(b: Bench, round_index: int) -> list[str]:
    """This round's order of the servers, with the null server among them."""
    names = [NULL] + [s.name for s in b.servers]
    k = round_index % len(names)
    return names[k:] + names[:k]


def _servers_only(shares: dict) -> dict:
    return {k: v for k, v in shares.items() if k != NULL}


def _timed_rounds(b: Bench, rounds: int, per: int, one: Callable) -> tuple[Stopwatch, Counter]:
    """``per`` calls of ``one(client, run_id, name)`` for every server in every round,
    the null server among them (its run id is never checked); returns the stopwatch and
    the calls made per server."""
    from mlflow.tracking import MlflowClient

    runs = {s.name: b.new_run(s, "bench-writes") for s in b.servers}
    watch, calls = Stopwatch(), Counter()
    b.sampler.mark()
    with NullServer() as null:
        clients = dict(b.clients, **{NULL: MlflowClient(null.url)})
        runs[NULL] = "0" * 32
        for r in range(rounds):
            for name in _with_null(b, r):
                client, run = clients[name], runs[name]
                with watch.time(name):
                    for _ in range(per):
                        one(client, run, name)
                calls[name] += per
    return watch, calls


def _round_sizes(n: int) -> tuple[int, int]:
    """(rounds, calls per round) for ``n`` calls: up to 10 rounds, interleaved."""
    rounds = min(10, n)
    return rounds, max(1, n // rounds)


def w_log_metric(b: Bench) -> None:
    rounds, per = _round_sizes(b.n(2000, 20))
    step = Counter()

    def one(client, run: str, name: str) -> None:
        client.log_metric(run, "loss", 1.0 / (1 + step[name]), timestamp=populate.BASE_TIME + step[name],
                          step=step[name])
        step[name] += 1

    watch, calls = _timed_rounds(b, rounds, per, one)
    rates = {s.name: calls[s.name] / watch.total(s.name) for s in b.servers}
    b.add(Figure(b.db, "1 log_metric", f"sequential log_metric ({per * rounds} calls)", "calls/s", True, rates,
                 ("speedup", 3.0), "≥ 3×", client_share=_servers_only(watch.client_share()),
                 client_alone=calls[NULL] / watch.total(NULL)))
    b.memory_figures("1 log_metric")


# ------------------------------------------------------------------------------ 2
def w_log_batch(b: Bench) -> None:
    from mlflow.entities import Metric

    rounds, per = _round_sizes(b.n(200, 4))
    batches = Counter()

    def one(client, run: str, name: str) -> None:
        base = batches[name] * 10
        client.log_batch(run, metrics=[Metric(f"m{j % 100}", j * 0.001, populate.BASE_TIME + base + j // 100,
                                              base + j // 100) for j in range(1000)])
        batches[name] += 1

    watch, calls = _timed_rounds(b, rounds, per, one)
    rates = {s.name: calls[s.name] * 1000 / watch.total(s.name) for s in b.servers}
    b.add(Figure(b.db, "2 log_batch", f"log_batch of 1,000 metrics ({per * rounds} calls)", "metrics/s", True, rates,
                 ("speedup", 10.0), "≥ 10×", client_share=_servers_only(watch.client_share()),
                 client_alone=calls[NULL] * 1000 / watch.total(NULL)))
    b.memory_figures("2 log_batch")


# ------------------------------------------------------------------------------ 3
def w_create_runs(b: Bench) -> None:
    from mlflow.entities import Metric, Param

    n = b.n(10_000, 16)
    rounds = min(5, max(1, n // 8))
    per = max(1, n // rounds)
    watch, made = Stopwatch(), Counter()
    errors = Counter()
    exps = {s.name: b.experiment(s, "bench-create") for s in b.servers}
    tags = {f"t{i}": f"x{i}" for i in range(5)}

    def one(client, experiment: str, i: int) -> None:
        run = client.create_run(experiment, tags=tags, run_name=f"created-{i}")
        client.log_batch(run.info.run_id,
                         metrics=[Metric(f"m{k}", k * 0.1, populate.BASE_TIME + i, 0) for k in range(10)],
                         params=[Param(f"p{k}", f"v{i % 100}") for k in range(10)])

    b.sampler.mark()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for r in range(rounds):
            for s in b.order(r):
                client = b.clients[s.name]
                with watch.time(s.name):
                    futures = [pool.submit(one, client, exps[s.name], r * per + i) for i in range(per)]
                    for f in futures:
                        try:
                            f.result()
                        except Exception:  # noqa: BLE001 - counted and reported
                            errors[s.name] += 1
                made[s.name] += per
    rates = {s.name: (made[s.name] - errors[s.name]) / watch.total(s.name) for s in b.servers}
    note = "; ".join(f"{k}: {v} failed" for k, v in errors.items() if v)
    b.add(Figure(b.db, "3 create runs", f"runs with 10 params, 10 metrics, 5 tags, 8 threads ({per * rounds} runs)",
                 "runs/s", True, rates, ("speedup", 5.0), "≥ 5×", note=note, client_share=watch.client_share(),
                 sequential=False))
    b.memory_figures("3 create runs")


# ------------------------------------------------------------------------------ data for 4-6, 8
def populate_search(b: Bench) -> None:
    n = b.n(100_000, 200)
    groups = _groups(b)
    writers = {}
    try:
        schemas = {}
        for group, server in groups.items():
            exp = b.experiment(server, "bench-search")
            b.data.search_exp[group] = exp
            writers[group] = populate.Writer(server.db_url)
            if server.is_ref:
                template = b.clients[server.name].create_run(exp, run_name="template")
                uri = template.info.artifact_uri.replace(template.info.run_id, "{}")
                b.clients[server.name].delete_run(template.info.run_id)
                schemas[group] = populate.RefSchema(writers[group], exp, uri)
            else:
                b.data.our_search_exp_iid = exp
                schemas[group] = populate.OurSchema(writers[group], "1", exp, _our_author_id(writers[group]))
        t0 = perf_counter()
        for chunk in populate.chunked(populate.search_runs_specs(n), 5000):
            for schema in schemas.values():
                schema.add_runs(chunk)
        for w in writers.values():
            w.analyze()
        b.data.search_n = n
        log(f"loaded {n} runs into each database in {perf_counter() - t0:.1f}s")
    finally:
        for w in writers.values():
            w.close()


def populate_history(b: Bench) -> None:
    points = b.n(1_000_000, 1000)
    _load_points(b, "bench-history", 1, points, "history_run")
    b.data.history_points = points


def populate_charts(b: Bench) -> None:
    points = b.n(10_000, 100)
    _load_points(b, "bench-charts", CHART_RUNS, points, "chart_runs")
    b.data.chart_points = points


def _load_points(b: Bench, experiment: str, runs: int, points: int, slot: str) -> None:
    groups = _groups(b)
    t0 = perf_counter()
    for group, server in groups.items():
        client = b.clients[server.name]
        exp = b.experiment(server, experiment)
        run_ids = [client.create_run(exp, run_name=f"{experiment}-{i}").info.run_id for i in range(runs)]
        writer = populate.Writer(server.db_url)
        try:
            if server.is_ref:
                schema = populate.RefSchema(writer, exp, "")
            else:
                schema = populate.OurSchema(writer, "1", exp, _our_author_id(writer))
            for i, run_id in enumerate(run_ids):
                schema.add_points(run_id, "loss", populate.history_points(points, seed=11 + i))
            writer.analyze()
        finally:
            writer.close()
        if slot == "history_run":
            b.data.history_run[group] = run_ids[0]
            if not server.is_ref:
                b.data.our_history_run_iid = _run_iid(client.get_run(run_ids[0]).info.artifact_uri)
        else:
            b.data.chart_runs[group] = run_ids
    log(f"loaded {runs} x {points} metric points into each database in {perf_counter() - t0:.1f}s")


def _groups(b: Bench) -> dict[str, Server]:
    groups: dict[str, Server] = {}
    for s in b.servers:
        groups.setdefault(b.group(s), s)
    return groups


def _our_author_id(writer: populate.Writer) -> str:
    return str(writer.scalar("SELECT id FROM forge_users WHERE username = 'demo'"))


def _run_iid(artifact_uri: str) -> Optional[int]:
    # mlflow-artifacts:/ml_experiment_<experiment iid>/<run iid>
    match = re.search(r"ml_experiment_\d+/(\d+)", artifact_uri or "")
    return int(match.group(1)) if match else None


# ------------------------------------------------------------------------------ 4
def _ours(b: Bench) -> Optional[Server]:
    return next((s for s in b.servers if not s.is_ref), None)


@contextmanager
def _replaying(bodies: dict[str, bytes]):
    """{name: MlflowClient} of null servers, each answering at once with the bytes
    given: the client's own cost of reading that answer (benchmarks/client_ceiling.py)."""
    from contextlib import ExitStack

    from mlflow.tracking import MlflowClient

    with ExitStack() as stack:
        yield {name: MlflowClient(stack.enter_context(NullServer(body)).url) for name, body in bodies.items()}


def _search_bodies(b: Bench, server: Optional[Server], page: int, last_token: Optional[str]) -> dict[str, bytes]:
    """Our server's answers to the three searches, as the client would ask them."""
    if server is None:
        return {}
    exp = b.data.search_exp[b.group(server)]
    url = server.tracking_uri + "/api/2.0/mlflow/runs/search"
    asks = {
        "filtered": {"experiment_ids": [exp], "filter": SEARCH_FILTER, "max_results": 100, "order_by": SEARCH_ORDER},
        "plain": {"experiment_ids": [exp], "max_results": page},
        "last": {"experiment_ids": [exp], "max_results": page, "page_token": last_token},
    }
    bodies = {}
    for name, ask in asks.items():
        resp = b.http.post(url, json=ask, timeout=600)
        resp.raise_for_status()
        bodies[name] = resp.content
    return bodies


def _split_null(watch: Stopwatch) -> tuple[dict, dict, Optional[float]]:
    """(p50 per server, client share per server, p50 of the client alone)."""
    values = {k: p50(v) for k, v in watch.wall.items() if k != NULL}
    alone = p50(watch.wall[NULL]) if watch.wall.get(NULL) else None
    return values, _servers_only(watch.client_share()), alone


def w_search(b: Bench) -> None:
    if not b.data.search_n:
        populate_search(b)
    n = b.data.search_n
    page = min(1000, n // 2)
    reps = 10 if n <= 20_000 else 7
    last_tokens = {s.name: _last_page_token(b, s, n, page) for s in b.servers}
    ours = _ours(b)
    bodies = _search_bodies(b, ours, page, last_tokens[ours.name] if ours else None)
    filtered, plain, last = Stopwatch(), Stopwatch(), Stopwatch()
    answers: dict[str, list] = {}
    b.sampler.mark()
    with _replaying(bodies) as replay:
        for r in range(reps):
            for s in b.order(r):
                client = b.clients[s.name]
                exp = b.data.search_exp[b.group(s)]
                with filtered.time(s.name):
                    found = client.search_runs([exp], SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=100)
                answers[s.name] = [run.info.run_name for run in found]
                with plain.time(s.name):
                    first = client.search_runs([exp], max_results=page)
                assert len(first) == page, (s.name, len(first))
                with last.time(s.name):
                    tail = client.search_runs([exp], max_results=page, page_token=last_tokens[s.name])
                assert len(tail) == page, (s.name, len(tail))
            if replay:  # the client alone, reading our answers (same experiment id: it is in the answer)
                exp = b.data.search_exp[b.group(ours)]
                with filtered.time(NULL):
                    replay["filtered"].search_runs([exp], SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=100)
                with plain.time(NULL):
                    assert len(replay["plain"].search_runs([exp], max_results=page)) == page
                with last.time(NULL):
                    replay["last"].search_runs([exp], max_results=page, page_token=last_tokens[ours.name])
    same = len({tuple(v) for v in answers.values()}) == 1
    note = "" if same else "filtered results differ between servers: " + ", ".join(
        f"{k}: {len(v)} runs" for k, v in answers.items())
    label = f"{n:,} runs"
    values, shares, alone = _split_null(filtered)
    b.add(Figure(b.db, "4 search_runs", f"filter metric+param, order by metric, 100/page, {label}: p50", "s", False,
                 values, ("speedup", 10.0), "≥ 10×", note=note, client_share=shares, client_alone=alone))
    b.add(Figure(b.db, "4 search_runs", "same: p95", "s", False,
                 {k: percentile(v, 0.95) for k, v in filtered.wall.items() if k != NULL}))
    values, shares, alone = _split_null(plain)
    b.add(Figure(b.db, "4 search_runs", f"plain page of {page}, {label}: p50", "s", False,
                 values, ("speedup", 5.0), "≥ 5×", client_share=shares, client_alone=alone))
    b.add(Figure(b.db, "4 search_runs", "same: p95", "s", False,
                 {k: percentile(v, 0.95) for k, v in plain.wall.items() if k != NULL}))
    values, shares, alone = _split_null(last)
    b.add(Figure(b.db, "4 search_runs", f"last page of {page}: p50", "s", False, values, client_share=shares,
                 client_alone=alone))
    ratios = {k: p50(last.wall[k]) / p50(plain.wall[k]) for k in last.wall if k != NULL}
    b.add(Figure(b.db, "4 search_runs", "last page p50 / first page p50", "×", False, ratios, ("below", 1.25),
                 "< 1.25 (no slower)"))
    b.memory_figures("4 search_runs")


def _last_page_token(b: Bench, server: Server, n: int, page: int) -> str:
    """The token of the page holding the last ``page`` runs. The reference's
    tokens are offsets (its documented format is base64 JSON ``{"offset": n}``);
    ours are keyset tokens, so we walk there with the biggest pages allowed."""
    if server.is_ref:
        from mlflow.utils.search_utils import SearchUtils

        return SearchUtils.create_page_token(n - page).decode()
    url = server.tracking_uri + "/api/2.0/mlflow/runs/search"
    exp = b.data.search_exp[b.group(server)]
    remaining, token = n - page, None
    while remaining > 0:
        size = min(50_000, remaining)
        body = {"experiment_ids": [exp], "max_results": size}
        if token:
            body["page_token"] = token
        resp = b.http.post(url, json=body, timeout=600)
        resp.raise_for_status()
        token = resp.json().get("next_page_token")
        remaining -= size
    return token


# ------------------------------------------------------------------------------ 5
def w_history(b: Bench) -> None:
    if not b.data.history_points:
        populate_history(b)
    points = b.data.history_points
    reps = 3 if points <= 200_000 else 1
    ours = _ours(b)
    bodies = {}
    if ours is not None:  # our answer, for the client alone
        resp = b.http.get(ours.tracking_uri + "/api/2.0/mlflow/metrics/get-history", timeout=600,
                          params={"run_id": b.data.history_run[b.group(ours)], "metric_key": "loss"})
        resp.raise_for_status()
        bodies["history"] = resp.content
        del resp
    watch = Stopwatch()
    b.sampler.mark()
    with _replaying(bodies) as replay:
        for r in range(reps):
            for s in b.order(r):
                run = b.data.history_run[b.group(s)]
                with watch.time(s.name):
                    history = b.clients[s.name].get_metric_history(run, "loss")
                assert len(history) == points, (s.name, len(history), points)
                del history
            if replay:
                with watch.time(NULL):
                    history = replay["history"].get_metric_history(b.data.history_run[b.group(ours)], "loss")
                assert len(history) == points, (NULL, len(history), points)
                del history
    bodies.clear()
    b.add(Figure(b.db, "5 metric history", f"get_metric_history of {points:,} points", "s", False,
                 {k: min(v) for k, v in watch.wall.items() if k != NULL}, ("speedup", 3.0), "≥ 3×",
                 client_share=_servers_only(watch.client_share()),
                 client_alone=min(watch.wall[NULL]) if watch.wall.get(NULL) else None))
    b.memory_figures("5 metric history", 200.0, "< 200 MB")


# ------------------------------------------------------------------------------ 6
def w_chart(b: Bench) -> None:
    if not b.data.chart_points:
        populate_charts(b)
    reps = 10
    watch = Stopwatch()
    counts = {}
    b.sampler.mark()
    for r in range(reps):
        for s in b.order(r):
            url = s.tracking_uri + "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
            params = {"run_ids": b.data.chart_runs[b.group(s)], "metric_key": "loss", "max_results": CHART_POINTS}
            with watch.time(s.name):
                resp = b.http.get(url, params=params, timeout=600)
                data = resp.json()
            resp.raise_for_status()
            counts[s.name] = len(data.get("metrics", []))
    note = "points returned: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    b.add(Figure(b.db, "6 chart data", f"get-history-bulk-interval, {CHART_RUNS} runs × {b.data.chart_points:,} points,"
                 f" {CHART_POINTS} per run: p50", "s", False, {k: p50(v) for k, v in watch.wall.items()},
                 ("below", 0.5), "< 0.5 s", note=note, client_share=watch.client_share()))
    b.memory_figures("6 chart data")


# ------------------------------------------------------------------------------ 7
def w_artifacts(b: Bench) -> None:
    size = max(MB, int(1024 * MB * b.scale) // MB * MB)
    ours = [s for s in b.servers if not s.is_ref]
    probe = _probe_artifacts(b, ours[0]) if ours else None
    if probe:
        b.skip("7 artifacts", "upload / download", probe, "≥ 80% of curl")
        return
    src = b.work / "artifact-src" / "blob.bin"
    src.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MB)
    with open(src, "wb") as fh:
        for _ in range(size // MB):
            fh.write(block)
    (curl_up, curl_down), (client_up, client_down) = _transfer_baselines(b.work, src)
    up, down, growth_up, growth_down = defaultdict(float), defaultdict(float), defaultdict(float), defaultdict(float)
    reps = 2 if size <= 256 * MB else 1  # best of two when it is cheap: one transfer is noisy
    for r in range(reps):
        for s in b.order(r):  # one at a time: each transfer has the machine to itself
            client = b.clients[s.name]
            run = b.new_run(s, "bench-artifacts")
            b.sampler.mark()
            t0 = perf_counter()
            client.log_artifact(run, str(src))
            up[s.name] = max(up[s.name], size / MB / (perf_counter() - t0))
            base, peak = b.sampler.window(s.name)
            growth_up[s.name] = max(growth_up[s.name], (peak - base) / MB)
            # Two downloads, each into a new folder: the first file a process writes after the
            # upload ran at ~350 MB/s here whatever the server (plain Python writes too: the
            # virtual disk's new blocks), the next at GB/s. Best of the two, for every server.
            for attempt in range(2):
                dst = b.work / f"artifact-dst-{s.name}-{attempt}"
                shutil.rmtree(dst, ignore_errors=True)
                dst.mkdir()
                b.sampler.mark()
                t0 = perf_counter()
                path = client.download_artifacts(run, "blob.bin", str(dst))
                down[s.name] = max(down[s.name], size / MB / (perf_counter() - t0))
                base, peak = b.sampler.window(s.name)
                growth_down[s.name] = max(growth_down[s.name], (peak - base) / MB)
                assert os.path.getsize(path) == size, (s.name, os.path.getsize(path))
                shutil.rmtree(dst, ignore_errors=True)
    up, down, growth_up, growth_down = dict(up), dict(down), dict(growth_up), dict(growth_down)
    label = f"{size // MB:,} MB"
    ceiling = "the MLflow client's own HTTP code (requests) against the same minimal server: {:.0f} MB/s"
    b.add(Figure(b.db, "7 artifacts", f"upload {label} (loopback curl: {curl_up:.0f} MB/s)", "MB/s", True, up,
                 ("at_least", 0.8 * curl_up), f"≥ {0.8 * curl_up:.0f} MB/s (80% of curl)", note=ceiling.format(client_up)))
    b.add(Figure(b.db, "7 artifacts", f"download {label}, best of 2 after each upload (loopback curl: {curl_down:.0f} MB/s)", "MB/s", True, down,
                 ("at_least", 0.8 * curl_down), f"≥ {0.8 * curl_down:.0f} MB/s (80% of curl)",
                 note=ceiling.format(client_down)))
    b.add(Figure(b.db, "7 artifacts", "server RSS growth, upload", "MB", False, growth_up, ("below", 100.0), "< 100 MB"))
    b.add(Figure(b.db, "7 artifacts", "server RSS growth, download", "MB", False, growth_down, ("below", 100.0),
                 "< 100 MB"))
    src.unlink()


def _probe_artifacts(b: Bench, server: Server) -> Optional[str]:
    """None when our artifacts proxy answers, else why the workload is skipped."""
    url = server.tracking_uri + "/api/2.0/mlflow-artifacts/artifacts"
    try:
        resp = b.http.get(url, params={"path": "ml_experiment_1"}, timeout=30)
    except requests.RequestException as exc:
        return f"not available ({exc.__class__.__name__})"
    if resp.status_code == 404 and "ENDPOINT_NOT_FOUND" in resp.text:
        return "not available (artifacts proxy answers 404)"
    return None


def _transfer_baselines(work: Path, src: Path) -> tuple[tuple[float, float], tuple[float, float]]:
    """Best of two loopback transfers of ``src`` against a minimal server
    (sendfile out, recv-to-file in), (upload, download) MB/s: with curl (the
    machine's ceiling), and with ``requests`` the way the MLflow client moves
    artifacts (a file object as the PUT body; 1 MB ``iter_content`` to a file),
    which bounds what any server can show through that client."""
    from .curl_baseline import BaselineServer

    size = src.stat().st_size
    sink = work / "curl-sink.bin"
    dst = work / "curl-dst.bin"
    curl_up, curl_down, client_up, client_down = [], [], [], []
    with BaselineServer(src, sink) as server, requests.Session() as http:
        for _ in range(2):
            t0 = perf_counter()
            subprocess.run(["curl", "-sS", "-H", "Expect:", "-T", str(src), f"{server.url}/upload"], check=True,
                           stdout=subprocess.DEVNULL)
            curl_up.append(size / MB / (perf_counter() - t0))
            # Every download writes a new file, as the MLflow client's does (it downloads into
            # a fresh folder): overwriting the last one's blocks was up to 4x faster here.
            dst.unlink(missing_ok=True)
            t0 = perf_counter()
            subprocess.run(["curl", "-sS", "-o", str(dst), f"{server.url}/file"], check=True)
            curl_down.append(size / MB / (perf_counter() - t0))
            t0 = perf_counter()
            with open(src, "rb") as fh:
                http.put(f"{server.url}/upload", data=fh).raise_for_status()
            client_up.append(size / MB / (perf_counter() - t0))
            dst.unlink(missing_ok=True)
            t0 = perf_counter()
            with http.get(f"{server.url}/file", stream=True) as resp, open(dst, "wb") as out:
                for chunk in resp.iter_content(chunk_size=MB):
                    out.write(chunk)
            client_down.append(size / MB / (perf_counter() - t0))
    for path in (sink, dst):
        path.unlink(missing_ok=True)
    return (max(curl_up), max(curl_down)), (max(client_up), max(client_down))


# ------------------------------------------------------------------------------ 8
def w_pages(b: Bench) -> None:
    ours = [s for s in b.servers if not s.is_ref]
    if not ours:
        return
    server = ours[0]
    if not b.data.search_n:
        populate_search(b)
    if not b.data.history_points:
        populate_history(b)
    base = f"{server.base_url}/{OUR_PROJECT}/-/ml"
    pages = [
        (f"experiment page, {b.data.search_n:,} runs: p50", f"{base}/experiments/{b.data.our_search_exp_iid}"),
        (f"run page, {b.data.history_points:,}-point metric: p50", f"{base}/candidates/{b.data.our_history_run_iid}"),
    ]
    web = requests.Session()  # anonymous: demo/mnist is public, as a visitor sees it
    run_page_html = None
    for name, url in pages:
        resp = web.get(url, timeout=120)
        if resp.status_code == 404:
            b.skip("8 pages", name, "not available (page answers 404)", "< 300 ms" if "experiment" in name else "")
            continue
        resp.raise_for_status()
        if "/candidates/" in url:
            run_page_html = resp.text
        times = _time_gets(web, url, 10)
        target = ("below", 0.3) if "experiment" in name else ("none", None)
        b.add(Figure(b.db, "8 pages", name, "s", False, {"ours": p50(times)}, target,
                     "< 300 ms" if "experiment" in name else ""))
    chart_url = _chart_url(server.base_url, run_page_html)
    if chart_url is None:
        b.skip("8 pages", "run page chart data", "not available (no chart-data URL on the run page)", "< 0.5 s")
        return
    resp = web.get(chart_url, timeout=120)
    if resp.status_code != 200:
        b.skip("8 pages", "run page chart data", f"not available ({chart_url} answers {resp.status_code})", "< 0.5 s")
        return
    times = _time_gets(web, chart_url, 10)
    b.add(Figure(b.db, "8 pages", f"run page chart data, {b.data.history_points:,} points: p50", "s", False,
                 {"ours": p50(times)}, ("below", 0.5), "< 0.5 s", note=chart_url.split("/-/", 1)[-1]))


def _time_gets(web: requests.Session, url: str, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        t0 = perf_counter()
        resp = web.get(url, timeout=120)
        _ = resp.content
        times.append(perf_counter() - t0)
        resp.raise_for_status()
    return times


def _chart_url(base_url: str, html: Optional[str]) -> Optional[str]:
    """The chart-data URL the run page's script fetches (a ``data-*url`` attribute
    mentioning "chart"), for the history metric ``loss``."""
    if not html:
        return None
    import html as html_module

    for raw in re.findall(r"""data-[\w-]*url=["']([^"']+)["']""", html):
        url = html_module.unescape(raw)
        if "chart" not in url:
            continue
        url = url.replace("__KEY__", "loss").replace("%7Bkey%7D", "loss").replace("{key}", "loss")
        if url.startswith("/"):
            url = base_url + url
        if "loss" not in url and "key=" not in url:
            url += ("&" if "?" in url else "?") + "key=loss"
        return url
    return None


WORKLOADS: dict[str, Callable[[Bench], None]] = {
    "log_metric": w_log_metric,
    "log_batch": w_log_batch,
    "create_runs": w_create_runs,
    "search": w_search,
    "history": w_history,
    "chart": w_chart,
    "artifacts": w_artifacts,
    "pages": w_pages,
}

# MLflow 3 tracing (benchmarks/trace_workloads.py)
from .trace_workloads import w_traces  # noqa: E402

WORKLOADS["traces"] = w_traces

# search_traces on a big experiment (benchmarks/trace_search_bench.py)
from .trace_search_bench import w_trace_search  # noqa: E402

WORKLOADS["trace_search"] = w_trace_search
