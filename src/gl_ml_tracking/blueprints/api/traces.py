"""MLflow 3 trace endpoints: start/end, get (info, full trace, batch), search, tags,
delete, link to runs, assessments. Each is served under ``/api/2.0/mlflow/`` and
``/api/3.0/mlflow/`` (the client uses both) and MLflow's UI ``/ajax-api/`` prefix."""
from __future__ import annotations

import json

from flask import Response, stream_with_context

from ...errors import BadRequest, InvalidParameter
from ...schemas import traces as req
from ...schemas.trace_json import assessment_json, trace_info_json, trace_info_v2_json
from ...schemas.trace_span_dict import traces_json
from ...http.files import file_response
from ...services import (assessments, span_payloads, trace_correlation, trace_files, trace_ingest, trace_issues,
                         trace_metrics, trace_search, trace_spans, traces)
from .framework import AJAX_PREFIX, EXPERIMENTS_READ, EXPERIMENTS_WRITE, MLFLOW_PREFIX, ApiContext, Routes

routes = Routes()  # gathered by blueprints/api/__init__.py
V3_PREFIX = "/api/3.0/mlflow/"


def route(path, methods, access, schema):
    """Declare ``path`` under both API versions."""
    def decorate(view):
        routes.route(path, methods, access, schema=schema)(view)
        routes.route(path, methods, access, schema=schema, prefix=V3_PREFIX)(view)
        return view

    return decorate


def _info(ctx: ApiContext, trace_id) -> dict:
    return trace_info_json(traces.get_trace_data(ctx.session, ctx.project_id, trace_id))


# -- start / end ----------------------------------------------------------------------
@route("traces", "POST", EXPERIMENTS_WRITE, req.StartTrace)
def start_trace(ctx: ApiContext):
    trace = ctx.get("trace")
    if trace is not None:  # StartTraceV3
        if not isinstance(trace, dict):
            raise InvalidParameter("Invalid value for parameter 'trace'.")
        row, experiment_iid = trace_ingest.start_trace(ctx.session, ctx.project_id, trace.get("trace_info"))
        return {"trace": {"trace_info": trace_info_json(traces.load_data(ctx.session, [(row, experiment_iid)])[0])}}
    pk = trace_ingest.start_trace_v2(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("timestamp_ms"),
                                     ctx.get("request_metadata"), ctx.get("tags"))
    trace_id = traces.trace_id_of(ctx.session, pk)
    return {"trace_info": trace_info_v2_json(traces.get_trace_data(ctx.session, ctx.project_id, trace_id))}


@route("traces/<request_id>", "PATCH", EXPERIMENTS_WRITE, req.EndTraceV2)
def end_trace(ctx: ApiContext):
    trace, _ = traces.get_trace_row(ctx.session, ctx.project_id, ctx.get("request_id"))
    trace_ingest.end_trace_v2(ctx.session, trace, ctx.get("timestamp_ms"), ctx.get("status"),
                              ctx.get("request_metadata"), ctx.get("tags"))
    return {"trace_info": trace_info_v2_json(traces.get_trace_data(ctx.session, ctx.project_id, trace.trace_id))}


# -- reads ----------------------------------------------------------------------------
@route("traces/<trace_id>", "GET", EXPERIMENTS_READ, req.TraceIdOnly)
def get_trace_info(ctx: ApiContext):
    return {"trace": {"trace_info": _info(ctx, ctx.get("trace_id"))}}


@route("traces/<request_id>/info", "GET", EXPERIMENTS_READ, req.TraceIdOnly)
def get_trace_info_v2(ctx: ApiContext):
    return {"trace_info": trace_info_v2_json(traces.get_trace_data(ctx.session, ctx.project_id, ctx.get("request_id")))}


def _streamed(pieces) -> Response:
    # Span after span (stored payloads straight from the storage): a 10,000-span or a 50 MB
    # trace is never one value in the server's memory.
    return Response(stream_with_context(span_payloads.buffered(pieces)), mimetype="application/json")


@route("traces/get", "GET", EXPERIMENTS_READ, req.GetTrace)
def get_trace(ctx: ApiContext):
    data = traces.get_trace_data(ctx.session, ctx.project_id, ctx.get("trace_id"))
    # Read now: the rows expire when the pipeline commits, before the answer streams.
    session, pk, info = ctx.session, data.trace.id, json.dumps(trace_info_json(data))
    from_file = trace_spans.file_payloads(ctx.session, ctx.project_id, [data]).get(pk)

    def pieces():
        yield b'{"trace":'
        yield from trace_spans.trace_chunks(session, pk, info, from_file)
        yield b"}"

    return _streamed(pieces())


@routes.route("get-trace-artifact", "GET", EXPERIMENTS_READ, prefix=AJAX_PREFIX, schema=req.GetTraceArtifact)
def get_trace_artifact(ctx: ApiContext):
    """MLflow's UI handler: the trace's spans as the ``traces.json`` download (the uploaded
    file as it is when the spans are not in the database), or with ``path`` one attachment."""
    if not ctx.get("request_id"):
        raise BadRequest('Request must include the "request_id" query parameter.')
    data = traces.get_trace_data(ctx.session, ctx.project_id, ctx.get("request_id"))
    if ctx.get("path"):
        return file_response(trace_files.attachment(ctx.session, ctx.project_id, data.experiment_iid,
                                                    data.trace.trace_id, ctx.get("path")))
    uploaded = trace_spans.data_file(ctx.session, ctx.project_id, data)
    if uploaded is not None:
        return file_response(uploaded)
    session, pk = ctx.session, data.trace.id
    body = traces_json(span_payloads.full_text(p) for p in span_payloads.iter_payloads(session, pk))
    return Response(stream_with_context(span_payloads.buffered(body)), mimetype="text/plain",
                    headers={"Content-Disposition": "attachment; filename=traces.json"})


@route("traces/batchGet", "GET", EXPERIMENTS_READ, req.BatchGetTraces)
def batch_get_traces(ctx: ApiContext):
    datas = traces.batch_get(ctx.session, ctx.project_id, ctx.get_list("trace_ids"))
    session, infos = ctx.session, [(d.trace.id, json.dumps(trace_info_json(d))) for d in datas]
    from_files = trace_spans.file_payloads(ctx.session, ctx.project_id, datas)

    def pieces():
        yield b'{"traces":['
        for i, (pk, info) in enumerate(infos):
            if i:
                yield b","
            yield from trace_spans.trace_chunks(session, pk, info, from_files.get(pk))
        yield b"]}"

    return _streamed(pieces())


@route("traces/batchGetInfos", "POST", EXPERIMENTS_READ, req.BatchGetTraces)
def batch_get_trace_infos(ctx: ApiContext):
    datas = traces.batch_get(ctx.session, ctx.project_id, ctx.get_list("trace_ids"))
    return {"trace_infos": [trace_info_json(d) for d in datas]}


def _search(ctx: ApiContext, experiment_ids) -> tuple[list, str]:
    return trace_search.search(ctx.session, ctx.project_id, experiment_ids, filter_string=ctx.get("filter"),
                               max_results=ctx.get("max_results"), order_by=ctx.get_list("order_by"),
                               page_token=ctx.get("page_token") or None)


def _page(datas: list, token, key: str, render) -> dict:
    result: dict = {key: [render(d) for d in datas]}
    if token:
        result["next_page_token"] = token
    return result


@route("traces/search", "POST", EXPERIMENTS_READ, req.SearchTraces)
def search_traces(ctx: ApiContext):
    ids = [((loc or {}).get("mlflow_experiment") or {}).get("experiment_id") for loc in ctx.get_list("locations")]
    return _page(*_search(ctx, [i for i in ids if i is not None]), "traces", trace_info_json)


@route("traces", "GET", EXPERIMENTS_READ, req.SearchTracesV2)
def search_traces_v2(ctx: ApiContext):
    return _page(*_search(ctx, ctx.get_list("experiment_ids")), "traces", trace_info_v2_json)


# -- writes ---------------------------------------------------------------------------
@route("traces/<trace_id>/tags", "PATCH", EXPERIMENTS_WRITE, req.SetTraceTag)
def set_trace_tag(ctx: ApiContext):
    traces.set_tag(ctx.session, ctx.project_id, ctx.get("trace_id"), ctx.get("key"), ctx.get("value"))
    return {}


@route("traces/<trace_id>/tags", "DELETE", EXPERIMENTS_WRITE, req.DeleteTraceTag)
def delete_trace_tag(ctx: ApiContext):
    traces.delete_tag(ctx.session, ctx.project_id, ctx.get("trace_id"), ctx.get("key"))
    return {}


@route("traces/delete-traces", "POST", EXPERIMENTS_WRITE, req.DeleteTraces)
def delete_traces(ctx: ApiContext):
    deleted = traces.delete_traces(ctx.session, ctx.project_id, ctx.get("experiment_id"),
                                   max_timestamp_millis=ctx.get("max_timestamp_millis"),
                                   max_traces=ctx.get("max_traces"), trace_ids=ctx.get_list("request_ids"))
    return {"traces_deleted": deleted}


@route("traces/link-to-run", "POST", EXPERIMENTS_WRITE, req.LinkTracesToRun)
def link_traces_to_run(ctx: ApiContext):
    traces.link_to_run(ctx.session, ctx.project_id, ctx.get_list("trace_ids"), ctx.get("run_id"))
    return {}


# -- assessments ----------------------------------------------------------------------
@route("traces/link-prompts", "POST", EXPERIMENTS_WRITE, req.LinkPromptsToTrace)
def link_prompts_to_trace(ctx: ApiContext):
    traces.link_prompts(ctx.session, ctx.project_id, ctx.get("trace_id"), ctx.get_list("prompt_versions"))
    return {}


@route("traces/<trace_id>/assessments", "POST", EXPERIMENTS_WRITE, req.CreateAssessment)
def create_assessment(ctx: ApiContext):
    data = dict(ctx.get("assessment") or {})
    data.setdefault("trace_id", ctx.get("trace_id"))
    if data.get("trace_id") != ctx.get("trace_id"):
        raise InvalidParameter("The assessment's trace_id does not match the trace in the URL.")
    row, trace_id = assessments.create(ctx.session, ctx.project_id, data)
    return {"assessment": assessment_json(row, trace_id)}


@route("traces/<trace_id>/assessments/<assessment_id>", "GET", EXPERIMENTS_READ, req.AssessmentIdOnly)
def get_assessment(ctx: ApiContext):
    row = assessments.get(ctx.session, ctx.project_id, ctx.get("trace_id"), ctx.get("assessment_id"))
    return {"assessment": assessment_json(row, ctx.get("trace_id"))}


@route("traces/<trace_id>/assessments/<assessment_id>", "PATCH", EXPERIMENTS_WRITE, req.UpdateAssessment)
def update_assessment(ctx: ApiContext):
    row = assessments.update_one(ctx.session, ctx.project_id, ctx.get("trace_id"), ctx.get("assessment_id"),
                                 ctx.get("assessment"), ctx.get("update_mask"))
    return {"assessment": assessment_json(row, ctx.get("trace_id"))}


@route("traces/<trace_id>/assessments/<assessment_id>", "DELETE", EXPERIMENTS_WRITE, req.AssessmentIdOnly)
def delete_assessment(ctx: ApiContext):
    assessments.delete_one(ctx.session, ctx.project_id, ctx.get("trace_id"), ctx.get("assessment_id"))
    return {}



# -- issues -------------------------------------------------------------------------
@route("issues", "POST", EXPERIMENTS_WRITE, req.CreateIssue)
def create_issue(ctx: ApiContext):
    return {"issue": trace_issues.issue_json(*trace_issues.create(ctx.session, ctx.project_id, ctx.args))}


@route("issues/search", "POST", EXPERIMENTS_READ, req.SearchIssues)
def search_issues(ctx: ApiContext):
    found, token = trace_issues.search(ctx.session, ctx.project_id, ctx.get("experiment_id"), ctx.get("filter_string"),
                                       ctx.get("max_results"), ctx.get("page_token"))
    page = _page(found, token, "issues", lambda pair: trace_issues.issue_json(*pair))
    # (MLflow 3.17.2 names the next page of issues even on the last one, as "": its case reads it.)
    page.setdefault("next_page_token", "")
    return page


@route("issues/<issue_id>", "GET", EXPERIMENTS_READ, req.IssueIdOnly)
def get_issue(ctx: ApiContext):
    return {"issue": trace_issues.issue_json(*trace_issues.get(ctx.session, ctx.project_id, ctx.get("issue_id")))}


@route("issues/<issue_id>", "PATCH", EXPERIMENTS_WRITE, req.UpdateIssue)
def update_issue(ctx: ApiContext):
    return {"issue": trace_issues.issue_json(*trace_issues.update(ctx.session, ctx.project_id, ctx.get("issue_id"), ctx.args))}



@route("traces/metrics", "POST", EXPERIMENTS_READ, req.QueryTraceMetrics)
def query_trace_metrics(ctx: ApiContext):
    return {"data_points": trace_metrics.query(ctx.session, ctx.project_id, ctx.args)}


__all__ = ["routes", "MLFLOW_PREFIX", "V3_PREFIX"]


@routes.route("traces/calculate-filter-correlation", "POST", EXPERIMENTS_READ, prefix=V3_PREFIX,
              schema=req.CalculateTraceFilterCorrelation)
def calculate_trace_filter_correlation(ctx: ApiContext):
    return trace_correlation.correlate(ctx.session, ctx.project_id, ctx.get_list("experiment_ids"),
                                       ctx.get("filter_string1"), ctx.get("filter_string2"), ctx.get("base_filter"))
