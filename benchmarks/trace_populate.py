"""Bulk-load a big trace experiment straight into each server's own schema.

Logging 100,000 traces through the client would take hours, so each server gets one
*template* trace through the real client (``@mlflow.trace``-style nested spans inside a
run, tags, metadata, token usage, a feedback and an expectation); its rows are then read
back from that server's database and cloned with SQL (``COPY`` on PostgreSQL,
``executemany`` on SQLite) into every table that holds it, with per-trace values from one
seeded generator (:func:`trace_specs`), so both databases hold the same logical traces:

* trace id, request time (about one a second), duration, state (OK, or ERROR for one in
  ten), the ``env`` tag (prod / staging / dev), the source run (one of the experiment's
  runs) and the request / response previews;
* spans: the template's first ``SPAN_ROWS`` span rows (root, the LLM call, tools), moved
  to the clone's time; assessments on one trace in five.

Whatever else the server stored for the template (the reference's denormalised token
columns, its trace metrics rows, our span-presence) is copied as is.
"""
from __future__ import annotations

import base64
import random
import re
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from .populate import Writer

BASE_TIME = 1_750_000_000_000  # ms
MARK = "question-000000"  # in the template's previews; a clone's index replaces it
ENVS = ("prod", "staging", "dev")
SPAN_ROWS = 4  # span rows kept per clone (the template has 20 spans)
ASSESSED_EVERY = 5
ERROR_EVERY = 10


@dataclass(frozen=True)
class TraceSpec:
    n: int
    trace_id: str  # "tr-" + 32 hex
    request_time: int  # ms
    duration: int  # ms
    state: str
    env: str
    run: int  # index into the experiment's runs
    assessed: bool


def trace_specs(n: int, runs: int, seed: int = 23) -> Iterator[TraceSpec]:
    rnd = random.Random(seed)
    for i in range(n):
        yield TraceSpec(
            n=i + 1,
            trace_id="tr-%032x" % rnd.getrandbits(128),
            request_time=BASE_TIME + i * 1000 + rnd.randrange(1000),
            duration=int(rnd.lognormvariate(6.5, 0.8)),  # median ~0.7 s, a long tail
            state="ERROR" if rnd.randrange(ERROR_EVERY) == 0 else "OK",
            env=ENVS[rnd.randrange(len(ENVS))],
            run=rnd.randrange(runs),
            assessed=i % ASSESSED_EVERY == 0,
        )


def make_template(tracking_uri: str, experiment: str, run_id: str) -> str:
    """Log the template trace through the client; returns its trace id."""
    import mlflow
    from mlflow.entities import AssessmentSource

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_id=experiment)
    with mlflow.start_run(run_id=run_id):
        with mlflow.start_span(name="agent", span_type="CHAIN") as root:
            root.set_inputs({"question": f"What is {MARK}?"})
            mlflow.update_current_trace(tags={"env": "prod", "team": "search"},
                                        metadata={"app.version": "1.4.2"})
            with mlflow.start_span(name="llm", span_type="CHAT_MODEL") as llm:
                llm.set_inputs({"messages": [{"role": "user", "content": f"What is {MARK}?"}]})
                llm.set_attribute("mlflow.chat.tokenUsage",
                                  {"input_tokens": 120, "output_tokens": 40, "total_tokens": 160})
                llm.set_outputs({"choices": [{"message": {"role": "assistant", "content": "An answer."}}]})
            for i in range(18):
                with mlflow.start_span(name=f"tool-{i}", span_type="TOOL") as span:
                    span.set_inputs({"i": i})
                    span.set_outputs({"ok": True})
            root.set_outputs({"answer": f"It is {MARK}."})
        trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    mlflow.log_feedback(trace_id=trace_id, name="relevance", value=0.8, rationale="on topic",
                        source=AssessmentSource(source_type="LLM_JUDGE", source_id="judge-1"))
    mlflow.log_expectation(trace_id=trace_id, name="expected_answer", value="An answer.")
    return trace_id


# --------------------------------------------------------------------------- reading the template
def _rows(w: Writer, sql: str, params: tuple) -> list[dict]:
    if w.is_pg:
        sql = sql.replace("?", "%s")
    cur = w.conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _generated(w: Writer, table: str) -> set[str]:
    """Generated columns: they are computed, never written."""
    if w.is_pg:
        return {r["column_name"] for r in _rows(w, "SELECT column_name FROM information_schema.columns "
                                                   "WHERE table_name = ? AND is_generated = 'ALWAYS'", (table,))}
    return {r["name"] for r in _rows(w, f"PRAGMA table_xinfo({table})", ()) if r["hidden"] in (2, 3)}


def _tables(w: Writer) -> list[str]:
    if w.is_pg:
        return [r["tablename"] for r in _rows(w, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'", ())]
    return [r["name"] for r in _rows(w, "SELECT name FROM sqlite_master WHERE type = 'table'", ())]


def _columns(w: Writer, table: str) -> list[str]:
    if w.is_pg:
        return [r["column_name"] for r in _rows(w, "SELECT column_name FROM information_schema.columns "
                                                   "WHERE table_name = ? ORDER BY ordinal_position", (table,))]
    return [r["name"] for r in _rows(w, f"PRAGMA table_info({table})", ())]


@dataclass
class TableCopy:
    table: str
    columns: list[str]
    rows: list[dict]


class Cloner:
    """One server's template rows and how a clone rewrites them."""

    ms_columns: frozenset = frozenset()
    ns_columns: frozenset = frozenset()

    def __init__(self, w: Writer, template_id: str, runs: list[str]):
        self.w = w
        self.template_hex = template_id[3:]
        self.template_b64 = base64.b64encode(bytes.fromhex(self.template_hex)).decode()
        self.runs = runs
        self.copies: list[TableCopy] = []
        self.t0 = 0

    def take(self, table: str, where: str, params: tuple, keep: Optional[Callable[[list[dict]], list[dict]]] = None):
        rows = _rows(self.w, f"SELECT * FROM {table} WHERE {where}", params)
        if keep:
            rows = keep(rows)
        if rows:
            skip = _generated(self.w, table)
            self.copies.append(TableCopy(table, [c for c in rows[0] if c not in skip], rows))

    def _text(self, value: str, spec: TraceSpec) -> str:
        new_hex = spec.trace_id[3:]
        value = value.replace(self.template_hex, new_hex).replace(MARK, f"question-{spec.n:06d}")
        if self.template_b64 in value:
            value = value.replace(self.template_b64, base64.b64encode(bytes.fromhex(new_hex)).decode())
        return value

    def rewrite(self, table: str, row: dict, spec: TraceSpec) -> Optional[dict]:
        """The template row as the clone's: times moved, the trace id and marks replaced."""
        delta = spec.request_time - self.t0
        out = {}
        for col, value in row.items():
            if value is None:
                out[col] = None
            elif col in self.ms_columns:
                out[col] = value + delta
            elif col in self.ns_columns:
                out[col] = value + delta * 1_000_000
            elif isinstance(value, str):
                out[col] = self._text(value, spec)
            else:
                out[col] = value
        return self.adjust(table, out, spec)

    def adjust(self, table: str, row: dict, spec: TraceSpec) -> Optional[dict]:
        raise NotImplementedError

    def pair_value(self, key: str, value: Optional[str], spec: TraceSpec) -> Optional[str]:
        """A tag's or metadata's value in the clone."""
        if key == "env":
            return spec.env
        if key == "mlflow.sourceRun":
            return self.runs[spec.run]
        if key == "mlflow.trace.sizeStats":  # the clone keeps SPAN_ROWS spans: a complete trace
            return re.sub(r'"num_spans": \d+', f'"num_spans": {SPAN_ROWS}', value)
        return value

    def write(self, specs: list[TraceSpec]) -> None:
        for copy in self.copies:
            def rows():
                for spec in specs:
                    for row in copy.rows:
                        out = self.rewrite(copy.table, row, spec)
                        if out is not None:
                            yield tuple(out[c] for c in copy.columns)
            self.w.rows(copy.table, copy.columns, rows())
        self.w.commit()


def _first_spans(rows: list[dict], name_col: str) -> list[dict]:
    order = {"agent": 0, "llm": 1}
    return sorted(rows, key=lambda r: (order.get(r[name_col], 2), r[name_col]))[:SPAN_ROWS]


def _assessment_id(spec: TraceSpec, old: str) -> str:
    # One per (trace, assessment), the same in both databases.
    return "a-" + spec.trace_id[3:] + ("0" if "relevance" in old else "1")


class RefCloner(Cloner):
    """MLflow's tables: every table with a ``request_id`` / ``trace_id`` column."""

    ms_columns = frozenset({"timestamp_ms", "created_timestamp", "last_updated_timestamp", "trace_timestamp_ms"})
    ns_columns = frozenset({"start_time_unix_nano", "end_time_unix_nano"})

    def load(self, template_id: str) -> None:
        info = _rows(self.w, "SELECT timestamp_ms FROM trace_info WHERE request_id = ?", (template_id,))
        self.t0 = info[0]["timestamp_ms"]
        for table in sorted(_tables(self.w), key=lambda t: (t != "trace_info", t != "spans", t)):
            cols = _columns(self.w, table)
            key = "request_id" if "request_id" in cols else "trace_id" if "trace_id" in cols else None
            if key is None or table == "alembic_version":
                continue
            keep = (lambda rows: _first_spans(rows, "name")) if table == "spans" else None
            if table == "span_metrics":
                kept = {r["span_id"] for r in next(c for c in self.copies if c.table == "spans").rows}
                keep = lambda rows, kept=kept: [r for r in rows if r["span_id"] in kept]  # noqa: E731
            self.take(table, f"{key} = ?", (template_id,), keep)

    def adjust(self, table, row, spec):
        if table == "trace_info":
            row.update(timestamp_ms=spec.request_time, execution_time_ms=spec.duration, status=spec.state)
        elif table in ("trace_tags", "trace_request_metadata"):
            row["value"] = self.pair_value(row["key"], row["value"], spec)
        elif table == "assessments":
            if not spec.assessed:
                return None
            row["assessment_id"] = _assessment_id(spec, row["name"])
        return row


class OurCloner(Cloner):
    """Our tables: the trace's integer key, its children keyed by it."""

    ms_columns = frozenset({"request_time", "create_time", "last_update_time"})
    ns_columns = frozenset({"start_ns", "end_ns"})

    def load(self, project_id: str, template_id: str) -> None:
        trace = _rows(self.w, "SELECT * FROM glml_traces WHERE project_id = ? AND trace_id = ?",
                      (project_id, template_id))[0]
        self.t0, pk = trace["request_time"], trace["id"]
        self.take("glml_traces", "id = ?", (pk,))
        for table in ("glml_trace_tags", "glml_trace_metadata", "glml_trace_run_links"):
            self.take(table, "trace_pk = ?", (pk,))
        self.take("glml_trace_spans", "trace_pk = ?", (pk,), lambda rows: _first_spans(rows, "name"))
        self.take("glml_trace_assessments", "trace_pk = ?", (pk,))
        self.next_pk = int(self.w.scalar("SELECT COALESCE(MAX(id), 0) FROM glml_traces")) + 1
        self.next_assessment = int(self.w.scalar("SELECT COALESCE(MAX(id), 0) FROM glml_trace_assessments")) + 1
        self._pks: dict[str, int] = {}

    def write(self, specs):
        for spec in specs:
            self._pks[spec.trace_id] = self.next_pk
            self.next_pk += 1
        super().write(specs)
        if self.w.is_pg:  # explicit ids were written: move the id sequences past them
            for table in ("glml_traces", "glml_trace_assessments"):
                self.w.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT MAX(id) FROM {table}))")
            self.w.commit()

    def adjust(self, table, row, spec):
        pk = self._pks[spec.trace_id]
        if table == "glml_traces":
            row.update(id=pk, request_time=spec.request_time, execution_duration=spec.duration, state=spec.state)
            return row
        row["trace_pk"] = pk
        if table in ("glml_trace_tags", "glml_trace_metadata"):
            row["value"] = self.pair_value(row["key"], row["value"], spec)
        elif table == "glml_trace_assessments":
            if not spec.assessed:
                return None
            row["assessment_id"] = _assessment_id(spec, row["name"])
            row["id"] = self.next_assessment
            self.next_assessment += 1
        return row

