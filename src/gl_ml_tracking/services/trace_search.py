"""``traces/search``: a project's traces over several experiments, with MLflow's trace
filter grammar, ``order_by`` and keyset page tokens (the shared parser, pager and codec).

Filter (MLflow 3's ``SearchTraceUtils``)::

    attributes (attribute. / attributes. / trace. / bare):
      timestamp[_ms], execution_time[_ms], end_time[_ms]       = != < <= > >=  number
      status, request_id, client_request_id, name, run_id      = != LIKE ILIKE IN NOT IN
      text                                                     LIKE ILIKE (span contents)
    tags.<k>, tag.<k>, metadata.<k>, request_metadata.<k>      = != LIKE ILIKE IS [NOT] NULL
    span.name, span.type, span.status                          = != LIKE ILIKE IN NOT IN

``run_id`` matches traces recorded in the run (``mlflow.sourceRun``) and traces linked
to it. Order: any numeric attribute, status, request_id, name, experiment_id; always
ending with ``timestamp_ms DESC, request_id``.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import and_, exists, literal, or_, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import ACTIVE, Experiment, Run, Span, Trace, TraceMetadata, TraceRunLink, TraceTag
from ..search.grammar import ATTRIBUTE, LIST_OPS, NULL_OPS, TAG, Comparison, Grammar, Node
from ..search.keyset import Atom, Pager, fingerprint
from ..search.sql import Dialect, compile_filter, numeric_condition
from . import trace_values as tv
from . import validation as v
from .traces import TraceData, load_data

__all__ = ["search", "parse_filter", "filter_condition", "TOKEN_KIND"]

TOKEN_KIND = "traces"
DEFAULT_MAX_RESULTS = 100
MAX_RESULTS = 1000
METADATA = "metadata"
SPAN = "span"

_ENTITIES = {
    "tag": TAG, "tags": TAG,
    "attribute": ATTRIBUTE, "attributes": ATTRIBUTE, "trace": ATTRIBUTE,
    "metadata": METADATA, "request_metadata": METADATA,
    "span": SPAN,
}
_NUMERIC = {
    "timestamp": "timestamp_ms", "timestamp_ms": "timestamp_ms",
    "execution_time": "execution_time_ms", "execution_time_ms": "execution_time_ms",
    "end_time": "end_time_ms", "end_time_ms": "end_time_ms",
}
_STRING = frozenset({"status", "request_id", "client_request_id", "name", "run_id"})
_TEXT = "text"
_ORDER_ONLY = frozenset({"experiment_id"})
_SPAN_KEYS = {"name": Span.name, "type": Span.span_type, "status": Span.status}


class _TraceGrammar(Grammar):
    entities = _ENTITIES
    what = "trace filter"

    def resolve(self, sc, kind, key, start, *, for_order=False):
        kind = kind or ATTRIBUTE
        if kind == ATTRIBUTE:
            key = _NUMERIC.get(key, key)
            valid = set(_NUMERIC.values()) | _STRING | ({*_ORDER_ONLY} if for_order else {_TEXT})
            if key not in valid:
                raise sc.error(f"invalid attribute key {key!r}; valid attribute keys are {', '.join(sorted(valid))}", start)
        elif for_order:
            raise sc.error("traces can only be ordered by attributes", start)
        elif kind == SPAN and key not in _SPAN_KEYS:
            raise sc.error(f"invalid span key {key!r}; valid span keys are {', '.join(sorted(_SPAN_KEYS))}", start)
        return kind, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        name = key if kind == ATTRIBUTE else f"{kind}.{key}"
        if kind == ATTRIBUTE and key in _NUMERIC.values():
            return self.number_value(sc, op, f"numeric attribute {name!r}", vkind, raw, start, vstart)
        if kind in (TAG, METADATA):
            return self.tag_value(sc, op, name, vkind, raw, start, vstart)
        if op in NULL_OPS:
            raise sc.error(f"IS NULL / IS NOT NULL is only supported for tags and metadata, not for {name!r}", start)
        if kind == ATTRIBUTE and key == _TEXT:
            if op not in ("LIKE", "ILIKE"):
                raise sc.error(f"invalid comparator {op!r} for 'text'; use LIKE or ILIKE", start)
            return self.string_value(sc, op, name, vkind, raw, start, vstart)
        if op in LIST_OPS:
            if kind == ATTRIBUTE and key == "name":  # MLflow's store refuses IN on the trace name
                raise sc.error(f"{op} is not supported for 'name'; use = != LIKE ILIKE", start)
            return self.list_value(sc, op, vkind, raw, vstart)
        return self.string_value(sc, op, name, vkind, raw, start, vstart, "= != LIKE ILIKE IN NOT IN")


_GRAMMAR = _TraceGrammar()


def parse_filter(filter_string: Optional[str]) -> Optional[Node]:
    return _GRAMMAR.parse_filter(filter_string or None)


def filter_condition(session: Session, filter_string: Optional[str]):
    """The SQL condition on ``Trace`` of a trace filter (None for an empty one)."""
    node = parse_filter(filter_string)
    return None if node is None else compile_filter(node, Dialect(session, Trace), _leaf)


def _key_value(model: Any, key: str, op: str, value: Any, d: Dialect):
    has_key = [model.trace_pk == Trace.id, model.key == key]
    if op == "IS NULL":
        return ~exists(select(literal(1)).where(*has_key))
    if op == "IS NOT NULL":
        return exists(select(literal(1)).where(*has_key))
    return exists(select(literal(1)).where(*has_key, d.compare_string(model.value, op, value)))


def _run_condition(op: str, value: Any, d: Dialect):
    source = _key_value(TraceMetadata, tv.SOURCE_RUN_METADATA, op, value, d)
    linked = exists(select(literal(1)).select_from(TraceRunLink).join(Run, Run.id == TraceRunLink.run_id).where(
        TraceRunLink.trace_pk == Trace.id, d.compare_string(Run.run_uuid, op, value)))
    if op in ("!=", "NOT IN"):
        return and_(~_key_value(TraceMetadata, tv.SOURCE_RUN_METADATA, {"!=": "=", "NOT IN": "IN"}[op], value, d),
                    ~exists(select(literal(1)).select_from(TraceRunLink).join(Run, Run.id == TraceRunLink.run_id).where(
                        TraceRunLink.trace_pk == Trace.id,
                        d.compare_string(Run.run_uuid, {"!=": "=", "NOT IN": "IN"}[op], value))))
    return or_(source, linked)


def _end_time():
    return Trace.request_time + Trace.execution_duration


def _numeric_column(key: str):
    return {"timestamp_ms": Trace.request_time, "execution_time_ms": Trace.execution_duration}.get(key) \
        if key != "end_time_ms" else _end_time()


def _leaf(c: Comparison, d: Dialect):
    if c.kind == TAG:
        if c.key == tv.TRACE_NAME_TAG:
            if c.op in NULL_OPS:
                return Trace.name.is_(None) if c.op == "IS NULL" else Trace.name.is_not(None)
            return d.compare_string(Trace.name, c.op, c.value)
        return _key_value(TraceTag, c.key, c.op, c.value, d)
    if c.kind == METADATA:
        return _key_value(TraceMetadata, c.key, c.op, c.value, d)
    if c.kind == SPAN:
        return exists(select(literal(1)).where(Span.trace_pk == Trace.id, d.compare_string(_SPAN_KEYS[c.key], c.op, c.value)))
    if c.key in _NUMERIC.values():
        return numeric_condition(_numeric_column(c.key), c.op, c.value)
    if c.key == "run_id":
        return _run_condition(c.op, c.value, d)
    if c.key == _TEXT:
        return exists(select(literal(1)).where(Span.trace_pk == Trace.id, d.like(Span.payload, c.value, c.op == "ILIKE")))
    column = {"status": Trace.state, "request_id": Trace.trace_id, "client_request_id": Trace.client_request_id,
              "name": Trace.name}[c.key]
    value = tuple(s.upper() for s in c.value) if c.key == "status" and c.op in LIST_OPS else c.value
    if c.key == "status" and isinstance(value, str) and c.op in ("=", "!="):
        value = value.upper()
    return d.compare_string(column, c.op, value)


def _order_atoms(order_by: list, d: Dialect) -> list[Atom]:
    atoms: list[Atom] = []
    seen_time = False
    for ob in _GRAMMAR.parse_order_by(order_by):
        key = ob.key
        if key == "request_id":
            atoms.append(Atom(Trace.trace_id, ob.ascending, False, str))
            return atoms
        if key in ("timestamp_ms",):
            seen_time = True
            atoms.append(Atom(Trace.request_time, ob.ascending, False, int))
        elif key == "execution_time_ms":
            atoms.append(Atom(Trace.execution_duration, ob.ascending, True, int))
        elif key == "end_time_ms":
            atoms.append(Atom(_end_time(), ob.ascending, True, int))
        elif key == "status":
            atoms.append(Atom(d.sort_string(Trace.state), ob.ascending, False, str))
        elif key == "name":
            atoms.append(Atom(d.sort_string(Trace.name), ob.ascending, True, str))
        elif key == "experiment_id":
            atoms.append(Atom(Experiment.iid, ob.ascending, False, int))
        elif key == "run_id":
            sub = select(TraceMetadata.value).where(TraceMetadata.trace_pk == Trace.id,
                                                    TraceMetadata.key == tv.SOURCE_RUN_METADATA).scalar_subquery()
            atoms.append(Atom(sub, ob.ascending, True, str))
        else:  # client_request_id
            atoms.append(Atom(Trace.client_request_id, ob.ascending, True, str))
    if not seen_time:
        atoms.append(Atom(Trace.request_time, False, False, int))
    atoms.append(Atom(Trace.trace_id, True, False, str))
    return atoms


def _experiment_pks(session: Session, project_id: str, experiment_ids: Any) -> list[int]:
    if not experiment_ids:
        raise InvalidParameter("Missing value for required parameter 'locations' (the experiment ids).")
    iids = set()
    for item in experiment_ids:
        text = str(item).strip()
        if not text.isdecimal() or len(text) > 18:
            raise InvalidParameter(f"Invalid experiment ID {item!r}: expected an integer.")
        iids.add(int(text))
    return sorted(session.scalars(select(Experiment.id).where(
        Experiment.project_id == project_id, Experiment.iid.in_(sorted(iids)), Experiment.lifecycle_stage == ACTIVE)))


def search(session: Session, project_id: str, experiment_ids: Any, *, filter_string: Optional[str] = None,
           max_results: Any = None, order_by: Any = None, page_token: Optional[str] = None) -> tuple[list[TraceData], Optional[str]]:
    """One page of matching traces (with their tags, metadata, assessments) and the next token."""
    limit = v.parse_int(max_results, "max_results", default=DEFAULT_MAX_RESULTS) or DEFAULT_MAX_RESULTS
    if limit < 1 or limit > MAX_RESULTS:
        raise InvalidParameter(f"Invalid value {max_results!r} for parameter 'max_results': it must be between 1 and {MAX_RESULTS}.")
    node = parse_filter(filter_string)
    order = list(order_by or [])
    d = Dialect(session, Trace)
    atoms = _order_atoms(order, d)
    pks = _experiment_pks(session, project_id, experiment_ids)
    token = v.require_str(page_token, "page_token") if page_token else None
    pager = Pager(TOKEN_KIND, atoms, token, fingerprint("traces", project_id, pks, node, order))
    if not pks:
        return [], None
    stmt = (select(Trace).add_columns(Experiment.iid).join(Experiment, Experiment.id == Trace.experiment_id)
            .where(Trace.project_id == project_id, Trace.experiment_id.in_(pks)))
    if node is not None:
        stmt = stmt.where(compile_filter(node, d, _leaf))
    page = pager.fetch(session, stmt, limit)
    return _with_iids(session, page.items, pks), page.next_cursor


def _with_iids(session: Session, items: list[Trace], pks: list[int]) -> list[TraceData]:
    iids = dict(session.execute(select(Experiment.id, Experiment.iid).where(Experiment.id.in_(pks))).all())
    return load_data(session, [(t, iids[t.experiment_id]) for t in items])
