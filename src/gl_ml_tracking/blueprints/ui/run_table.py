"""The experiment page's runs table: its columns, and one row per run with
its values, nesting, CI job and author."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from flask import request

from ...services import ui_queries as q
from ...services.ci_link import resolve_job
from .support import PageContext, present_user

# Columns shown before the reader chooses: the first keys of each kind.
DEFAULT_VISIBLE_PER_KIND = 12
# Tags shown elsewhere on the page (name, nesting) or too long for a cell.
HIDDEN_TAG_COLUMNS = {"mlflow.runName", "mlflow.parentRunId", "mlflow.note.content", "mlflow.log-model.history"}


@dataclass
class Column:
    id: str  # "params.lr", "metrics.acc", "tags.team"
    kind: str  # params | metrics | tags
    key: str

    @property
    def order_key(self) -> str:
        entity = {"params": "params", "metrics": "metrics", "tags": "tags"}[self.kind]
        return f"{entity}.`{self.key}`"


@dataclass
class RunRow:
    run: Any
    depth: int = 0
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # key -> (value, is_nan)
    tags: dict = field(default_factory=dict)
    parent: Any = None  # the parent Run when it is not on this page
    ci_job: Any = None
    author: Any = None


ATTRIBUTE_SORTS = {
    "name": "attributes.run_name",
    "created": "attributes.start_time",
    "status": "attributes.status",
    "duration": None,  # not sortable in MLflow's grammar
}


def parse_order(raw: str) -> tuple[Optional[str], bool]:
    """``"metrics.`acc` DESC"`` -> (key expression, descending)."""
    raw = (raw or "").strip()
    if not raw:
        return None, True
    parts = raw.rsplit(" ", 1)
    if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
        return parts[0].strip(), parts[1].upper() == "DESC"
    return raw, False


def table_columns(ctx: PageContext, experiment, page_data: dict) -> tuple[list[Column], list[Column], bool]:
    """(all offered columns, visible columns, whether the reader chose them)."""
    keys = q.discover_keys(ctx.session, ctx.project_id, experiment.id)
    params, metrics, tags = set(keys.params), set(keys.metrics), set(keys.tags)
    for data in page_data.values():
        params.update(k for k, _ in data.params)
        metrics.update(m[0] for m in data.metrics)
        tags.update(k for k, _ in data.tags)
    offered = (
        [Column(f"params.{k}", "params", k) for k in sorted(params)]
        + [Column(f"metrics.{k}", "metrics", k) for k in sorted(metrics)]
        + [Column(f"tags.{k}", "tags", k) for k in sorted(tags - HIDDEN_TAG_COLUMNS)]
    )
    chosen = request.args.getlist("cols")
    if request.args.get("cols_set"):
        wanted = set(chosen)
        return offered, [c for c in offered if c.id in wanted], True
    visible = [c for c in offered if c.kind == "params"][:DEFAULT_VISIBLE_PER_KIND]
    visible += [c for c in offered if c.kind == "metrics"][:DEFAULT_VISIBLE_PER_KIND]
    return offered, visible, False


def tree_order(runs: list) -> list[tuple[Any, int]]:
    """The page's runs with each child right under its parent (when both are on
    the page), keeping the search order among siblings."""
    on_page = {r.id for r in runs}
    children: dict[int, list] = {}
    roots = []
    for run in runs:
        if run.parent_id in on_page and run.parent_id != run.id:
            children.setdefault(run.parent_id, []).append(run)
        else:
            roots.append(run)
    ordered: list[tuple[Any, int]] = []
    seen: set[int] = set()

    def visit(run, depth: int) -> None:
        if run.id in seen:
            return
        seen.add(run.id)
        ordered.append((run, depth))
        for child in children.get(run.id, ()):
            visit(child, min(depth + 1, 6))

    for run in roots:
        visit(run, 0)
    for run in runs:  # anything in a parent cycle
        visit(run, 0)
    return ordered


def _ci_jobs(ctx: PageContext, runs: list) -> dict:
    if not ctx.can_read_builds:
        return {}
    jobs = {}
    for job_id in sorted({r.ci_job_id for r in runs if r.ci_job_id}):
        jobs[job_id] = resolve_job(ctx.project, job_id)
    return jobs


def run_rows(ctx: PageContext, runs: list, data: dict) -> list[RunRow]:
    """The table's rows for the page's ``runs`` (``data``: their loaded values), in tree order."""
    parents = q.runs_by_pks(ctx.session, ctx.project_id, [r.parent_id for r in runs if r.parent_id])
    jobs = _ci_jobs(ctx, runs)
    rows = []
    for run, depth in tree_order(runs):
        d = data[run.id]
        rows.append(RunRow(
            run=run,
            depth=depth,
            params=dict(d.params),
            metrics={m[0]: (m[1], m[2]) for m in d.metrics},
            tags=dict(d.tags),
            parent=parents.get(run.parent_id) if depth == 0 and run.parent_id else None,
            ci_job=jobs.get(run.ci_job_id),
            author=present_user(run.author_id),
        ))
    return rows
