"""Pages: an experiment's Traces tab (filter with the trace grammar, keyset pages) and
a trace's page (span tree with its timeline, each span's inputs, outputs, attributes
and events, the assessments)."""
from __future__ import annotations

from flask import request

from ...errors import InvalidParameter
from ...services import trace_search, trace_spans, traces
from ...services import trace_view
from ...services import ui_queries as q
from ...http.args import int_arg
from .support import PageContext, add_page, query_url, render, settings, token_pager

# Span rows per page of the trace page: a 10,000-span trace is not 10,000 rows at once
# (the whole tree is still laid out, so each page's bars keep the trace's timeline).
SPANS_PER_PAGE = 500
STATE_BADGES = {"OK": "success", "ERROR": "danger", "IN_PROGRESS": "info", "STATE_UNSPECIFIED": "neutral"}


def register(bp) -> None:
    add_page(bp, "/ml/experiments/<int:iid>/traces", "experiment_traces", experiment_traces)
    add_page(bp, "/ml/traces/<trace_id>", "trace", trace_page)
    add_page(bp, "/ml/traces/<trace_id>/spans/<span_id>", "trace_span", span_page)


def experiment_traces(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    filter_string = request.args.get("filter", "")
    error = None
    found, next_token = [], None
    try:
        found, next_token = trace_search.search(
            ctx.session, ctx.project_id, [experiment.iid], filter_string=filter_string,
            max_results=settings().ui_page_size, page_token=request.args.get("page_token") or None)
    except InvalidParameter as exc:
        error = exc.message
    return render(
        "traces.html",
        status=400 if error else 200,
        experiment=experiment,
        traces=found,
        usage={d.trace.id: trace_view.token_usage(d.metadata) for d in found},
        filter=filter_string,
        error=error,
        paging=token_pager(next_token),
        badges=STATE_BADGES,
        value_of=trace_view.assessment_value,
    )


def _span_pager(total: int) -> tuple[int, dict]:
    """The first span shown and the links to the other pages of the span tree."""
    pages = max(1, -(-total // SPANS_PER_PAGE))
    number = min(int_arg("spans_page", 1, 1, lenient=True), pages)
    link = lambda n: query_url(spans_page=None if n == 1 else n)  # noqa: E731
    return (number - 1) * SPANS_PER_PAGE, {
        "first": link(1) if number > 2 else None, "prev": link(number - 1) if number > 1 else None,
        "next": link(number + 1) if number < pages else None, "number": number,
    }


def trace_page(ctx: PageContext, trace_id: str):
    data = traces.get_trace_data(ctx.session, ctx.project_id, trace_id)
    experiment = q.find_experiment(ctx.session, ctx.project_id, data.experiment_iid)
    index = trace_spans.span_index(ctx.session, ctx.project_id, data)
    first, span_paging = _span_pager(len(index))
    span_count, spans = trace_view.span_tree(index, first, SPANS_PER_PAGE)
    return render(
        "trace.html",
        data=data,
        trace=data.trace,
        experiment=experiment,
        spans=spans,
        span_count=span_count,
        first_span=first,
        span_paging=span_paging,
        usage=trace_view.token_usage(data.metadata),
        badges=STATE_BADGES,
        value_of=trace_view.assessment_value,
    )


def span_page(ctx: PageContext, trace_id: str, span_id: str):
    """One span's inputs, outputs, attributes and events: the trace page loads it into
    the span's row when opened (``?fragment=1``), or shows it as a page of its own."""
    data = traces.get_trace_data(ctx.session, ctx.project_id, trace_id)
    span = trace_view.span_detail(trace_spans.get_span(ctx.session, ctx.project_id, data, span_id))
    if request.args.get("fragment"):
        return render("_trace_span.html", s=span, trace=data.trace)
    experiment = q.find_experiment(ctx.session, ctx.project_id, data.experiment_iid)
    return render("trace_span.html", s=span, trace=data.trace, experiment=experiment)


def linked_traces(session, project_id: str, run) -> dict:
    """The run page's context for its traces (``_run_traces.html``)."""
    return {
        "run_traces": traces.load_data(session, traces.traces_of_run(session, project_id, run)),
        "trace_badges": STATE_BADGES,
        "trace_value_of": trace_view.assessment_value,
    }
