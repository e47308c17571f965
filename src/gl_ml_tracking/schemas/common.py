"""Marshmallow schemas of the MLflow API requests: the nested messages and the
field helpers every request module uses.

Field names, types and required flags follow MLflow's protobuf messages
(``service.proto``, ``model_registry.proto``, ``mlflow_artifacts.proto``);
``tests/test_fuzz_api.py`` checks them against the protos of the pinned client.
Each route declares its request schema (``@routes.route(..., schema=...)``):
:mod:`gl_ml_tracking.openapi` publishes it and :mod:`.loading` validates and
converts what a request sends with it, so these are the one statement of the
wire format.
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


def int64(**kwargs) -> fields.Integer:
    # protobuf's JSON mapping allows int64 as a number or a decimal string; MLflow's
    # client sends numbers, so the schema says integer.
    return fields.Integer(strict=False, **kwargs)


def string(**kwargs) -> fields.String:
    return fields.String(**kwargs)


def text(**kwargs) -> fields.String:
    """A string field that also takes a number as its text: the services always
    did for tag and param values, experiment ids and version numbers."""
    return fields.String(metadata={"numbers_as_text": True}, **kwargs)


def list_of(inner: fields.Field, **kwargs) -> fields.List:
    return fields.List(inner, **kwargs)


def enum(choices: tuple, **kwargs) -> fields.String:
    """An enum of the protos, by name (the services also take its numbers and other
    spellings: see ``loading``)."""
    return fields.String(validate=OneOf(choices), **kwargs)


# -- nested messages ---------------------------------------------------------------
class KeyValue(Schema):
    """ExperimentTag, RunTag, Param, InputTag, LoggedModelTag/Parameter,
    RegisteredModelTag, ModelVersionTag: all ``{key, value}``."""

    key = string()
    value = text()


class MetricIn(Schema):
    key = string()
    value = fields.Float(allow_nan=True)
    timestamp = int64()
    step = int64()
    dataset_name = string()
    dataset_digest = string()
    model_id = string()
    run_id = string()


class DatasetIn(Schema):
    name = string()
    digest = string()
    source_type = string()
    source = string()
    schema = string()
    profile = string()


class DatasetInputIn(Schema):
    tags = list_of(fields.Nested(KeyValue))
    dataset = fields.Nested(DatasetIn)


class ModelInputIn(Schema):
    model_id = string()


class ModelOutputIn(Schema):
    model_id = string()
    step = int64()


class DatasetRefIn(Schema):
    """SearchLoggedModels.Dataset."""

    dataset_name = string()
    dataset_digest = string()


class LoggedModelOrderByIn(Schema):
    field_name = string()
    ascending = fields.Boolean()
    dataset_name = string()
    dataset_digest = string()


class MultipartUploadPartIn(Schema):
    part_number = int64()
    etag = string()
    url = string()


class NoParameters(Schema):
    """server-info, openapi.json, artifact downloads and deletes."""
