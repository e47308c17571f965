"""Marshmallow schemas of the MLflow API requests we serve.

Field names, types and required flags follow MLflow's protobuf messages
(``service.proto``, ``model_registry.proto``, ``mlflow_artifacts.proto``);
``tests/test_fuzz_api.py`` checks them against the protos of the pinned client.
They describe the wire format (what :mod:`gl_ml_tracking.openapi` publishes and
the fuzzer generates from); the views and services still do the validation, so
an unexpected shape gets a clean MLflow error, never a crash.

``REQUEST_SCHEMAS`` maps an endpoint path below ``/api/2.0/mlflow/`` (or below
``/api/2.0/mlflow-artifacts/`` and ``/api/3.0/mlflow/`` for those prefixes) to
its schema. Flask-style placeholders (``<model_id>``) are path parameters.
"""
from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import OneOf

VIEW_TYPES = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
LOGGED_MODEL_STATUSES = (
    "LOGGED_MODEL_STATUS_UNSPECIFIED",
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
)


def _int64(**kwargs):
    # protobuf's JSON mapping allows int64 as a number or a decimal string; MLflow's
    # client sends numbers, so the schema says integer.
    return fields.Integer(strict=False, **kwargs)


def _str(**kwargs):
    return fields.String(**kwargs)


def _list(inner, **kwargs):
    return fields.List(inner, **kwargs)


# -- nested messages ----------------------------------------------------------------
class KeyValue(Schema):
    """ExperimentTag, RunTag, Param, InputTag, LoggedModelTag/Parameter,
    RegisteredModelTag, ModelVersionTag: all ``{key, value}``."""

    key = _str()
    value = _str()


class MetricIn(Schema):
    key = _str()
    value = fields.Float(allow_nan=True)
    timestamp = _int64()
    step = _int64()
    dataset_name = _str()
    dataset_digest = _str()
    model_id = _str()
    run_id = _str()


class DatasetIn(Schema):
    name = _str()
    digest = _str()
    source_type = _str()
    source = _str()
    schema = _str()
    profile = _str()


class DatasetInputIn(Schema):
    tags = _list(fields.Nested(KeyValue))
    dataset = fields.Nested(DatasetIn)


class ModelInputIn(Schema):
    model_id = _str()


class ModelOutputIn(Schema):
    model_id = _str()
    step = _int64()


class DatasetRefIn(Schema):
    """SearchLoggedModels.Dataset."""

    dataset_name = _str()
    dataset_digest = _str()


class LoggedModelOrderByIn(Schema):
    field_name = _str()
    ascending = fields.Boolean()
    dataset_name = _str()
    dataset_digest = _str()


class MultipartUploadPartIn(Schema):
    part_number = _int64()
    etag = _str()
    url = _str()


# -- experiments --------------------------------------------------------------------
class CreateExperiment(Schema):
    name = _str(required=True)
    artifact_location = _str()
    tags = _list(fields.Nested(KeyValue))


class SearchExperiments(Schema):
    max_results = _int64()
    page_token = _str()
    filter = _str()
    order_by = _list(_str())
    view_type = _str(validate=OneOf(VIEW_TYPES))


class GetExperiment(Schema):
    experiment_id = _str(required=True)


class GetExperimentByName(Schema):
    experiment_name = _str(required=True)


class ExperimentId(Schema):
    """DeleteExperiment, RestoreExperiment."""

    experiment_id = _str(required=True)


class UpdateExperiment(Schema):
    experiment_id = _str(required=True)
    new_name = _str()


class SetExperimentTag(Schema):
    experiment_id = _str(required=True)
    key = _str(required=True)
    value = _str(required=True)


class DeleteExperimentTag(Schema):
    experiment_id = _str(required=True)
    key = _str(required=True)


class ListExperiments(Schema):
    """The 1.x ``experiments/list`` (kept for old clients)."""

    view_type = _str(validate=OneOf(VIEW_TYPES))


# -- runs ------------------------------------------------------------------------------
class CreateRun(Schema):
    experiment_id = _str()
    user_id = _str()
    run_name = _str()
    start_time = _int64()
    tags = _list(fields.Nested(KeyValue))


class UpdateRun(Schema):
    run_id = _str()
    run_uuid = _str()
    status = _str(validate=OneOf(RUN_STATUSES))
    end_time = _int64()
    run_name = _str()


class RunId(Schema):
    """DeleteRun, RestoreRun."""

    run_id = _str(required=True)


class GetRun(Schema):
    run_id = _str()
    run_uuid = _str()


class LogMetric(Schema):
    run_id = _str()
    run_uuid = _str()
    key = _str(required=True)
    value = fields.Float(required=True, allow_nan=True)
    timestamp = _int64(required=True)
    step = _int64()
    model_id = _str()
    dataset_name = _str()
    dataset_digest = _str()


class LogParam(Schema):
    run_id = _str()
    run_uuid = _str()
    key = _str(required=True)
    value = _str(required=True)


class SetTag(Schema):
    run_id = _str()
    run_uuid = _str()
    key = _str(required=True)
    value = _str(required=True)


class DeleteTag(Schema):
    run_id = _str(required=True)
    key = _str(required=True)


class LogBatch(Schema):
    run_id = _str()
    metrics = _list(fields.Nested(MetricIn))
    params = _list(fields.Nested(KeyValue))
    tags = _list(fields.Nested(KeyValue))


class LogInputs(Schema):
    run_id = _str(required=True)
    datasets = _list(fields.Nested(DatasetInputIn))
    models = _list(fields.Nested(ModelInputIn))


class LogOutputs(Schema):
    run_id = _str(required=True)
    models = _list(fields.Nested(ModelOutputIn))


class LogModel(Schema):
    run_id = _str()
    model_json = _str()


class SearchRuns(Schema):
    experiment_ids = _list(_str())
    filter = _str()
    run_view_type = _str(validate=OneOf(VIEW_TYPES))
    max_results = fields.Integer(strict=False)
    order_by = _list(_str())
    page_token = _str()


# -- metrics ---------------------------------------------------------------------------
class GetMetricHistory(Schema):
    run_id = _str()
    run_uuid = _str()
    metric_key = _str(required=True)
    page_token = _str()
    max_results = fields.Integer(strict=False)


class GetMetricHistoryBulkInterval(Schema):
    run_ids = _list(_str())
    metric_key = _str(required=True)
    start_step = fields.Integer(strict=False)
    end_step = fields.Integer(strict=False)
    max_results = fields.Integer(strict=False)


# -- logged models (MLflow 3) ----------------------------------------------------------
class CreateLoggedModel(Schema):
    experiment_id = _str(required=True)
    name = _str()
    model_type = _str()
    source_run_id = _str()
    params = _list(fields.Nested(KeyValue))
    tags = _list(fields.Nested(KeyValue))


class ModelIdOnly(Schema):
    """GetLoggedModel, DeleteLoggedModel: the id is in the path."""


class FinalizeLoggedModel(Schema):
    status = _str(required=True, validate=OneOf(LOGGED_MODEL_STATUSES))


class SetLoggedModelTags(Schema):
    tags = _list(fields.Nested(KeyValue))


class LogLoggedModelParams(Schema):
    params = _list(fields.Nested(KeyValue))


class ListLoggedModelArtifacts(Schema):
    artifact_directory_path = _str()
    page_token = _str()


class SearchLoggedModels(Schema):
    experiment_ids = _list(_str())
    filter = _str()
    datasets = _list(fields.Nested(DatasetRefIn))
    max_results = fields.Integer(strict=False)
    order_by = _list(fields.Nested(LoggedModelOrderByIn))
    page_token = _str()


# -- artifacts -------------------------------------------------------------------------
class ListArtifacts(Schema):
    """``mlflow/artifacts/list`` (run-relative) and ``mlflow-artifacts/artifacts``."""

    run_id = _str()
    run_uuid = _str()
    path = _str()
    page_token = _str()


class ListProxiedArtifacts(Schema):
    path = _str()


class CreateMultipartUpload(Schema):
    path = _str()
    num_parts = _int64()


class CompleteMultipartUpload(Schema):
    path = _str()
    upload_id = _str()
    parts = _list(fields.Nested(MultipartUploadPartIn))


class AbortMultipartUpload(Schema):
    path = _str()
    upload_id = _str()


class UploadPart(Schema):
    """Our own part endpoint: the signed upload id travels in the query string."""

    upload_id = _str()


class NoParameters(Schema):
    """server-info, openapi.json, artifact downloads and deletes."""


# -- model registry --------------------------------------------------------------------
class CreateRegisteredModel(Schema):
    name = _str(required=True)
    tags = _list(fields.Nested(KeyValue))
    description = _str()
    deployment_job_id = _str()


class RenameRegisteredModel(Schema):
    name = _str(required=True)
    new_name = _str()


class UpdateRegisteredModel(Schema):
    name = _str(required=True)
    description = _str()
    deployment_job_id = _str()


class RegisteredModelName(Schema):
    """DeleteRegisteredModel, GetRegisteredModel."""

    name = _str(required=True)


class SearchRegistry(Schema):
    """SearchRegisteredModels, SearchModelVersions."""

    filter = _str()
    max_results = _int64()
    order_by = _list(_str())
    page_token = _str()


class GetLatestVersions(Schema):
    name = _str(required=True)
    stages = _list(_str())


class CreateModelVersion(Schema):
    name = _str(required=True)
    source = _str(required=True)
    run_id = _str()
    tags = _list(fields.Nested(KeyValue))
    run_link = _str()
    description = _str()
    model_id = _str()


class UpdateModelVersion(Schema):
    name = _str(required=True)
    version = _str(required=True)
    description = _str()


class TransitionModelVersionStage(Schema):
    name = _str(required=True)
    version = _str(required=True)
    stage = _str(required=True)
    archive_existing_versions = fields.Boolean(required=True)


class ModelVersionRef(Schema):
    """DeleteModelVersion, GetModelVersion, GetModelVersionDownloadUri."""

    name = _str(required=True)
    version = _str(required=True)


class SetRegisteredModelTag(Schema):
    name = _str(required=True)
    key = _str(required=True)
    value = _str(required=True)


class SetModelVersionTag(Schema):
    name = _str(required=True)
    version = _str(required=True)
    key = _str(required=True)
    value = _str(required=True)


class DeleteRegisteredModelTag(Schema):
    name = _str(required=True)
    key = _str(required=True)


class DeleteModelVersionTag(Schema):
    name = _str(required=True)
    version = _str(required=True)
    key = _str(required=True)


class SetRegisteredModelAlias(Schema):
    name = _str(required=True)
    alias = _str(required=True)
    version = _str(required=True)


class RegisteredModelAlias(Schema):
    """DeleteRegisteredModelAlias, GetModelVersionByAlias."""

    name = _str(required=True)
    alias = _str(required=True)


# Endpoint path below its API prefix -> request schema. Paths are the same for every
# HTTP method an endpoint accepts unless keyed as "METHOD path".
REQUEST_SCHEMAS: dict[str, type[Schema]] = {
    # /api/2.0/mlflow/
    "experiments/create": CreateExperiment,
    "experiments/search": SearchExperiments,
    "experiments/get": GetExperiment,
    "experiments/get-by-name": GetExperimentByName,
    "experiments/list": ListExperiments,
    "experiments/delete": ExperimentId,
    "experiments/restore": ExperimentId,
    "experiments/update": UpdateExperiment,
    "experiments/set-experiment-tag": SetExperimentTag,
    "experiments/delete-experiment-tag": DeleteExperimentTag,
    "runs/create": CreateRun,
    "runs/update": UpdateRun,
    "runs/delete": RunId,
    "runs/restore": RunId,
    "runs/get": GetRun,
    "runs/log-metric": LogMetric,
    "runs/log-parameter": LogParam,
    "runs/set-tag": SetTag,
    "runs/delete-tag": DeleteTag,
    "runs/log-batch": LogBatch,
    "runs/log-inputs": LogInputs,
    "runs/outputs": LogOutputs,
    "runs/log-model": LogModel,
    "runs/search": SearchRuns,
    "metrics/get-history": GetMetricHistory,
    "metrics/get-history-bulk-interval": GetMetricHistoryBulkInterval,
    "artifacts/list": ListArtifacts,
    "logged-models": CreateLoggedModel,
    "logged-models/search": SearchLoggedModels,
    "GET logged-models/<model_id>": ModelIdOnly,
    "DELETE logged-models/<model_id>": ModelIdOnly,
    "PATCH logged-models/<model_id>": FinalizeLoggedModel,
    "logged-models/<model_id>/tags": SetLoggedModelTags,
    "logged-models/<model_id>/tags/<path:tag_key>": ModelIdOnly,
    "logged-models/<model_id>/params": LogLoggedModelParams,
    "logged-models/<model_id>/artifacts/directories": ListLoggedModelArtifacts,
    "openapi.json": NoParameters,
    "registered-models/create": CreateRegisteredModel,
    "registered-models/rename": RenameRegisteredModel,
    "registered-models/update": UpdateRegisteredModel,
    "registered-models/delete": RegisteredModelName,
    "registered-models/get": RegisteredModelName,
    "registered-models/search": SearchRegistry,
    "registered-models/get-latest-versions": GetLatestVersions,
    "registered-models/set-tag": SetRegisteredModelTag,
    "registered-models/delete-tag": DeleteRegisteredModelTag,
    "POST registered-models/alias": SetRegisteredModelAlias,
    "DELETE registered-models/alias": RegisteredModelAlias,
    "GET registered-models/alias": RegisteredModelAlias,
    "model-versions/create": CreateModelVersion,
    "model-versions/update": UpdateModelVersion,
    "model-versions/transition-stage": TransitionModelVersionStage,
    "model-versions/delete": ModelVersionRef,
    "model-versions/get": ModelVersionRef,
    "model-versions/search": SearchRegistry,
    "model-versions/get-download-uri": ModelVersionRef,
    "model-versions/set-tag": SetModelVersionTag,
    "model-versions/delete-tag": DeleteModelVersionTag,
    # /api/2.0/mlflow-artifacts/
    "artifacts": ListProxiedArtifacts,
    "artifacts/<path:artifact_path>": NoParameters,
    "mpu/create/<path:artifact_path>": CreateMultipartUpload,
    "mpu/complete/<path:artifact_path>": CompleteMultipartUpload,
    "mpu/abort/<path:artifact_path>": AbortMultipartUpload,
    "mpu/part/<int:part_number>": UploadPart,
    # /api/3.0/mlflow/
    "server-info": NoParameters,
}

API_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/", "/api/3.0/mlflow/")


def endpoint_key(rule: str) -> str:
    """``/ajax-api/2.0/mlflow/runs/get`` -> ``runs/get``."""
    for prefix in API_PREFIXES:
        if rule.startswith(prefix):
            return rule[len(prefix):]
    return rule.lstrip("/")


def schema_for(rule: str, method: str) -> type[Schema] | None:
    """The request schema of an endpoint, or None when we publish none for it."""
    key = endpoint_key(rule)
    return REQUEST_SCHEMAS.get(f"{method.upper()} {key}") or REQUEST_SCHEMAS.get(key)
