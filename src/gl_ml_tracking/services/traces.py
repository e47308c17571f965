"""Traces of a project: get one or many (info, spans), tags, delete, link to runs.

Every lookup starts from the project: a trace id of another project is "not found",
exactly like one that does not exist. Traces of deleted experiments are hidden. Deleting
a trace deletes its files too (``traces.json``, attachments: ``services/trace_files.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from sqlalchemy import BigInteger, String, any_, bindparam, delete, exists, literal, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import (ACTIVE, Assessment, Experiment, PendingTraceLink, Run, Span, Trace, TraceIssue, TraceMetadata,
                      TraceRunLink, TraceTag)
from . import lookups, span_payloads, trace_files
from . import trace_values as tv
from .common import dialect_insert
from .trace_ingest import upsert_pairs

MAX_BATCH_GET = 100
MAX_LINK = 100
MAX_DELETE = 10000


@dataclass
class TraceData:
    """What a trace's info shows besides its row: the experiment's IID, tags, metadata,
    assessments, and whether any of its spans reached the database (over OTLP)."""

    trace: Trace
    experiment_iid: int
    tags: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    assessments: list = field(default_factory=list)
    spans_stored: bool = False


def _scoped(project_id: str):
    return (
        select(Trace, Experiment.iid)
        .join(Experiment, Experiment.id == Trace.experiment_id)
        .where(Trace.project_id == project_id, Experiment.lifecycle_stage == ACTIVE)
    )


def get_trace_row(session: Session, project_id: str, trace_id: Any) -> tuple[Trace, int]:
    trace_id = tv.validate_trace_id(trace_id)
    row = session.execute(_scoped(project_id).where(Trace.trace_id == trace_id)).one_or_none()
    if row is None:
        raise ResourceDoesNotExist(f"Trace with ID {trace_id} is not found.")
    return row[0], row[1]


def _among(session: Session, column, pks: list[int]):
    """``column IN pks``; on PostgreSQL ``= ANY(<one array>)``: a page of 100 keys as 100
    parameters is a statement rendered again and not cached by the driver on every read."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, pks, type_=ARRAY(BigInteger)))
    return column.in_(pks)


def load_data(session: Session, rows: Sequence[tuple[Trace, int]]) -> list[TraceData]:
    """The rows' tags, metadata, assessments and whether they have spans in the database
    (every trace read and the start-trace answer go through here). One trace: one
    statement (and one more if it has assessments): the start-trace answer is on every
    trace's ingest path, where a round trip costs more than the work. A page of traces:
    four small statements, not the UNION - on PostgreSQL its cost estimate for a page of
    100 traces calls for parallel workers, whose start-up (~10 ms) outweighs three round
    trips."""
    datas = [TraceData(trace, iid) for trace, iid in rows]
    by_pk = {d.trace.id: d for d in datas}
    if len(by_pk) == 1:
        _load_one(session, next(iter(by_pk.values())))
    elif by_pk:
        _load_page(session, by_pk)
    return datas


def _load_one(session: Session, data: TraceData) -> None:
    pk, none = data.trace.id, literal(None, type_=String)
    facts = union_all(
        select(literal(0).label("kind"), TraceTag.key, TraceTag.value).where(TraceTag.trace_pk == pk),
        select(literal(1), TraceMetadata.key, TraceMetadata.value).where(TraceMetadata.trace_pk == pk),
        select(literal(2), none, none).where(exists().where(Span.trace_pk == pk)),
        select(literal(3), none, none).where(exists().where(Assessment.trace_pk == pk)),
    )
    assessed = False
    for kind, key, value in session.execute(facts).all():
        if kind == 2:
            data.spans_stored = True
        elif kind == 3:
            assessed = True
        else:
            (data.metadata if kind else data.tags)[key] = value
    if assessed:
        data.assessments.extend(session.scalars(select(Assessment).where(Assessment.trace_pk == pk)
                                                .order_by(Assessment.create_time, Assessment.id)).all())


def _load_page(session: Session, by_pk: dict[int, TraceData]) -> None:
    pks = list(by_pk)
    for model, slot in ((TraceTag, "tags"), (TraceMetadata, "metadata")):
        found = session.execute(select(model.trace_pk, model.key, model.value).where(_among(session, model.trace_pk, pks)))
        for pk, key, value in found.all():  # one fetch, not one per row
            getattr(by_pk[pk], slot)[key] = value
    for a in session.scalars(select(Assessment).where(_among(session, Assessment.trace_pk, pks))
                             .order_by(Assessment.create_time, Assessment.id)).all():
        by_pk[a.trace_pk].assessments.append(a)
    # A semi-join: stops at each trace's first span (the primary key's index).
    has_spans = select(Trace.id).where(_among(session, Trace.id, pks), exists().where(Span.trace_pk == Trace.id))
    for pk in session.scalars(has_spans).all():
        by_pk[pk].spans_stored = True


def get_trace_data(session: Session, project_id: str, trace_id: Any) -> TraceData:
    return load_data(session, [get_trace_row(session, project_id, trace_id)])[0]


def span_index(session: Session, trace_pk: int) -> list:
    """The trace's spans without their payloads (id, parent, name, type, status, times)."""
    return session.execute(
        select(Span.span_id, Span.parent_span_id, Span.name, Span.span_type, Span.status, Span.start_ns, Span.end_ns)
        .where(Span.trace_pk == trace_pk)
    ).all()


def get_span(session: Session, trace_pk: int, span_id: str) -> Span:
    span = session.get(Span, (trace_pk, span_id))
    if span is None:
        raise ResourceDoesNotExist(f"Span {span_id} is not found.")
    return span


def batch_get(session: Session, project_id: str, trace_ids: Any) -> list[TraceData]:
    ids = [tv.validate_trace_id(t) for t in (trace_ids or [])]
    if len(ids) > MAX_BATCH_GET:
        raise InvalidParameter(f"At most {MAX_BATCH_GET} trace ids can be fetched at once, got {len(ids)}.")
    if not ids:
        return []
    rows = session.execute(_scoped(project_id).where(Trace.trace_id.in_(ids))).all()
    order = {t: i for i, t in enumerate(ids)}
    rows.sort(key=lambda r: order.get(r[0].trace_id, 0))
    return load_data(session, [(r[0], r[1]) for r in rows])


# -- tags -------------------------------------------------------------------------
def set_tag(session: Session, project_id: str, trace_id: Any, key: Any, value: Any) -> None:
    trace, _ = get_trace_row(session, project_id, trace_id)
    if not isinstance(key, str) or not key.strip() or len(key) > tv.MAX_TAG_KEY:
        raise InvalidParameter(f"Invalid tag key {key!r}: a non-empty string of at most {tv.MAX_TAG_KEY} characters.")
    if value is not None and not isinstance(value, str):
        raise InvalidParameter(f"Invalid tag value {value!r}: expected a string.")
    if value is not None and len(value) > tv.MAX_TAG_VALUE:
        raise InvalidParameter(f"Tag value of '{key}' exceeds {tv.MAX_TAG_VALUE} characters.")
    if key == tv.TRACE_NAME_TAG:
        trace.name = (value or "")[:250] or None
        return
    upsert_pairs(session, TraceTag, trace.id, {key: value})


def delete_tag(session: Session, project_id: str, trace_id: Any, key: Any) -> None:
    trace, _ = get_trace_row(session, project_id, trace_id)
    if not isinstance(key, str) or not key:
        raise InvalidParameter("Missing value for required parameter 'key'.")
    if key == tv.TRACE_NAME_TAG and trace.name is not None:
        trace.name = None
        return
    result = session.execute(delete(TraceTag).where(TraceTag.trace_pk == trace.id, TraceTag.key == key))
    if result.rowcount == 0:
        raise ResourceDoesNotExist(f"No trace tag with key '{key}' for trace with ID '{trace.trace_id}'")


def link_prompts(session: Session, project_id: str, trace_id: Any, prompt_versions: Any) -> None:
    """``traces/link-prompts``: record prompt versions used by a trace in its
    ``mlflow.linkedPrompts`` tag (a JSON list of {"name", "version"}), as the client does,
    so ``prompt = 'name/version'`` finds it."""
    trace, _ = get_trace_row(session, project_id, trace_id)
    entries = []
    for ref in prompt_versions or []:
        name, version = (ref or {}).get("name"), (ref or {}).get("version")
        if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
            raise InvalidParameter("Each prompt version needs a non-empty 'name' and 'version'.")
        entries.append({"name": name, "version": version})
    current = session.execute(select(TraceTag.value).where(
        TraceTag.trace_pk == trace.id, TraceTag.key == tv.LINKED_PROMPTS_TAG)).scalar_one_or_none()
    try:
        linked = json.loads(current) if current else []
    except ValueError:
        linked = []
    linked = linked if isinstance(linked, list) else []
    added = [e for e in entries if e not in linked]
    if added:
        upsert_pairs(session, TraceTag, trace.id, {tv.LINKED_PROMPTS_TAG: json.dumps(linked + added)})


# -- delete -------------------------------------------------------------------------
def delete_traces(session: Session, project_id: str, experiment_id: Any, *, max_timestamp_millis: Any = None,
                  max_traces: Any = None, trace_ids: Any = None) -> int:
    """Delete traces of an experiment by ids, or those older than a time (at most
    ``max_traces``, oldest first). Returns how many were deleted."""
    experiment = lookups.get_experiment(session, project_id, experiment_id, with_tags=False)
    ids = [tv.validate_trace_id(t) for t in (trace_ids or [])]
    if ids and max_timestamp_millis is not None:
        raise InvalidParameter("Only one of `max_timestamp_millis` and `request_ids` can be specified.")
    if not ids and max_timestamp_millis is None:
        raise InvalidParameter("Either `max_timestamp_millis` or `request_ids` must be specified.")
    stmt = select(Trace.id, Trace.trace_id).where(Trace.project_id == project_id, Trace.experiment_id == experiment.id)
    if ids:
        stmt = stmt.where(Trace.trace_id.in_(ids))
    else:
        stmt = stmt.where(Trace.request_time <= int(max_timestamp_millis)).order_by(Trace.request_time, Trace.id)
        if max_traces is not None:
            if int(max_traces) <= 0:
                raise InvalidParameter("`max_traces` must be a positive integer.")
            stmt = stmt.limit(int(max_traces))
    found = session.execute(stmt).all()
    _delete_pks(session, [pk for pk, _ in found])
    trace_files.delete_files(session, project_id, experiment.iid, [trace_id for _, trace_id in found])
    return len(found)


def _delete_pks(session: Session, pks: list[int]) -> None:
    for start in range(0, len(pks), 1000):
        chunk = pks[start:start + 1000]
        span_payloads.delete_stored(session, chunk)
        for model in (Span, TraceTag, TraceMetadata, Assessment, TraceRunLink):
            session.execute(delete(model).where(model.trace_pk.in_(chunk)))
        session.execute(delete(Trace).where(Trace.id.in_(chunk)))


def purge_experiment_traces(session: Session, project_id: str, experiment_pk: int) -> None:
    """Every trace of an experiment being deleted for good, with its stored span payloads
    (their files go with the experiment's package: ``trash.purge_experiment``)."""
    _delete_pks(session, list(session.scalars(
        select(Trace.id).where(Trace.project_id == project_id, Trace.experiment_id == experiment_pk))))
    session.execute(delete(TraceIssue).where(TraceIssue.project_id == project_id, TraceIssue.experiment_id == experiment_pk))


# -- runs ---------------------------------------------------------------------------
def link_to_run(session: Session, project_id: str, trace_ids: Any, run_id: Any) -> None:
    ids = [tv.validate_trace_id(t) for t in (trace_ids or [])]
    if len(ids) > MAX_LINK:
        raise InvalidParameter(f"Cannot link more than {MAX_LINK} traces to a run in a single request. Provided {len(ids)} traces.")
    run = lookups.get_run(session, project_id, run_id, with_experiment=False)
    if not ids:
        return
    pks = dict(session.execute(select(Trace.trace_id, Trace.id).where(Trace.project_id == project_id, Trace.trace_id.in_(ids))).all())
    insert = dialect_insert(session)
    if pks:
        session.execute(
            insert(TraceRunLink).on_conflict_do_nothing(index_elements=[TraceRunLink.trace_pk, TraceRunLink.run_id]),
            [{"trace_pk": pk, "run_id": run.id} for pk in pks.values()],
        )
    # A trace not here yet (the client links right after a span ends, before its export
    # lands) is linked when it arrives, as MLflow keeps links by id (trace_ingest.ensure_trace).
    pending = [{"project_id": project_id, "trace_id": t, "run_id": run.id} for t in dict.fromkeys(ids) if t not in pks]
    if pending:
        session.execute(insert(PendingTraceLink).on_conflict_do_nothing(), pending)


def traces_of_run(session: Session, project_id: str, run: Run, limit: int = 100) -> list[tuple[Trace, int]]:
    """Traces linked to the run or recorded inside it (``mlflow.sourceRun``), newest first."""
    linked = select(TraceRunLink.trace_pk).where(TraceRunLink.run_id == run.id)
    source = select(TraceMetadata.trace_pk).where(TraceMetadata.key == tv.SOURCE_RUN_METADATA,
                                                  TraceMetadata.value == run.run_uuid)
    stmt = _scoped(project_id).where(Trace.id.in_(linked.union(source))).order_by(Trace.request_time.desc(), Trace.id).limit(limit)
    return [(r[0], r[1]) for r in session.execute(stmt)]


def find_trace(session: Session, project_id: str, trace_id: str) -> Optional[tuple[Trace, int]]:
    try:
        return get_trace_row(session, project_id, trace_id)
    except (ResourceDoesNotExist, InvalidParameter):
        return None


def trace_id_of(session: Session, pk: int) -> str:
    return session.execute(select(Trace.trace_id).where(Trace.id == pk)).scalar_one()
