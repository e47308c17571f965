"""Request schemas of MLflow 3's GenAI evaluation datasets (``datasets.proto``) and
registered scorers (``service.proto``), plus the online-scoring configuration calls
(plain JSON in MLflow's server, no proto)."""
from __future__ import annotations

from marshmallow import Schema, fields

from .common import enum, int64, list_of, string, text

DATASET_SOURCE_TYPES = ("SOURCE_TYPE_UNSPECIFIED", "TRACE", "HUMAN", "DOCUMENT", "CODE")


# -- evaluation datasets -------------------------------------------------------------
class CreateDataset(Schema):
    name = string(required=True)
    experiment_ids = list_of(text())
    source_type = enum(DATASET_SOURCE_TYPES)
    source = string()
    schema = string()
    profile = string()
    created_by = string()
    tags = string()  # a JSON object, as text


class GetDataset(Schema):
    """The id is in the path."""

    page_token = string()


class DatasetInPath(Schema):
    """DeleteDataset, DeleteDatasetTag, GetDatasetExperimentIds: all in the path."""


class SearchDatasets(Schema):
    experiment_ids = list_of(text())
    filter_string = string()
    max_results = int64()
    order_by = list_of(string())
    page_token = string()


class SetDatasetTags(Schema):
    tags = string(required=True)  # a JSON object, as text


class UpsertDatasetRecords(Schema):
    records = string(required=True)  # a JSON list of records, as text
    updated_by = string()


class GetDatasetRecords(Schema):
    max_results = int64()
    page_token = string()


class DeleteDatasetRecords(Schema):
    dataset_record_ids = list_of(string())


class DatasetExperiments(Schema):
    """AddDatasetToExperiments, RemoveDatasetFromExperiments."""

    experiment_ids = list_of(text())


# -- scorers -----------------------------------------------------------------------
class RegisterScorer(Schema):
    experiment_id = text()
    name = string()
    serialized_scorer = string()


class ListScorers(Schema):
    experiment_id = text()
    experiment_ids = list_of(text())


class ListScorerVersions(Schema):
    experiment_id = text()
    name = string()


class ScorerVersionRef(Schema):
    """GetScorer, DeleteScorer: no version means the latest (get) or all (delete)."""

    experiment_id = text()
    name = string()
    version = int64()


class OnlineScoringConfigs(Schema):
    scorer_ids = list_of(string())


class UpsertOnlineScoringConfig(Schema):
    experiment_id = text()
    name = string()
    sample_rate = fields.Float()
    filter_string = string()
