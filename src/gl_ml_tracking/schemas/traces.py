"""Request schemas of MLflow 3's trace endpoints (``service.proto`` and
``assessments.proto`` of the pinned client)."""
from __future__ import annotations

from marshmallow import Schema, fields

from .common import KeyValue, int64, list_of, string, text


class ExperimentLocationIn(Schema):
    experiment_id = text()


class TraceLocationIn(Schema):
    type = string()
    mlflow_experiment = fields.Nested(ExperimentLocationIn)


class TraceInfoIn(Schema):
    trace_id = string()
    client_request_id = string()
    trace_location = fields.Nested(TraceLocationIn)
    request_preview = string()
    response_preview = string()
    request_time = fields.Raw()  # protobuf Timestamp: RFC 3339 text
    execution_duration = fields.Raw()  # protobuf Duration: "1.5s"
    state = fields.Raw()
    trace_metadata = fields.Dict(keys=fields.String(), values=fields.String())
    tags = fields.Dict(keys=fields.String(), values=fields.String())
    assessments = fields.List(fields.Dict())


class TraceIn(Schema):
    trace_info = fields.Nested(TraceInfoIn)


class StartTrace(Schema):
    """StartTraceV3 (``trace``) or the v2 StartTrace (the other fields): same URL."""

    trace = fields.Nested(TraceIn)
    experiment_id = text()
    timestamp_ms = int64()
    request_metadata = list_of(fields.Nested(KeyValue))
    tags = list_of(fields.Nested(KeyValue))


class EndTraceV2(Schema):
    timestamp_ms = int64()
    status = string()
    request_metadata = list_of(fields.Nested(KeyValue))
    tags = list_of(fields.Nested(KeyValue))


class TraceIdOnly(Schema):
    """GetTraceInfoV3, GetTraceInfo: the id is in the path."""


class GetTraceArtifact(Schema):
    """MLflow's UI handler get-trace-artifact (the view words its own missing-id error);
    ``path`` names an attachment of the trace's spans."""
    request_id = string()
    path = string()


class GetTrace(Schema):
    trace_id = string(required=True)
    allow_partial = fields.Boolean()


class BatchGetTraces(Schema):
    trace_ids = list_of(string())
    experiment_ids = list_of(text())


class SearchTraces(Schema):
    """SearchTracesV3."""

    locations = list_of(fields.Nested(TraceLocationIn))
    filter = string()
    max_results = int64()
    order_by = list_of(string())
    page_token = string()


class SearchTracesV2(Schema):
    experiment_ids = list_of(text())
    filter = string()
    max_results = int64()
    order_by = list_of(string())
    page_token = string()


class SetTraceTag(Schema):
    key = string()
    value = string()


class DeleteTraceTag(Schema):
    key = string()


class DeleteTraces(Schema):
    experiment_id = text(required=True)
    max_timestamp_millis = int64()
    max_traces = int64()
    request_ids = list_of(string())


class LinkTracesToRun(Schema):
    trace_ids = list_of(string())
    run_id = string(required=True)


class PromptVersionRef(Schema):
    name = string()
    version = string()


class LinkPromptsToTrace(Schema):
    trace_id = string(required=True)
    prompt_versions = list_of(fields.Nested(PromptVersionRef))


class AssessmentIn(Schema):
    assessment_id = string()
    assessment_name = string()
    trace_id = string()
    span_id = string()
    source = fields.Dict()
    create_time = fields.Raw()
    last_update_time = fields.Raw()
    feedback = fields.Dict()
    expectation = fields.Dict()
    rationale = string()
    error = fields.Dict()
    metadata = fields.Dict(keys=fields.String(), values=fields.String())
    overrides = string()
    valid = fields.Boolean()


class CreateAssessment(Schema):
    assessment = fields.Nested(AssessmentIn, required=True)


class UpdateAssessment(Schema):
    assessment = fields.Nested(AssessmentIn, required=True)
    update_mask = fields.Raw(required=True)  # protobuf FieldMask: "a,b" in JSON


class AssessmentIdOnly(Schema):
    """GetAssessment, DeleteAssessment: the ids are in the path."""


# -- issues (issues.proto) ----------------------------------------------------------
class CreateIssue(Schema):
    experiment_id = text(required=True)
    name = string(required=True)
    description = string(required=True)
    status = string()
    severity = string()
    root_causes = list_of(string())
    source_run_id = string()
    created_by = string()
    categories = list_of(string())


class UpdateIssue(Schema):
    name = string()
    description = string()
    status = string()
    severity = string()


class IssueIdOnly(Schema):
    """GetIssue: the id is in the path."""


class SearchIssues(Schema):
    experiment_id = text()
    filter_string = string()
    max_results = int64()
    page_token = string()
    include_trace_count = fields.Boolean()


class MetricAggregationIn(Schema):
    aggregation_type = string()
    percentile_value = fields.Float()


class QueryTraceMetrics(Schema):
    experiment_ids = list_of(text())
    view_type = string()
    metric_name = string()
    aggregations = list_of(fields.Nested(MetricAggregationIn))
    dimensions = list_of(string())
    filters = list_of(string())
    time_interval_seconds = int64()
    start_time_ms = int64()
    end_time_ms = int64()
    max_results = int64()
    page_token = string()


class CalculateTraceFilterCorrelation(Schema):
    experiment_ids = list_of(text())
    filter_string1 = string()
    filter_string2 = string()
    base_filter = string()
