"""MLflow 3's GenAI evaluation datasets (with their records) and registered scorers.

Every row belongs to one project: a dataset carries its ``project_id``, its tags,
records and experiment links hang off it; a scorer hangs off one experiment of the
project. JSON documents (a record's inputs, expectations, tags, source) are stored as
text, exactly as they are sent back.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import TABLE_PREFIX, Base, BigId
from .tracking import Experiment


class EvalDataset(Base):
    __tablename__ = TABLE_PREFIX + "eval_datasets"
    __table_args__ = (Index("ix_glml_eval_datasets_project_created", "project_id", "creation_time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Public id, ``d-<32 hex>`` as MLflow's.
    dataset_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(500), nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    schema: Mapped[Optional[str]] = mapped_column(Text)
    profile: Mapped[Optional[str]] = mapped_column(Text)
    created_by: Mapped[Optional[str]] = mapped_column(String(255))
    last_updated_by: Mapped[Optional[str]] = mapped_column(String(255))
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class EvalDatasetTag(Base):
    __tablename__ = TABLE_PREFIX + "eval_dataset_tags"

    dataset_pk: Mapped[int] = mapped_column(BigId, ForeignKey(EvalDataset.id, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[Optional[str]] = mapped_column(Text)


class EvalDatasetExperiment(Base):
    """A dataset is linked to experiments of its project (MLflow's entity associations)."""

    __tablename__ = TABLE_PREFIX + "eval_dataset_experiments"

    dataset_pk: Mapped[int] = mapped_column(BigId, ForeignKey(EvalDataset.id, ondelete="CASCADE"), primary_key=True)
    experiment_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey(Experiment.id, ondelete="CASCADE"), primary_key=True, index=True
    )
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class EvalDatasetRecord(Base):
    __tablename__ = TABLE_PREFIX + "eval_dataset_records"
    __table_args__ = (
        # One record per inputs (their hash) in a dataset: upserts merge into it.
        UniqueConstraint("dataset_pk", "input_hash", name="uq_glml_eval_dataset_records_inputs"),
        # The records' order when read: (created time, record id), as MLflow's.
        Index("ix_glml_eval_dataset_records_order", "dataset_pk", "creation_time", "record_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Public id, ``dr-<32 hex>`` as MLflow's.
    record_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    dataset_pk: Mapped[int] = mapped_column(BigId, ForeignKey(EvalDataset.id, ondelete="CASCADE"), nullable=False)
    input_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    inputs: Mapped[str] = mapped_column(Text, nullable=False)
    outputs: Mapped[Optional[str]] = mapped_column(Text)
    expectations: Mapped[Optional[str]] = mapped_column(Text)
    tags: Mapped[Optional[str]] = mapped_column(Text)
    source: Mapped[Optional[str]] = mapped_column(Text)
    source_id: Mapped[Optional[str]] = mapped_column(String(255))
    source_type: Mapped[Optional[str]] = mapped_column(String(32))
    created_by: Mapped[Optional[str]] = mapped_column(String(255))
    last_updated_by: Mapped[Optional[str]] = mapped_column(String(255))
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Scorer(Base):
    """A registered scorer: a name in one experiment, with numbered versions."""

    __tablename__ = TABLE_PREFIX + "scorers"
    __table_args__ = (UniqueConstraint("experiment_pk", "name", name="uq_glml_scorers_experiment_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Public id, a UUID as MLflow's.
    scorer_id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    experiment_pk: Mapped[int] = mapped_column(BigId, ForeignKey(Experiment.id, ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(256), nullable=False)


class ScorerVersion(Base):
    __tablename__ = TABLE_PREFIX + "scorer_versions"

    scorer_pk: Mapped[int] = mapped_column(BigId, ForeignKey(Scorer.id, ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    serialized_scorer: Mapped[str] = mapped_column(Text, nullable=False)
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
