"""MLflow 3 traces: trace info, tags, metadata, spans, assessments and links to runs.

Every trace belongs to one experiment of one project (``project_id`` is repeated on the
trace for the scoping filter every query starts with); trace ids are unique per project,
so a trace id sent to another project never reaches this one's rows. Spans keep a few
index columns (name, type, status, times) and the span as MLflow's client sends it (the
OTLP span in protobuf's JSON mapping) in ``payload``, answered as is.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import TABLE_PREFIX, Base, BigId
from .tracking import VALUE_PREFIX_CHARS, Experiment, Run

SOURCE_RUN_KEY = "mlflow.sourceRun"  # the metadata naming the run a trace was made in


class Trace(Base):
    __tablename__ = TABLE_PREFIX + "traces"
    __table_args__ = (
        UniqueConstraint("project_id", "trace_id", name="uq_glml_traces_project_trace"),
        Index("ix_glml_traces_experiment_time", "experiment_id", "request_time", "trace_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    trace_id: Mapped[str] = mapped_column(String(64), nullable=False)
    experiment_id: Mapped[int] = mapped_column(BigId, ForeignKey(Experiment.id, ondelete="CASCADE"), nullable=False)
    client_request_id: Mapped[Optional[str]] = mapped_column(String(250))
    name: Mapped[Optional[str]] = mapped_column(String(250))
    state: Mapped[str] = mapped_column(String(32), nullable=False, default="IN_PROGRESS")
    request_time: Mapped[int] = mapped_column(BigInteger, nullable=False)  # ms since the epoch
    execution_duration: Mapped[Optional[int]] = mapped_column(BigInteger)  # ms
    request_preview: Mapped[Optional[str]] = mapped_column(Text)
    response_preview: Mapped[Optional[str]] = mapped_column(Text)
    # True once the client's start-trace call (the trace's final info) arrived.
    finalized: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class _TraceKeyValue:
    """A key and value of a trace (its tags, its metadata)."""

    trace_pk: Mapped[int] = mapped_column(BigId, ForeignKey(Trace.id, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[Optional[str]] = mapped_column(Text)


class TraceTag(_TraceKeyValue, Base):
    __tablename__ = TABLE_PREFIX + "trace_tags"
    __table_args__ = (Index("ix_glml_trace_tags_key_trace", "key", "trace_pk"),)


class TraceMetadata(_TraceKeyValue, Base):
    __tablename__ = TABLE_PREFIX + "trace_metadata"
    __table_args__ = (
        Index("ix_glml_trace_metadata_key_trace", "key", "trace_pk"),
        # A run's traces (``metadata.mlflow.sourceRun = '<run>'``, ``run_id = '<run>'``):
        # PostgreSQL would otherwise read every trace's source-run row and keep the run's
        # (100k traces: ~100 ms); SQLite walks the traces newest first and probes the
        # primary key instead. Values may pass PostgreSQL's btree entry limit, so the
        # index holds a prefix, as the run value indexes (searches compare it too).
        Index("ix_glml_trace_metadata_source_run", text(f"left(value, {VALUE_PREFIX_CHARS})"), "trace_pk",
              postgresql_where=text(f"key = '{SOURCE_RUN_KEY}'")).ddl_if(dialect="postgresql"),
    )


class Span(Base):
    __tablename__ = TABLE_PREFIX + "trace_spans"
    __table_args__ = (
        # Only stored payloads have a key: garbage collection looks keys up.
        Index("ix_glml_trace_spans_payload_key", "payload_key", unique=False,
              sqlite_where=text("payload_key IS NOT NULL"), postgresql_where=text("payload_key IS NOT NULL")),
    )

    trace_pk: Mapped[int] = mapped_column(BigId, ForeignKey(Trace.id, ondelete="CASCADE"), primary_key=True)
    span_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # hex
    parent_span_id: Mapped[Optional[str]] = mapped_column(String(32))
    name: Mapped[Optional[str]] = mapped_column(String(500))
    span_type: Mapped[Optional[str]] = mapped_column(String(64))
    status: Mapped[Optional[str]] = mapped_column(String(32))
    start_ns: Mapped[int] = mapped_column(BigInteger, nullable=False)
    end_ns: Mapped[Optional[int]] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # the OTLP span, protobuf JSON
    # Set when the payload is in the file storage (a big span): ``payload`` is then its
    # skeleton (services/span_payloads.py).
    payload_key: Mapped[Optional[str]] = mapped_column(String(300))


class Assessment(Base):
    """Feedback or an expectation on a trace (``kind``); ``value`` is JSON."""

    __tablename__ = TABLE_PREFIX + "trace_assessments"
    __table_args__ = (
        UniqueConstraint("project_id", "assessment_id", name="uq_glml_trace_assessments_project_id"),
        Index("ix_glml_trace_assessments_trace", "trace_pk", "name"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    assessment_id: Mapped[str] = mapped_column(String(64), nullable=False)
    trace_pk: Mapped[int] = mapped_column(BigId, ForeignKey(Trace.id, ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(250), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # feedback | expectation
    value: Mapped[Optional[str]] = mapped_column(Text)  # JSON
    error: Mapped[Optional[str]] = mapped_column(Text)  # JSON of AssessmentError
    rationale: Mapped[Optional[str]] = mapped_column(Text)
    source_type: Mapped[Optional[str]] = mapped_column(String(32))
    source_id: Mapped[Optional[str]] = mapped_column(String(250))
    span_id: Mapped[Optional[str]] = mapped_column(String(32))
    metadata_json: Mapped[Optional[str]] = mapped_column(Text)
    overrides: Mapped[Optional[str]] = mapped_column(String(64))
    valid: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    create_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class TraceRunLink(Base):
    """A trace linked to a run (``link_traces_to_run``)."""

    __tablename__ = TABLE_PREFIX + "trace_run_links"
    __table_args__ = (Index("ix_glml_trace_run_links_run", "run_id", "trace_pk"),)

    trace_pk: Mapped[int] = mapped_column(BigId, ForeignKey(Trace.id, ondelete="CASCADE"), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey(Run.id, ondelete="CASCADE"), primary_key=True)


class PendingTraceLink(Base):
    """A run link to a trace this project has not received yet: the client may link a
    trace right after its spans end, before its asynchronous export arrives (MLflow keeps
    links by trace id). Becomes a ``TraceRunLink`` when the trace is first stored here."""

    __tablename__ = TABLE_PREFIX + "pending_trace_links"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey(Run.id, ondelete="CASCADE"), primary_key=True)


class TraceIssue(Base):
    """An issue found in an experiment's traces (MLflow 3's issues API)."""

    __tablename__ = TABLE_PREFIX + "trace_issues"
    __table_args__ = (
        UniqueConstraint("project_id", "issue_id", name="uq_glml_trace_issues_project_id"),
        Index("ix_glml_trace_issues_experiment", "experiment_id", "created_time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    issue_id: Mapped[str] = mapped_column(String(64), nullable=False)
    experiment_id: Mapped[int] = mapped_column(BigId, ForeignKey(Experiment.id, ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(250), nullable=False)
    description: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    severity: Mapped[Optional[str]] = mapped_column(String(32))
    root_causes: Mapped[Optional[str]] = mapped_column(Text)  # JSON list
    categories: Mapped[Optional[str]] = mapped_column(Text)  # JSON list
    source_run_id: Mapped[Optional[str]] = mapped_column(String(32))
    created_by: Mapped[Optional[str]] = mapped_column(String(250))
    created_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
