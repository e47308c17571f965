"""Request schemas of MLflow 3's logged models, ``runs/outputs`` and the 2.x ``runs/log-model``."""
from __future__ import annotations

from marshmallow import Schema, fields

from .common import LOGGED_MODEL_STATUSES, DatasetRefIn, KeyValue, LoggedModelOrderByIn, ModelOutputIn, enum, int64, list_of, string, text


# -- runs and models ---------------------------------------------------------------
class LogOutputs(Schema):
    run_id = string(required=True)
    models = list_of(fields.Nested(ModelOutputIn))


class LogModel(Schema):
    run_id = string()
    model_json = string()


# -- logged models -----------------------------------------------------------------
class CreateLoggedModel(Schema):
    experiment_id = text(required=True)
    name = string()
    model_type = string()
    source_run_id = string()
    params = list_of(fields.Nested(KeyValue))
    tags = list_of(fields.Nested(KeyValue))


class ModelIdOnly(Schema):
    """GetLoggedModel, DeleteLoggedModel: the id is in the path."""


class FinalizeLoggedModel(Schema):
    status = enum(LOGGED_MODEL_STATUSES, required=True)


class SetLoggedModelTags(Schema):
    tags = list_of(fields.Nested(KeyValue))


class LogLoggedModelParams(Schema):
    params = list_of(fields.Nested(KeyValue))


class ListLoggedModelArtifacts(Schema):
    artifact_directory_path = string()
    page_token = string()


class SearchLoggedModels(Schema):
    experiment_ids = list_of(text())
    filter = string()
    datasets = list_of(fields.Nested(DatasetRefIn))
    max_results = int64()
    order_by = list_of(fields.Nested(LoggedModelOrderByIn))
    page_token = string()
