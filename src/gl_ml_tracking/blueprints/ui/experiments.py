"""Pages: the experiments list, an experiment with its runs table, the CSV
export, the comparison of runs; and the experiment's delete/restore POSTs."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from flask import Response, request, stream_with_context

from .. import hooks as perms
from ..errors import InvalidParameter
from ..models import ACTIVE
from ..services import experiments as exp_service
from ..services import search as search_service
from ..services import ui_queries as q
from ..services.ci_link import resolve_job
from ..services.run_data import load_run_data
from ..services.runs import PARENT_RUN_TAG
from .ui_support import (
    PageContext,
    commit_or_rollback,
    settings,
    done,
    load_page,
    load_write_page,
    render,
    token_pager,
    tracking_uri,
)

EXPERIMENTS_SORTS = {
    "created_desc": ("Newest", ["creation_time DESC"]),
    "created_asc": ("Oldest", ["creation_time ASC"]),
    "updated_desc": ("Recently updated", ["last_update_time DESC"]),
    "name_asc": ("Name, A–Z", ["name ASC"]),
    "name_desc": ("Name, Z–A", ["name DESC"]),
}
# Columns shown before the reader chooses: the first keys of each kind.
DEFAULT_VISIBLE_PER_KIND = 12
# Tags shown elsewhere on the page (name, nesting) or too long for a cell.
HIDDEN_TAG_COLUMNS = {"mlflow.runName", "mlflow.parentRunId", "mlflow.note.content", "mlflow.log-model.history"}
MAX_COMPARE = 20
EXPORT_PAGE = 500


def register(bp) -> None:
    bp.add_url_rule("/ml/experiments", "experiments", experiments_list)
    bp.add_url_rule("/ml/experiments/<int:iid>", "experiment", experiment_page)
    bp.add_url_rule("/ml/experiments/<int:iid>.csv", "experiment_csv", experiment_csv)
    bp.add_url_rule("/ml/experiments/<int:iid>/export.csv", "experiment_export", experiment_csv)
    bp.add_url_rule("/ml/experiments/<int:iid>/compare", "compare", compare_page)
    bp.add_url_rule("/ml/experiments/<int:iid>/delete", "delete_experiment", delete_experiment, methods=["POST"])
    bp.add_url_rule("/ml/experiments/<int:iid>/restore", "restore_experiment", restore_experiment, methods=["POST"])


# --------------------------------------------------------------------------- helpers
def _name_filter(text: str) -> str:
    """The experiments-search filter for a name substring typed in the search box."""
    if "'" not in text:
        return f"name ILIKE '%{text}%'"
    if '"' not in text:
        return f'name ILIKE "%{text}%"'
    raise InvalidParameter("Search text cannot contain both ' and \" quotes.")


# --------------------------------------------------------------------------- experiments list
def experiments_list():
    ctx = load_page()
    session = ctx.session
    search = request.args.get("search", "").strip()[:250]
    sort = request.args.get("sort", "created_desc")
    if sort not in EXPERIMENTS_SORTS:
        sort = "created_desc"
    error = None
    experiments, next_token = [], None
    try:
        experiments, next_token = search_service.search_experiments(
            session, ctx.project_id,
            filter_string=_name_filter(search) if search else "",
            view_type="ACTIVE_ONLY",
            max_results=settings().ui_page_size,
            order_by=EXPERIMENTS_SORTS[sort][1],
            page_token=request.args.get("page_token") or None,
        )
    except InvalidParameter as exc:
        error = exc.message
    summaries = q.experiment_summaries(session, ctx.project_id, experiments)
    total = q.count_experiments(session, ctx.project_id)
    return render(
        "experiments.html",
        status=400 if error else 200,
        experiments=experiments,
        summaries=summaries,
        total=total,
        search=search,
        sort=sort,
        sorts=EXPERIMENTS_SORTS,
        error=error,
        paging=token_pager(next_token),
        tracking_uri=tracking_uri(ctx.project),
    )


# --------------------------------------------------------------------------- runs table
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


def _parse_order(raw: str) -> tuple[Optional[str], bool]:
    """``"metrics.`acc` DESC"`` -> (key expression, descending)."""
    raw = (raw or "").strip()
    if not raw:
        return None, True
    parts = raw.rsplit(" ", 1)
    if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
        return parts[0].strip(), parts[1].upper() == "DESC"
    return raw, False


def _columns(ctx: PageContext, experiment, page_data: dict) -> tuple[list[Column], list[Column], bool]:
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


def _tree_order(runs: list) -> list[tuple[Any, int]]:
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


def _search_page(ctx: PageContext, experiment, order_expr: Optional[str], descending: bool):
    view = "ACTIVE_ONLY" if experiment.lifecycle_stage == ACTIVE else "ALL"
    order_by = [f"{order_expr} {'DESC' if descending else 'ASC'}"] if order_expr else None
    return search_service.search_runs(
        ctx.session, ctx.project_id, [experiment.id],
        filter_string=request.args.get("filter", ""),
        run_view_type=view,
        max_results=settings().runs_page_size,
        order_by=order_by,
        page_token=request.args.get("page_token") or None,
    )


def experiment_page(iid: int):
    ctx = load_page()
    session = ctx.session
    experiment = q.find_experiment(session, ctx.project_id, iid)
    order_expr, descending = _parse_order(request.args.get("order", ""))
    error = None
    runs, next_token = [], None
    try:
        runs, next_token = _search_page(ctx, experiment, order_expr, descending)
    except InvalidParameter as exc:
        error = exc.message
    data = load_run_data(session, [r.id for r in runs], inputs=False, outputs=False)
    offered, visible, chosen = _columns(ctx, experiment, data)
    parents = q.runs_by_pks(session, ctx.project_id, [r.parent_id for r in runs if r.parent_id])
    jobs = _ci_jobs(ctx, runs)
    from .ui_support import present_user

    rows = []
    for run, depth in _tree_order(runs):
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
    metric_keys = sorted({m[0] for d in data.values() for m in d.metrics})
    chart_key = request.args.get("chart") or (metric_keys[0] if metric_keys else "")
    chart_points = [
        {"iid": row.run.iid, "name": row.run.name or f"Run {row.run.iid}", "value": row.metrics[chart_key][0]}
        for row in rows
        if chart_key in row.metrics and not row.metrics[chart_key][1] and row.metrics[chart_key][0] is not None
    ]
    summary = q.experiment_summaries(session, ctx.project_id, [experiment])[experiment.id]
    return render(
        "experiment.html",
        status=400 if error else 200,
        experiment=experiment,
        summary=summary,
        rows=rows,
        offered=offered,
        visible=visible,
        columns_chosen=chosen,
        order_expr=order_expr,
        descending=descending,
        attribute_sorts=ATTRIBUTE_SORTS,
        filter=request.args.get("filter", ""),
        error=error,
        paging=token_pager(next_token),
        show_ci=ctx.can_read_builds,
        metric_keys=metric_keys,
        chart_key=chart_key,
        chart_json=json.dumps(chart_points, allow_nan=False),
        max_compare=MAX_COMPARE,
        parent_tag=PARENT_RUN_TAG,
    )


# --------------------------------------------------------------------------- CSV export
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (numbers stay numbers)."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def _metric_cell(value: Any, is_nan: bool) -> str:
    if is_nan:
        return "NaN"
    return "" if value is None else repr(float(value)) if isinstance(value, float) else str(value)


def experiment_csv(iid: int):
    ctx = load_page()
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    order_expr, descending = _parse_order(request.args.get("order", ""))
    order_by = [f"{order_expr} {'DESC' if descending else 'ASC'}"] if order_expr else None
    filter_string = request.args.get("filter", "")
    view = "ACTIVE_ONLY" if experiment.lifecycle_stage == ACTIVE else "ALL"
    # Validate before the first byte goes out: a bad filter is a 400 page, not a broken file.
    search_service.search_runs(ctx.session, ctx.project_id, [experiment.id], filter_string, view, 1, order_by, None)
    keys = q.export_keys(ctx.session, ctx.project_id, experiment.id, search_service.view_type_stages(view))
    project_id = ctx.project_id

    def rows() -> Iterator[str]:
        session = ctx.session
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def flush() -> str:
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return text

        writer.writerow(["project_id", "experiment_iid", "run_iid", "run_id", "name", "status", "start_time",
                         "end_time", "user"] + [f"params.{k}" for k in keys.params]
                        + [f"metrics.{k}" for k in keys.metrics])
        yield flush()
        token = None
        while True:
            runs, token = search_service.search_runs(
                session, project_id, [experiment.id], filter_string, view, EXPORT_PAGE, order_by, token)
            data = load_run_data(session, [r.id for r in runs], tags=False, inputs=False, outputs=False)
            for run in runs:
                params = dict(data[run.id].params)
                metrics = {m[0]: (m[1], m[2]) for m in data[run.id].metrics}
                writer.writerow(
                    [project_id, experiment.iid, run.iid, run.run_uuid, _cell(run.name), run.status,
                     run.start_time or "", run.end_time or "", _cell(run.user_id)]
                    + [_cell(params.get(k)) for k in keys.params]
                    + [_metric_cell(*metrics[k]) if k in metrics else "" for k in keys.metrics]
                )
            yield flush()
            for run in runs:  # keep memory flat however many pages go out
                session.expunge(run)
            if not token:
                return

    filename = f"experiment_{experiment.iid}_runs.csv"
    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


# --------------------------------------------------------------------------- compare
def compare_page(iid: int):
    ctx = load_page()
    session = ctx.session
    experiment = q.find_experiment(session, ctx.project_id, iid)
    wanted = []
    for raw in request.args.getlist("runs"):
        for part in raw.split(","):
            if part.strip().isdecimal():  # not isdigit: int("²") fails
                wanted.append(int(part))
    runs = q.runs_by_iids(session, ctx.project_id, wanted[:MAX_COMPARE], experiment.id)
    data = load_run_data(session, [r.id for r in runs], inputs=False, outputs=False)
    param_keys = sorted({k for r in runs for k, _ in data[r.id].params})
    metric_keys = sorted({m[0] for r in runs for m in data[r.id].metrics})
    params = {r.id: dict(data[r.id].params) for r in runs}
    metrics = {r.id: {m[0]: (m[1], m[2]) for m in data[r.id].metrics} for r in runs}
    only_diff = request.args.get("diff") == "1"
    param_rows = []
    for key in param_keys:
        values = [params[r.id].get(key) for r in runs]
        differs = len({v for v in values}) > 1
        if only_diff and not differs:
            continue
        param_rows.append((key, values, differs))
    metric_rows = []
    for key in metric_keys:
        cells = [metrics[r.id].get(key) for r in runs]
        numbers = [c[0] for c in cells if c and not c[1] and c[0] is not None]
        best_max = max(numbers) if numbers else None
        best_min = min(numbers) if numbers else None
        differs = len({c for c in cells}) > 1
        if only_diff and not differs:
            continue
        metric_rows.append((key, cells, best_min, best_max))
    chart_series = [
        {"iid": r.iid, "name": r.name or f"Run {r.iid}",
         "url": _chart_url(r.iid)} for r in runs
    ]
    return render(
        "compare.html",
        experiment=experiment,
        runs=runs,
        param_rows=param_rows,
        metric_rows=metric_rows,
        metric_keys=metric_keys,
        only_diff=only_diff,
        chart_json=json.dumps(chart_series),
        too_many=len(wanted) > MAX_COMPARE,
        max_compare=MAX_COMPARE,
    )


def _chart_url(run_iid: int) -> str:
    from .ui_support import BP_NAME
    from flask import url_for

    return url_for(f"{BP_NAME}.chart_data", iid=run_iid)


# --------------------------------------------------------------------------- delete / restore
def delete_experiment(iid: int):
    ctx = load_write_page(perms.WRITE_MODEL_EXPERIMENTS)
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    commit_or_rollback(lambda: exp_service.delete_experiment(ctx.session, ctx.project_id, experiment.iid))
    return done(f"Experiment “{experiment.name}” moved to the trash.", "experiments")


def restore_experiment(iid: int):
    ctx = load_write_page(perms.WRITE_MODEL_EXPERIMENTS)
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    commit_or_rollback(lambda: exp_service.restore_experiment(ctx.session, ctx.project_id, experiment.iid))
    return done(f"Experiment “{experiment.name}” restored.", "experiment", iid=iid)
