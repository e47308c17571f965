"""Pages: the project's GenAI evaluation datasets and the records of one."""
from __future__ import annotations

import json
from typing import Any

from flask import request

from ...errors import InvalidParameter
from ...services import dataset_records, datasets, lookups
from .support import PageContext, add_page, render, settings, token_pager

RECORDS_PAGE = 50
CELL_CHARS = 300  # a record's JSON cell is cut after this many characters


def register(bp) -> None:
    add_page(bp, "/ml/datasets", "datasets", datasets_list)
    add_page(bp, "/ml/datasets/<dataset_id>", "dataset", dataset_page)


def datasets_list(ctx: PageContext):
    session = ctx.session
    search = request.args.get("search", "").strip()[:250]
    experiment_arg = request.args.get("experiment", "").strip()[:20]
    experiment = None
    error, views, next_token = None, [], None
    if experiment_arg:  # an unknown experiment is a 404 page
        experiment = lookups.get_experiment(session, ctx.project_id, experiment_arg, with_tags=False)
    try:
        views, next_token = datasets.search_datasets(
            session, ctx.project_id, experiment_ids=[str(experiment.iid)] if experiment else None,
            name_contains=search or None,
            max_results=settings().ui_page_size, order_by=["last_update_time DESC"],
            page_token=request.args.get("page_token") or None)
    except InvalidParameter as exc:
        error = exc.message
    views = datasets.describe(session, [view.dataset for view in views], with_experiments=True)
    counts = {view.dataset.id: _record_count(view.dataset) for view in views}
    return render("datasets.html", status=400 if error else 200, views=views, counts=counts, search=search,
                  experiment=experiment, error=error, paging=token_pager(next_token))


def _record_count(dataset: Any) -> int:
    try:
        return int(json.loads(dataset.profile or "{}").get("num_records", 0))
    except (ValueError, AttributeError, TypeError):
        return 0


def _cell(text: Any) -> str:
    """A stored JSON document, pretty and cut for a table cell ('' for none)."""
    value = None if text is None else json.loads(text)
    if value is None or value == {}:
        return ""
    pretty = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True)
    return pretty if len(pretty) <= CELL_CHARS else pretty[:CELL_CHARS] + " …"


def dataset_page(ctx: PageContext, dataset_id: str):
    session = ctx.session
    dataset = datasets.get_dataset(session, ctx.project_id, dataset_id)
    view = datasets.describe(session, [dataset], with_experiments=True)[0]
    records, next_token = dataset_records.read_records(session, ctx.project_id, dataset.dataset_id,
                                                       max_results=RECORDS_PAGE,
                                                       page_token=request.args.get("page_token") or None)
    rows = [{"record": r, "inputs": _cell(r.inputs), "outputs": _cell(r.outputs),
             "expectations": _cell(r.expectations), "tags": _cell(r.tags)} for r in records]
    schema = json.loads(dataset.schema) if dataset.schema else None
    return render("dataset.html", dataset=dataset, view=view, rows=rows, schema=schema,
                  experiments=datasets.linked_experiments(session, dataset),
                  record_count=_record_count(dataset), paging=token_pager(next_token))
