"""Bulk-load big data sets straight into each server's own schema.

Creating 100,000 runs or 1,000,000 metric points through the reference
server's API would take longer than the whole benchmark may (it creates ~40
runs/s), so the big, read-only data sets of workloads 4-6 and 8 are written
with SQL: the experiment and a few runs come from each server's API; the
bulk rows are written with ``COPY`` (PostgreSQL) or ``executemany`` (SQLite)
into the tables the server itself uses, with the same values for both
servers (one seeded generator). The write workloads 1-3 go through the API.
"""
from __future__ import annotations

import math
import random
import sqlite3
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence

PARAM_KEYS = [f"p{i}" for i in range(10)]
METRIC_KEYS = [f"m{i}" for i in range(10)]
TAG_KEYS = [f"t{i}" for i in range(5)]
CHUNK = 20_000
BASE_TIME = 1_700_000_000_000  # ms


@dataclass
class RunSpec:
    run_uuid: str
    name: str
    start_time: int
    params: list[tuple[str, str]]
    metrics: list[tuple[str, float]]
    tags: list[tuple[str, str]]


def search_runs_specs(n: int, seed: int = 7) -> Iterator[RunSpec]:
    """``n`` runs with 10 params, 10 metrics, 5 tags each; param values
    ``v0``..``v99``, metric values uniform in [0, 1)."""
    rnd = random.Random(seed)
    for i in range(n):
        yield RunSpec(
            run_uuid="%032x" % rnd.getrandbits(128),
            name=f"run-{i:06d}",
            start_time=BASE_TIME + i * 1000,
            params=[(k, f"v{rnd.randrange(100)}") for k in PARAM_KEYS],
            metrics=[(k, rnd.random()) for k in METRIC_KEYS],
            tags=[(k, f"x{rnd.randrange(20)}") for k in TAG_KEYS],
        )


def history_points(points: int, seed: int = 11) -> Iterator[tuple[int, int, float]]:
    """(step, timestamp, value): a noisy decaying loss curve."""
    rnd = random.Random(seed)
    for step in range(points):
        yield step, BASE_TIME + step * 10, math.exp(-step / max(1, points / 5)) + rnd.random() * 0.05


# --------------------------------------------------------------------------- raw writers
class Writer:
    """Bulk rows into one database: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, url: str):
        self.url = url
        self.is_pg = url.startswith("postgresql")
        if self.is_pg:
            import psycopg

            self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        else:
            self.conn = sqlite3.connect(url[len("sqlite:///"):], timeout=120)
            self.conn.execute("PRAGMA synchronous = OFF")

    def rows(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
        count = 0
        if self.is_pg:
            with self.conn.cursor() as cur:
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
            return count
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                self.conn.executemany(sql, batch)
                count += len(batch)
                batch = []
        if batch:
            self.conn.executemany(sql, batch)
            count += len(batch)
        return count

    def scalar(self, sql: str, params: Sequence = ()):
        if self.is_pg:
            sql = sql.replace("?", "%s")
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def execute(self, sql: str, params: Sequence = ()) -> None:
        if self.is_pg:
            sql = sql.replace("?", "%s")
        self.conn.execute(sql, params)

    def commit(self) -> None:
        self.conn.commit()

    def analyze(self) -> None:
        self.conn.commit()
        if self.is_pg:
            self.conn.autocommit = True
            self.conn.execute("ANALYZE")
            self.conn.autocommit = False
        else:
            self.conn.execute("ANALYZE")
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def _bool(writer: Writer, value: bool):
    return value if writer.is_pg else int(value)


# --------------------------------------------------------------------------- schemas
class RefSchema:
    """MLflow's tables: children keyed by ``run_uuid``."""

    def __init__(self, writer: Writer, experiment_id: str, artifact_uri_template: str):
        self.w = writer
        self.experiment_id = int(experiment_id)
        # An API-made run's artifact_uri with its run id replaced by "{}".
        self.artifact_uri_template = artifact_uri_template

    def add_runs(self, specs: Sequence[RunSpec]) -> None:
        w = self.w
        w.rows("runs", ["run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id", "status",
                        "start_time", "end_time", "source_version", "lifecycle_stage", "artifact_uri", "experiment_id"],
               ((s.run_uuid, s.name, "LOCAL", "", "", "bench", "FINISHED", s.start_time, s.start_time + 500, "",
                 "active", self.artifact_uri_template.format(s.run_uuid), self.experiment_id) for s in specs))
        w.rows("params", ["key", "value", "run_uuid"], ((k, v, s.run_uuid) for s in specs for k, v in s.params))
        w.rows("tags", ["key", "value", "run_uuid"],
               ((k, v, s.run_uuid) for s in specs
                for k, v in s.tags + [("mlflow.runName", s.name), ("mlflow.user", "bench")]))
        false = _bool(w, False)
        w.rows("metrics", ["key", "value", "timestamp", "run_uuid", "step", "is_nan"],
               ((k, v, s.start_time, s.run_uuid, 0, false) for s in specs for k, v in s.metrics))
        w.rows("latest_metrics", ["key", "value", "timestamp", "step", "is_nan", "run_uuid"],
               ((k, v, s.start_time, 0, false, s.run_uuid) for s in specs for k, v in s.metrics))

    def add_points(self, run_uuid: str, key: str, points: Iterable[tuple[int, int, float]]) -> None:
        false = _bool(self.w, False)
        seen = _LastPoint(points)
        self.w.rows("metrics", ["key", "value", "timestamp", "run_uuid", "step", "is_nan"],
                    ((key, value, ts, run_uuid, step, false) for step, ts, value in seen))
        if seen.last is not None:
            step, ts, value = seen.last
            self.w.execute("DELETE FROM latest_metrics WHERE run_uuid = ? AND key = ?", (run_uuid, key))
            self.w.rows("latest_metrics", ["key", "value", "timestamp", "step", "is_nan", "run_uuid"],
                        [(key, value, ts, step, false, run_uuid)])


class OurSchema:
    """Our tables: children keyed by the run's integer primary key; runs carry
    the project and a per-project IID (the counter is advanced to match)."""

    def __init__(self, writer: Writer, project_id: str, experiment_iid: str, author_id: str):
        self.w = writer
        self.project_id = project_id
        self.author_id = author_id
        self.experiment_pk = writer.scalar(
            "SELECT id FROM glml_experiments WHERE project_id = ? AND iid = ?", (project_id, int(experiment_iid)))
        if self.experiment_pk is None:
            raise RuntimeError(f"experiment {experiment_iid} not found in our database")

    def add_runs(self, specs: Sequence[RunSpec]) -> None:
        w = self.w
        first_pk = int(w.scalar("SELECT COALESCE(MAX(id), 0) FROM glml_runs")) + 1
        first_iid = int(w.scalar("SELECT COALESCE(MAX(iid), 0) FROM glml_runs WHERE project_id = ?",
                                 (self.project_id,)) or 0) + 1
        counter = w.scalar("SELECT last_value FROM glml_iid_counters WHERE project_id = ? AND scope = 'run'",
                           (self.project_id,))
        first_iid = max(first_iid, int(counter or 0) + 1)
        pks = {s.run_uuid: first_pk + i for i, s in enumerate(specs)}
        w.rows("glml_runs", ["id", "run_uuid", "project_id", "experiment_id", "iid", "name", "status", "start_time",
                             "end_time", "lifecycle_stage", "user_id", "author_id"],
               ((pks[s.run_uuid], s.run_uuid, self.project_id, self.experiment_pk, first_iid + i, s.name, "FINISHED",
                 s.start_time, s.start_time + 500, "active", "bench", self.author_id) for i, s in enumerate(specs)))
        last_iid = first_iid + len(specs) - 1
        if counter is None:
            w.execute("INSERT INTO glml_iid_counters (project_id, scope, last_value) VALUES (?, 'run', ?)",
                      (self.project_id, last_iid))
        else:
            w.execute("UPDATE glml_iid_counters SET last_value = ? WHERE project_id = ? AND scope = 'run'",
                      (last_iid, self.project_id))
        if w.is_pg:  # explicit ids were written: move the id sequence past them
            w.execute("SELECT setval(pg_get_serial_sequence('glml_runs', 'id'), (SELECT MAX(id) FROM glml_runs))")
        w.rows("glml_params", ["run_id", "key", "value"], ((pks[s.run_uuid], k, v) for s in specs for k, v in s.params))
        w.rows("glml_run_tags", ["run_id", "key", "value"],
               ((pks[s.run_uuid], k, v) for s in specs
                for k, v in s.tags + [("mlflow.runName", s.name), ("mlflow.user", "bench")]))
        false = _bool(w, False)
        w.rows("glml_metrics", ["run_id", "key", "value", "is_nan", "timestamp", "step"],
               ((pks[s.run_uuid], k, v, false, s.start_time, 0) for s in specs for k, v in s.metrics))
        w.rows("glml_latest_metrics", ["run_id", "key", "value", "is_nan", "timestamp", "step"],
               ((pks[s.run_uuid], k, v, false, s.start_time, 0) for s in specs for k, v in s.metrics))

    def run_pk(self, run_uuid: str) -> int:
        pk = self.w.scalar("SELECT id FROM glml_runs WHERE run_uuid = ? AND project_id = ?", (run_uuid, self.project_id))
        if pk is None:
            raise RuntimeError(f"run {run_uuid} not found in our database")
        return int(pk)

    def add_points(self, run_uuid: str, key: str, points: Iterable[tuple[int, int, float]]) -> None:
        pk = self.run_pk(run_uuid)
        false = _bool(self.w, False)
        seen = _LastPoint(points)
        self.w.rows("glml_metrics", ["run_id", "key", "value", "is_nan", "timestamp", "step"],
                    ((pk, key, value, false, ts, step) for step, ts, value in seen))
        if seen.last is not None:
            step, ts, value = seen.last
            self.w.execute("DELETE FROM glml_latest_metrics WHERE run_id = ? AND key = ?", (pk, key))
            self.w.rows("glml_latest_metrics", ["run_id", "key", "value", "is_nan", "timestamp", "step"],
                        [(pk, key, value, false, ts, step)])


class _LastPoint:
    """Passes (step, timestamp, value) points through, keeping the last one: a history is
    streamed into the database and its latest value written after it."""

    def __init__(self, points: Iterable[tuple[int, int, float]]):
        self._points = points
        self.last: Optional[tuple[int, int, float]] = None

    def __iter__(self) -> Iterator[tuple[int, int, float]]:
        for point in self._points:
            self.last = point
            yield point


def chunked(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
