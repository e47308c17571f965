"""Experiments, runs and what is logged to them."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import TABLE_PREFIX, Base, BigId

ACTIVE = "active"
DELETED = "deleted"


class IidCounter(Base):
    """Last IID handed out per (project, kind). Incremented with a single
    upsert-returning statement, so concurrent creators never get the same IID."""

    __tablename__ = TABLE_PREFIX + "iid_counters"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Experiment(Base):
    __tablename__ = TABLE_PREFIX + "experiments"
    __table_args__ = (
        UniqueConstraint("project_id", "iid", name="uq_glml_experiments_project_iid"),
        UniqueConstraint("project_id", "name", name="uq_glml_experiments_project_name"),
        Index("ix_glml_experiments_project_created", "project_id", "creation_time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    iid: Mapped[int] = mapped_column(BigInteger, nullable=False)
    name: Mapped[str] = mapped_column(String(500), nullable=False)
    artifact_location: Mapped[Optional[str]] = mapped_column(String(1000))
    lifecycle_stage: Mapped[str] = mapped_column(String(32), nullable=False, default=ACTIVE)
    user_id: Mapped[Optional[str]] = mapped_column(String(64))
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    deleted_time: Mapped[Optional[int]] = mapped_column(BigInteger)

    tags: Mapped[list["ExperimentTag"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin", order_by="ExperimentTag.key"
    )


class ExperimentTag(Base):
    __tablename__ = TABLE_PREFIX + "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(Experiment.id, ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[Optional[str]] = mapped_column(Text)


class Run(Base):
    __tablename__ = TABLE_PREFIX + "runs"
    __table_args__ = (
        UniqueConstraint("project_id", "iid", name="uq_glml_runs_project_iid"),
        Index("ix_glml_runs_parent", "parent_id"),
        Index("ix_glml_runs_ci_job", "project_id", "ci_job_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The public MLflow run_id: 32 lowercase hex characters, as MLflow's.
    run_uuid: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(Experiment.id, ondelete="CASCADE"), nullable=False
    )
    iid: Mapped[int] = mapped_column(BigInteger, nullable=False)
    name: Mapped[Optional[str]] = mapped_column(String(250))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="RUNNING")
    start_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    end_time: Mapped[Optional[int]] = mapped_column(BigInteger)
    lifecycle_stage: Mapped[str] = mapped_column(String(32), nullable=False, default=ACTIVE)
    deleted_time: Mapped[Optional[int]] = mapped_column(BigInteger)
    # MLflow's free-form user_id string (the ``mlflow.user`` tag).
    user_id: Mapped[Optional[str]] = mapped_column(String(256))
    # The host user who created the run (the token owner).
    author_id: Mapped[Optional[str]] = mapped_column(String(64))
    ci_job_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    parent_id: Mapped[Optional[int]] = mapped_column(BigId, ForeignKey("glml_runs.id", ondelete="SET NULL"))

    experiment: Mapped[Experiment] = relationship(lazy="joined", innerjoin=True)


# The default run order (start_time DESC, run_id) walks this index: the first
# page of a 100k-run experiment costs an index range scan, not a sort.
Index("ix_glml_runs_experiment_start_uuid", Run.experiment_id, Run.start_time.desc(), Run.run_uuid)


# Equality filters on params and tags (``params.lr = '0.01'``) start from the runs
# holding that key and value instead of probing every run of the experiment. Values may
# be kilobytes long, past PostgreSQL's ~2.7 kB btree entry limit, so PostgreSQL indexes
# the first VALUE_PREFIX_CHARS characters (and searches compare that prefix too);
# SQLite has no such limit, and does not match a substr() expression index to a bound
# parameter, so it indexes the whole value.
VALUE_PREFIX_CHARS = 200


def _value_indexes(table: str) -> tuple[Index, Index]:
    return (
        Index(f"ix_{table}_key_value_run", "key", "value", "run_id").ddl_if(dialect="sqlite"),
        Index(f"ix_{table}_key_value_prefix_run", "key", text(f"left(value, {VALUE_PREFIX_CHARS})"), "run_id")
        .ddl_if(dialect="postgresql"),
    )


class Param(Base):
    __tablename__ = TABLE_PREFIX + "params"
    __table_args__ = (Index("ix_glml_params_key_run", "key", "run_id"), *_value_indexes(TABLE_PREFIX + "params"))

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey(Run.id, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class RunTag(Base):
    __tablename__ = TABLE_PREFIX + "run_tags"
    __table_args__ = (Index("ix_glml_run_tags_key_value", "key", "run_id"), *_value_indexes(TABLE_PREFIX + "run_tags"))

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey(Run.id, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[Optional[str]] = mapped_column(Text)


class Metric(Base):
    """One row per logged point. ``value`` is NULL when ``is_nan`` (SQLite
    cannot store NaN); infinities are stored as such. An identical point (run, key,
    timestamp, step, value, NaN equal to NaN) is stored once, as in MLflow, where it
    is the primary key: ``ux_glml_metrics_point``."""

    __tablename__ = TABLE_PREFIX + "metrics"
    # The history's order (run, key, step, timestamp, id), read by pages, streams and the
    # charts' sampling seeks. On PostgreSQL its own index also carries value and is_nan, so
    # the sampling seeks (10,000 per curves answer) read no table page (migration 0008). On
    # SQLite the unique point index below, which starts with the same four columns, serves
    # that order (SQLite sorts only points tied on step and timestamp): a second index cost
    # a batch of 1,000 points 60% more time to write (migration 0010).
    __table_args__ = (
        Index("ix_glml_metrics_run_key_step_cover", "run_id", "key", "step", "timestamp", "id",
              postgresql_include=["value", "is_nan"]).ddl_if(dialect="postgresql"),
        Index("ux_glml_metrics_point", "run_id", "key", "step", "timestamp", "is_nan", text("coalesce(value, 0)"),
              unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey(Run.id, ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[Optional[float]] = mapped_column(Float(precision=53))
    is_nan: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class LatestMetric(Base):
    """The summary value per (run, key), MLflow's rule: highest step, then
    timestamp, then value. Kept up to date on every write; search and sort
    read only this table."""

    __tablename__ = TABLE_PREFIX + "latest_metrics"
    __table_args__ = (Index("ix_glml_latest_metrics_key_value", "key", "value", "run_id"),)

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey(Run.id, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[Optional[float]] = mapped_column(Float(precision=53))
    is_nan: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class Dataset(Base):
    __tablename__ = TABLE_PREFIX + "datasets"
    __table_args__ = (
        UniqueConstraint("experiment_id", "name", "digest", name="uq_glml_datasets_exp_name_digest"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(Experiment.id, ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(500), nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    source_type: Mapped[Optional[str]] = mapped_column(String(64))
    source: Mapped[Optional[str]] = mapped_column(Text)
    schema: Mapped[Optional[str]] = mapped_column(Text)
    profile: Mapped[Optional[str]] = mapped_column(Text)


class RunInput(Base):
    """A dataset used by a run, with the input's tags (e.g. ``mlflow.data.context``) as JSON."""

    __tablename__ = TABLE_PREFIX + "run_inputs"

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey(Run.id, ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(Dataset.id, ondelete="CASCADE"), primary_key=True
    )
    tags_json: Mapped[Optional[str]] = mapped_column(Text)
