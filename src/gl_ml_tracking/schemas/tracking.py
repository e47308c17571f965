"""Request schemas of the tracking endpoints: experiments, runs, metrics."""
from __future__ import annotations

from marshmallow import Schema, fields

from .common import RUN_STATUSES, VIEW_TYPES, DatasetInputIn, KeyValue, MetricIn, ModelInputIn, enum, int64, list_of, string, text


# -- experiments -------------------------------------------------------------------
class CreateExperiment(Schema):
    name = string(required=True)
    artifact_location = string()
    tags = list_of(fields.Nested(KeyValue))


class SearchExperiments(Schema):
    max_results = int64()
    page_token = string()
    filter = string()
    order_by = list_of(string())
    view_type = enum(VIEW_TYPES)


class GetExperiment(Schema):
    experiment_id = text(required=True)


class GetExperimentByName(Schema):
    experiment_name = string(required=True)


class ExperimentId(Schema):
    """DeleteExperiment, RestoreExperiment."""

    experiment_id = text(required=True)


class UpdateExperiment(Schema):
    experiment_id = text(required=True)
    new_name = string()


class SetExperimentTag(Schema):
    experiment_id = text(required=True)
    key = string(required=True)
    value = string(required=True)  # MLflow refuses a number here


class DeleteExperimentTag(Schema):
    experiment_id = text(required=True)
    key = string(required=True)


class ListExperiments(Schema):
    """The 1.x ``experiments/list`` (kept for old clients)."""

    view_type = enum(VIEW_TYPES)


# -- runs --------------------------------------------------------------------------
class CreateRun(Schema):
    experiment_id = text()
    user_id = string()
    run_name = string()
    start_time = int64()
    tags = list_of(fields.Nested(KeyValue))


class UpdateRun(Schema):
    run_id = string()
    run_uuid = string()
    status = enum(RUN_STATUSES)
    end_time = int64()
    run_name = string()


class RunId(Schema):
    """DeleteRun, RestoreRun."""

    run_id = string(required=True)


class GetRun(Schema):
    run_id = string()
    run_uuid = string()


class LogMetric(Schema):
    run_id = string()
    run_uuid = string()
    key = string(required=True)
    value = fields.Float(required=True, allow_nan=True)
    timestamp = int64(required=True)
    step = int64()
    model_id = string()
    dataset_name = string()
    dataset_digest = string()


class LogParam(Schema):
    run_id = string()
    run_uuid = string()
    key = string(required=True)
    value = string(required=True)  # MLflow refuses a number here


class SetTag(Schema):
    run_id = string()
    run_uuid = string()
    key = string(required=True)
    value = string()  # MLflow: a missing value is the empty string; a number is refused


class DeleteTag(Schema):
    run_id = string(required=True)
    key = string(required=True)


class LogBatch(Schema):
    run_id = string()
    metrics = list_of(fields.Nested(MetricIn))
    params = list_of(fields.Nested(KeyValue))
    tags = list_of(fields.Nested(KeyValue))


class LogInputs(Schema):
    run_id = string(required=True)
    datasets = list_of(fields.Nested(DatasetInputIn))
    models = list_of(fields.Nested(ModelInputIn))


class SearchRuns(Schema):
    experiment_ids = list_of(text())
    filter = string()
    run_view_type = enum(VIEW_TYPES)
    max_results = int64()
    order_by = list_of(string())
    page_token = string()


# -- metrics -----------------------------------------------------------------------
class GetMetricHistory(Schema):
    run_id = string()
    run_uuid = string()
    metric_key = string(required=True)
    page_token = string()
    max_results = int64()


class GetMetricHistoryBulkInterval(Schema):
    run_ids = list_of(string())
    metric_key = string(required=True)
    start_step = int64()
    end_step = int64()
    max_results = int64()
