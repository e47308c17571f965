"""Traces coming in: the client's spans over OTLP/HTTP (``POST <tracking URI>/v1/traces``)
and its trace info (the V3 start-trace call, made when the trace ends, and the v2 pair).

The two arrive in either order (the client's async queue has several workers): whichever
comes first creates the trace row; spans fill in what the info has not said yet (name,
state, duration, previews from the root span), the info has the last word. Spans are
upserted by (trace, span id), so a retried export changes nothing.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from sqlalchemy import BigInteger, and_, bindparam, delete, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Experiment, PendingTraceLink, Span, Trace, TraceMetadata, TraceRunLink, TraceTag
from . import lookups, span_payloads
from .assessments import create_for_trace
from . import trace_values as tv
from .common import now_ms
from .statement_cache import cached_statement

_STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}


# -- OTLP spans ---------------------------------------------------------------------
SPAN_CHUNK = 500  # spans written per statement: a 10,000-span export is never one list


def _attribute(value: Any) -> Any:
    """An OTLP AnyValue as a Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_attribute(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _attribute(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _span_row(span: Any) -> dict:
    span_type = None
    for a in span.attributes:
        if a.key == tv.SPAN_TYPE_ATTRIBUTE:
            span_type = tv.json_text(_attribute(a.value))
            break
    return {
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
        "name": span.name[:500],
        "span_type": (span_type or "")[:64] or None,
        "status": _STATUS_NAMES.get(span.status.code, "UNSET"),
        "start_ns": int(span.start_time_unix_nano),
        "end_ns": int(span.end_time_unix_nano) or None,
    }


def _root_previews(span: Any, big: dict[int, Any]) -> tuple[Optional[str], Optional[str]]:
    found = {}
    for i, a in enumerate(span.attributes):
        if a.key in (tv.SPAN_INPUTS_ATTRIBUTE, tv.SPAN_OUTPUTS_ATTRIBUTE):
            val = span_payloads.head_text(big[i], tv.PREVIEW_CHARS + 1) if i in big else _attribute(a.value)
            found[a.key] = tv.preview(val if isinstance(val, str) else json.dumps(val))
    return found.get(tv.SPAN_INPUTS_ATTRIBUTE), found.get(tv.SPAN_OUTPUTS_ATTRIBUTE)


_TRACES, _SPANS, _EXPERIMENTS = Trace.__table__, Span.__table__, Experiment.__table__


def _find_trace(session: Session) -> Any:
    return cached_statement(session, "trace_ingest.find", lambda _insert: select(_TRACES.c.id).where(
        _TRACES.c.project_id == bindparam("p"), _TRACES.c.trace_id == bindparam("t")))


class Target:
    """Where a trace goes: its experiment (checked active) and its row once it has one.
    Found in one statement: every export and the start call ask both questions, and on
    PostgreSQL a statement's round trip costs more than its work."""

    def __init__(self, project_id: str, experiment_pk: int, experiment_iid: int, trace_id: str,
                 trace_pk: Optional[int]):
        self.project_id, self.experiment_pk, self.experiment_iid = project_id, experiment_pk, experiment_iid
        self.trace_id, self.trace_pk = trace_id, trace_pk

    def next_trace(self, session: Session, trace_id: str) -> "Target":
        """The same experiment, another trace (an export may carry spans of several)."""
        found = session.execute(_find_trace(session), {"p": self.project_id, "t": trace_id}).scalar()
        return Target(self.project_id, self.experiment_pk, self.experiment_iid, trace_id, found)


def find_target(session: Session, project_id: str, experiment_id: Any, trace_id: str) -> Target:
    iid = lookups.parse_experiment_iid(experiment_id)
    if iid == lookups.DEFAULT_EXPERIMENT_IID:  # may have to be created first
        experiment = lookups.get_active_experiment(session, project_id, iid, with_tags=False)
        return Target(project_id, experiment.id, experiment.iid, trace_id, None).next_trace(session, trace_id)
    stmt = cached_statement(session, "trace_ingest.target", lambda _insert: select(
        _EXPERIMENTS.c.id, _EXPERIMENTS.c.lifecycle_stage, _TRACES.c.id.label("trace_pk"))
        .select_from(_EXPERIMENTS).outerjoin(_TRACES, and_(_TRACES.c.project_id == _EXPERIMENTS.c.project_id,
                                                           _TRACES.c.trace_id == bindparam("t")))
        .where(_EXPERIMENTS.c.project_id == bindparam("p"), _EXPERIMENTS.c.iid == bindparam("iid")))
    row = session.execute(stmt, {"p": project_id, "t": trace_id, "iid": iid}).first()
    if row is None:
        raise ResourceDoesNotExist(f"Could not find experiment with ID {iid}")
    lookups.require_active(iid, row.lifecycle_stage)
    return Target(project_id, row.id, iid, trace_id, row.trace_pk)


def ensure_trace(session: Session, target: Target, request_time: int) -> int:
    """The trace row's id, created (IN_PROGRESS, not finalized) when ``target`` has none:
    a trace's spans come in several exports, and only the first one creates it."""
    if target.trace_pk is not None:
        return target.trace_pk
    add = cached_statement(session, "trace_ingest.add", lambda insert: insert(_TRACES).on_conflict_do_nothing(
        index_elements=[_TRACES.c.project_id, _TRACES.c.trace_id]).returning(_TRACES.c.id))
    pk = session.execute(add, {"project_id": target.project_id, "trace_id": target.trace_id,
                               "experiment_id": target.experiment_pk, "state": "IN_PROGRESS",
                               "request_time": request_time, "finalized": False}).scalar()
    if pk is None:  # another export of the same trace created it meanwhile
        pk = session.execute(_find_trace(session), {"p": target.project_id, "t": target.trace_id}).scalar_one()
    else:
        _attach_pending_links(session, target.project_id, target.trace_id, pk)
    target.trace_pk = pk
    return pk


def _attach_pending_links(session: Session, project_id: str, trace_id: str, pk: int) -> None:
    """Links made to this trace before it arrived (``traces.link_to_run``) become real ones:
    one statement when there are none."""
    pending = PendingTraceLink.__table__.c  # Core, not ORM: the parameters are not column values
    attach = cached_statement(session, "trace_ingest.attach_links", lambda insert: insert(
        TraceRunLink.__table__).from_select(["trace_pk", "run_id"], select(bindparam("pk", type_=BigInteger), pending.run_id)
                                            .where(pending.project_id == bindparam("p"), pending.trace_id == bindparam("t")),
                                            ).on_conflict_do_nothing())
    if session.execute(attach, {"pk": pk, "p": project_id, "t": trace_id}).rowcount:
        session.execute(delete(PendingTraceLink).where(PendingTraceLink.project_id == project_id,
                                                       PendingTraceLink.trace_id == trace_id))


def log_spans(session: Session, project_id: str, experiment_id: Any, spans: Iterable[Any]) -> int:
    """Store the spans of an OTLP export (``otlp_wire.iter_spans``: one at a time, with the
    long strings of a big one apart) in
    ``experiment_id``; the number of spans stored. Rows are written SPAN_CHUNK at a time,
    big payloads go to the file storage (``span_payloads.store``)."""
    if experiment_id in (None, ""):
        raise InvalidParameter("Missing the experiment: send its id in the X-MLflow-Experiment-Id header.")
    pks: dict[bytes, int] = {}
    pending: list[dict] = []
    count = 0
    target: Optional[Target] = None
    for span, big in spans:
        if len(span.trace_id) != 16 or len(span.span_id) != 8:
            raise InvalidParameter("Invalid span: trace_id must be 16 bytes and span_id 8 bytes.")
        pk = pks.get(span.trace_id)
        if pk is None:
            trace_id = tv.trace_id_from_otel(span.trace_id)
            target = (find_target(session, project_id, experiment_id, trace_id) if target is None
                      else target.next_trace(session, trace_id))
            pk = pks[span.trace_id] = ensure_trace(session, target, int(span.start_time_unix_nano) // 1_000_000)
        row = _span_row(span)
        if row["parent_span_id"] is None:
            _fill_from_root(session, pk, row, *_root_previews(span, big))
        row["payload"], row["payload_key"] = span_payloads.store(session, project_id, span, big, pk)
        row["trace_pk"] = pk
        pending.append(row)
        if len(pending) >= SPAN_CHUNK:
            count += _write_spans(session, pending)
    return count + _write_spans(session, pending)


def _write_spans(session: Session, rows: list[dict]) -> int:
    if rows:
        session.execute(_span_upsert(session), rows)
    written = len(rows)
    rows.clear()
    return written


_SPAN_COLUMNS = ("parent_span_id", "name", "span_type", "status", "start_ns", "end_ns", "payload", "payload_key")


def _span_upsert(session: Session) -> Any:
    """INSERT .. ON CONFLICT (trace, span) DO UPDATE (a retried export changes nothing), a
    Core statement built once per dialect: no ORM bulk machinery per export."""
    def build(insert):
        stmt = insert(_SPANS)
        return stmt.on_conflict_do_update(index_elements=[_SPANS.c.trace_pk, _SPANS.c.span_id],
                                          set_={c: stmt.excluded[c] for c in _SPAN_COLUMNS})

    return cached_statement(session, "trace_ingest.spans", build)


def _fill_from_root(session: Session, pk: int, root: dict, inputs: Optional[str], outputs: Optional[str]) -> None:
    """What the root span says of the trace, where the trace info has not spoken yet."""
    state = {"OK": "OK", "ERROR": "ERROR"}.get(root["status"], "OK") if root["end_ns"] else "IN_PROGRESS"
    duration = (root["end_ns"] - root["start_ns"]) // 1_000_000 if root["end_ns"] else None
    stmt = cached_statement(session, "trace_ingest.root", lambda _insert: update(_TRACES).where(
        _TRACES.c.id == bindparam("pk"), _TRACES.c.finalized.is_(False)).values(
        name=bindparam("v_name"), state=bindparam("v_state"), execution_duration=bindparam("v_duration"),
        request_time=bindparam("v_time"), request_preview=bindparam("v_in"), response_preview=bindparam("v_out")))
    session.execute(stmt, {"pk": pk, "v_name": root["name"][:250], "v_state": state, "v_duration": duration,
                           "v_time": root["start_ns"] // 1_000_000, "v_in": inputs, "v_out": outputs})


# -- trace info -----------------------------------------------------------------------
def upsert_pairs(session: Session, model: Any, pk: int, pairs: dict[str, Optional[str]]) -> None:
    """Set tags or metadata (``model``: TraceTag or TraceMetadata) of trace ``pk``."""
    if not pairs:
        return
    table = model.__table__

    def build(insert):
        stmt = insert(table)
        return stmt.on_conflict_do_update(index_elements=[table.c.trace_pk, table.c.key], set_={"value": stmt.excluded.value})

    stmt = cached_statement(session, "trace_ingest.pairs." + table.name, build)
    session.execute(stmt, [{"trace_pk": pk, "key": k, "value": v} for k, v in pairs.items()])


def _experiment_of(info: dict) -> Any:
    location = info.get("trace_location") or {}
    experiment = (location.get("mlflow_experiment") or {}) if isinstance(location, dict) else {}
    return experiment.get("experiment_id") if isinstance(experiment, dict) else None


def start_trace(session: Session, project_id: str, info: Any) -> tuple[Trace, int]:
    """The V3 start-trace call: the trace's final info. Returns the trace's row as now
    stored, and its experiment's IID (what the answer is made of)."""
    if not isinstance(info, dict):
        raise InvalidParameter("Missing value for required parameter 'trace.trace_info'.")
    trace_id = tv.validate_trace_id(info.get("trace_id"))
    target = find_target(session, project_id, _experiment_of(info), trace_id)
    request_time = tv.timestamp_to_ms(info.get("request_time"), "request_time") or now_ms()
    duration = tv.duration_to_ms(info.get("execution_duration"), "execution_duration")
    state = tv.parse_state(info.get("state"))
    tags = tv.string_map(info.get("tags"), "tags")
    metadata = tv.string_map(info.get("trace_metadata"), "trace_metadata")
    name = tags.pop(tv.TRACE_NAME_TAG, None)
    for computed in (tv.SPANS_LOCATION_TAG, tv.ARTIFACT_LOCATION_TAG):
        tags.pop(computed, None)
    pk = ensure_trace(session, target, request_time)
    values = dict(
        experiment_id=target.experiment_pk, request_time=request_time, execution_duration=duration, state=state,
        client_request_id=_optional(info.get("client_request_id"), 250),
        request_preview=tv.preview(_optional(info.get("request_preview"))),
        response_preview=tv.preview(_optional(info.get("response_preview"))), finalized=True,
    )
    if name is not None:
        values["name"] = name[:250]
    # RETURNING: the answer is this row, without reading it again.
    trace = session.execute(update(Trace).where(Trace.id == pk).values(**values).returning(Trace)
                            .execution_options(synchronize_session=False)).scalar_one()
    upsert_pairs(session, TraceTag, pk, tags)
    upsert_pairs(session, TraceMetadata, pk, metadata)
    assessments = info.get("assessments") or []
    if assessments:
        for item in assessments:
            create_for_trace(session, project_id, pk, trace_id, item)
    return trace, target.experiment_iid


def _optional(value: Any, limit: Optional[int] = None) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"Invalid value {value!r}: expected a string.")
    return value[:limit] if limit else value


# -- v2 -----------------------------------------------------------------------------
def start_trace_v2(session: Session, project_id: str, experiment_id: Any, timestamp_ms: Any,
                   metadata: Any, tags: Any) -> int:
    """The v2 start call: a new trace id, IN_PROGRESS."""
    import uuid

    experiment = lookups.get_active_experiment(session, project_id, experiment_id)
    trace_id = "tr-" + uuid.uuid4().hex
    target = Target(project_id, experiment.id, experiment.iid, trace_id, None)
    pk = ensure_trace(session, target, int(timestamp_ms or now_ms()))
    tag_map = tv.string_map(tags, "tags")
    name = tag_map.pop(tv.TRACE_NAME_TAG, None)
    if name:
        session.execute(update(Trace).where(Trace.id == pk).values(name=name[:250]))
    upsert_pairs(session, TraceTag, pk, tag_map)
    upsert_pairs(session, TraceMetadata, pk, tv.string_map(metadata, "request_metadata"))
    return pk


def end_trace_v2(session: Session, trace: Trace, timestamp_ms: Any, status: Any, metadata: Any, tags: Any) -> None:
    end = int(timestamp_ms or now_ms())
    trace.execution_duration = max(0, end - trace.request_time)
    trace.state = tv.parse_state(status)
    trace.finalized = True
    tag_map = tv.string_map(tags, "tags")
    name = tag_map.pop(tv.TRACE_NAME_TAG, None)
    if name:
        trace.name = name[:250]
    upsert_pairs(session, TraceTag, trace.id, tag_map)
    meta_map = tv.string_map(metadata, "request_metadata")
    # A 2.x client says the trace's inputs and outputs only here (its spans go to traces.json):
    # they are the previews the trace pages and the V3 info show.
    if tv.INPUTS_METADATA in meta_map:
        trace.request_preview = tv.preview(meta_map[tv.INPUTS_METADATA])
    if tv.OUTPUTS_METADATA in meta_map:
        trace.response_preview = tv.preview(meta_map[tv.OUTPUTS_METADATA])
    upsert_pairs(session, TraceMetadata, trace.id, meta_map)

