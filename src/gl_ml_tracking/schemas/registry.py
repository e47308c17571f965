"""Request schemas of the model registry: ``registered-models/*`` and ``model-versions/*``."""
from __future__ import annotations

from marshmallow import Schema, fields

from .common import KeyValue, int64, list_of, string, text


# -- registered models -------------------------------------------------------------
class CreateRegisteredModel(Schema):
    name = string(required=True)
    tags = list_of(fields.Nested(KeyValue))
    description = string()
    deployment_job_id = string()


class RenameRegisteredModel(Schema):
    name = string(required=True)
    new_name = string()


class UpdateRegisteredModel(Schema):
    name = string(required=True)
    description = string()
    deployment_job_id = string()


class RegisteredModelName(Schema):
    """DeleteRegisteredModel, GetRegisteredModel."""

    name = string(required=True)


class SearchRegistry(Schema):
    """SearchRegisteredModels, SearchModelVersions."""

    filter = string()
    max_results = int64()
    order_by = list_of(string())
    page_token = string()


class GetLatestVersions(Schema):
    name = string(required=True)
    stages = list_of(string())


# -- model versions ----------------------------------------------------------------
class CreateModelVersion(Schema):
    name = string(required=True)
    source = string(required=True)
    run_id = string()
    tags = list_of(fields.Nested(KeyValue))
    run_link = string()
    description = string()
    model_id = string()


class UpdateModelVersion(Schema):
    name = string(required=True)
    version = text(required=True)
    description = string()


class TransitionModelVersionStage(Schema):
    name = string(required=True)
    version = text(required=True)
    stage = string(required=True)
    archive_existing_versions = fields.Boolean(required=True)


class ModelVersionRef(Schema):
    """DeleteModelVersion, GetModelVersion, GetModelVersionDownloadUri."""

    name = string(required=True)
    version = text(required=True)


class SetRegisteredModelTag(Schema):
    name = string(required=True)
    key = string(required=True)
    value = text(required=True)


class SetModelVersionTag(Schema):
    name = string(required=True)
    version = text(required=True)
    key = string(required=True)
    value = text(required=True)


class DeleteRegisteredModelTag(Schema):
    name = string(required=True)
    key = string(required=True)


class DeleteModelVersionTag(Schema):
    name = string(required=True)
    version = text(required=True)
    key = string(required=True)


class SetRegisteredModelAlias(Schema):
    name = string(required=True)
    alias = string(required=True)
    version = text(required=True)


class RegisteredModelAlias(Schema):
    """DeleteRegisteredModelAlias, GetModelVersionByAlias."""

    name = string(required=True)
    alias = string(required=True)
