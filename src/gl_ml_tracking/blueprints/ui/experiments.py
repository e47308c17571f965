"""Pages: the experiments list, an experiment with its runs table, the CSV
export, the comparison of runs; and the experiment's delete/restore POSTs."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Iterator, Optional

from flask import Response, jsonify, request, stream_with_context, url_for

from ... import hooks as perms
from ...errors import InvalidParameter
from ...models import ACTIVE
from ...services import experiments as exp_service
from ...services import metric_direction
from ...services import search as search_service
from ...services import ui_queries as q
from ...services.run_count import count_matching_runs
from ...services.run_data import load_run_data
from ...services.constants import PARENT_RUN_TAG
from .runs import CHART_DATA
from .run_table import ATTRIBUTE_SORTS, parse_order, run_rows, table_columns
from .support import BP_NAME, PageContext, add_page, done, render, settings, token_pager, tracking_uri

EXPERIMENTS_SORTS = {
    "created_desc": ("Newest", ["creation_time DESC"]),
    "created_asc": ("Oldest", ["creation_time ASC"]),
    "updated_desc": ("Recently updated", ["last_update_time DESC"]),
    "name_asc": ("Name, A–Z", ["name ASC"]),
    "name_desc": ("Name, Z–A", ["name DESC"]),
}
MAX_COMPARE = 20
EXPORT_PAGE = 500


def register(bp) -> None:
    write = perms.WRITE_MODEL_EXPERIMENTS
    add_page(bp, "/ml/experiments", "experiments", experiments_list)
    add_page(bp, "/ml/experiments/<int:iid>", "experiment", experiment_page)
    add_page(bp, "/ml/experiments/<int:iid>.csv", "experiment_csv", experiment_csv)
    add_page(bp, "/ml/experiments/<int:iid>/export.csv", "experiment_export", experiment_csv)
    add_page(bp, "/ml/experiments/<int:iid>/compare", "compare", compare_page)
    add_page(bp, "/ml/experiments/<int:iid>/match-count", "experiment_match_count", match_count, surface=CHART_DATA)
    add_page(bp, "/ml/experiments/<int:iid>/delete", "delete_experiment", delete_experiment, write=write)
    add_page(bp, "/ml/experiments/<int:iid>/restore", "restore_experiment", restore_experiment, write=write)


# --------------------------------------------------------------------------- helpers
def _name_filter(text: str) -> str:
    """The experiments-search filter for a name substring typed in the search box."""
    if "'" not in text:
        return f"name ILIKE '%{text}%'"
    if '"' not in text:
        return f'name ILIKE "%{text}%"'
    raise InvalidParameter("Search text cannot contain both ' and \" quotes.")


# --------------------------------------------------------------------------- experiments list
def experiments_list(ctx: PageContext):
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
def _view_of(experiment) -> str:
    return "ACTIVE_ONLY" if experiment.lifecycle_stage == ACTIVE else "ALL"


def default_chart_metric(data: dict) -> str:
    """The metric most runs of the page have (ties: the first by name), not merely
    the alphabetically first, which one stray run may have logged."""
    counts: dict[str, int] = {}
    for d in data.values():
        for key in {m[0] for m in d.metrics}:
            counts[key] = counts.get(key, 0) + 1
    return min(counts, key=lambda k: (-counts[k], k)) if counts else ""


def _search_page(ctx: PageContext, experiment, order_expr: Optional[str], descending: bool):
    view = _view_of(experiment)
    order_by = [f"{order_expr} {'DESC' if descending else 'ASC'}"] if order_expr else None
    return search_service.search_runs(
        ctx.session, ctx.project_id, [experiment.id],
        filter_string=request.args.get("filter", ""),
        run_view_type=view,
        max_results=settings().runs_page_size,
        order_by=order_by,
        page_token=request.args.get("page_token") or None,
    )


def experiment_page(ctx: PageContext, iid: int):
    session = ctx.session
    experiment = q.find_experiment(session, ctx.project_id, iid)
    order_expr, descending = parse_order(request.args.get("order", ""))
    error = None
    runs, next_token = [], None
    try:
        runs, next_token = _search_page(ctx, experiment, order_expr, descending)
    except InvalidParameter as exc:
        error = exc.message
    data = load_run_data(session, [r.id for r in runs], inputs=False, outputs=False)
    offered, visible, chosen = table_columns(ctx, experiment, data)
    rows = run_rows(ctx, runs, data)
    metric_keys = sorted({m[0] for d in data.values() for m in d.metrics})
    chart_key = request.args.get("chart") or default_chart_metric(data)
    # NaN and ±inf stay in the table (as NaN, ∞); a chart cannot place them.
    chart_points = [
        {"iid": row.run.iid, "name": row.run.name or f"Run {row.run.iid}", "value": row.metrics[chart_key][0]}
        for row in rows
        if chart_key in row.metrics and not row.metrics[chart_key][1] and row.metrics[chart_key][0] is not None
        and math.isfinite(row.metrics[chart_key][0])
    ]
    # The filter's match count: known when every match is on this first page; otherwise
    # counted by a second request (match_count), so a filter scanning 100,000 runs does
    # not slow the page down.
    matches, matches_url = None, None
    if request.args.get("filter", "").strip() and not error:
        if not next_token and not request.args.get("page_token"):
            matches = (len(runs), False)
        else:
            matches_url = url_for(f"{BP_NAME}.experiment_match_count", iid=iid, filter=request.args.get("filter"))
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
        matches=matches,
        matches_url=matches_url,
        max_compare=MAX_COMPARE,
        parent_tag=PARENT_RUN_TAG,
    )


def match_count(ctx: PageContext, iid: int):
    """JSON: how many runs of the experiment match ``?filter=`` (``capped``: at least that many)."""
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    count, capped = count_matching_runs(ctx.session, ctx.project_id, experiment.id, request.args.get("filter", ""),
                                        search_service.view_type_stages(_view_of(experiment)))
    response = jsonify({"count": count, "capped": capped})
    response.headers["Cache-Control"] = "private, no-cache"
    return response


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


def experiment_csv(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    order_expr, descending = parse_order(request.args.get("order", ""))
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
def compare_page(ctx: PageContext, iid: int):
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
         "url": url_for(f"{BP_NAME}.chart_data", iid=r.iid)} for r in runs
    ]
    return render(
        "compare.html",
        experiment=experiment,
        runs=runs,
        param_rows=param_rows,
        metric_rows=metric_rows,
        metric_keys=metric_keys,
        directions=metric_direction.directions(metric_keys),
        only_diff=only_diff,
        chart_json=json.dumps(chart_series),
        too_many=len(wanted) > MAX_COMPARE,
        max_compare=MAX_COMPARE,
    )


# --------------------------------------------------------------------------- delete / restore
def delete_experiment(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    exp_service.delete_experiment(ctx.session, ctx.project_id, experiment.iid)
    return done(f"Experiment “{experiment.name}” moved to the trash.", "experiments")


def restore_experiment(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    exp_service.restore_experiment(ctx.session, ctx.project_id, experiment.iid)
    return done(f"Experiment “{experiment.name}” restored.", "experiment", iid=iid)
