"""Request schemas of the artifacts endpoints (run-relative listing and the ``mlflow-artifacts`` proxy)."""
from __future__ import annotations

from marshmallow import Schema, fields

from .common import MultipartUploadPartIn, int64, list_of, string


class ListArtifacts(Schema):
    """``mlflow/artifacts/list`` (run-relative) and ``mlflow-artifacts/artifacts``."""

    run_id = string()
    run_uuid = string()
    path = string()
    page_token = string()


class ListProxiedArtifacts(Schema):
    path = string()


class CreateMultipartUpload(Schema):
    path = string()
    num_parts = int64()


class CompleteMultipartUpload(Schema):
    path = string()
    upload_id = string()
    parts = list_of(fields.Nested(MultipartUploadPartIn))


class AbortMultipartUpload(Schema):
    path = string()
    upload_id = string()


class UploadPart(Schema):
    """Our own part endpoint: the signed upload id travels in the query string."""

    upload_id = string()


class GetRunArtifact(Schema):
    """``<tracking URI>/get-artifact`` (older clients, MLflow's UI)."""

    run_id = string()
    run_uuid = string()
    path = string(required=True)


class GetVersionArtifact(Schema):
    """``<tracking URI>/model-versions/get-artifact``."""

    name = string(required=True)
    version = string(required=True)
    path = string(required=True)
