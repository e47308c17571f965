"""MLflow 3 logged models and the model registry."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import TABLE_PREFIX, Base, BigId
from .tracking import ACTIVE, Experiment


class LoggedModel(Base):
    __tablename__ = TABLE_PREFIX + "logged_models"
    __table_args__ = (Index("ix_glml_logged_models_experiment", "experiment_id", "creation_time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Public id, ``m-<32 hex>`` as MLflow's.
    model_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(Experiment.id, ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(500), nullable=False)
    source_run_uuid: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    model_type: Mapped[Optional[str]] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="PENDING")
    status_message: Mapped[Optional[str]] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(32), nullable=False, default=ACTIVE)
    user_id: Mapped[Optional[str]] = mapped_column(String(64))
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)

    experiment: Mapped[Experiment] = relationship(lazy="joined", innerjoin=True)


class LoggedModelParam(Base):
    __tablename__ = TABLE_PREFIX + "logged_model_params"

    model_pk: Mapped[int] = mapped_column(BigId, ForeignKey(LoggedModel.id, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class LoggedModelTag(Base):
    __tablename__ = TABLE_PREFIX + "logged_model_tags"

    model_pk: Mapped[int] = mapped_column(BigId, ForeignKey(LoggedModel.id, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[Optional[str]] = mapped_column(Text)


class LoggedModelMetric(Base):
    __tablename__ = TABLE_PREFIX + "logged_model_metrics"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_pk: Mapped[int] = mapped_column(BigId, ForeignKey(LoggedModel.id, ondelete="CASCADE"), nullable=False, index=True)
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[Optional[float]] = mapped_column(Float(precision=53))
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    run_uuid: Mapped[Optional[str]] = mapped_column(String(32))
    dataset_name: Mapped[Optional[str]] = mapped_column(String(500))
    dataset_digest: Mapped[Optional[str]] = mapped_column(String(64))


class RunOutput(Base):
    """A logged model produced by a run (``runs/outputs``)."""

    __tablename__ = TABLE_PREFIX + "run_outputs"

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("glml_runs.id", ondelete="CASCADE"), primary_key=True)
    model_pk: Mapped[int] = mapped_column(BigId, ForeignKey(LoggedModel.id, ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class RegisteredModel(Base):
    __tablename__ = TABLE_PREFIX + "registered_models"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_glml_registered_models_project_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    description: Mapped[Optional[str]] = mapped_column(Text)
    user_id: Mapped[Optional[str]] = mapped_column(String(64))
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class RegisteredModelTag(Base):
    __tablename__ = TABLE_PREFIX + "registered_model_tags"

    registered_model_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(RegisteredModel.id, ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[Optional[str]] = mapped_column(Text)


class ModelVersion(Base):
    __tablename__ = TABLE_PREFIX + "model_versions"
    __table_args__ = (
        UniqueConstraint("registered_model_id", "version", name="uq_glml_model_versions_model_version"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    registered_model_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(RegisteredModel.id, ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[Optional[str]] = mapped_column(Text)
    user_id: Mapped[Optional[str]] = mapped_column(String(64))
    source: Mapped[Optional[str]] = mapped_column(Text)
    storage_location: Mapped[Optional[str]] = mapped_column(Text)
    run_uuid: Mapped[Optional[str]] = mapped_column(String(32))
    run_link: Mapped[Optional[str]] = mapped_column(Text)
    model_id: Mapped[Optional[str]] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="READY")
    status_message: Mapped[Optional[str]] = mapped_column(Text)
    current_stage: Mapped[str] = mapped_column(String(32), nullable=False, default="None")
    deleted: Mapped[bool] = mapped_column(default=False, nullable=False)
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)

    registered_model: Mapped[RegisteredModel] = relationship(lazy="joined", innerjoin=True)


class ModelVersionTag(Base):
    __tablename__ = TABLE_PREFIX + "model_version_tags"

    model_version_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(ModelVersion.id, ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[Optional[str]] = mapped_column(Text)


class RegisteredModelAlias(Base):
    __tablename__ = TABLE_PREFIX + "registered_model_aliases"

    registered_model_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(RegisteredModel.id, ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(256), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
