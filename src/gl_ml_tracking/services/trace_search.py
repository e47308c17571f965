"""``traces/search``: a project's traces over several experiments, with MLflow's trace
filter grammar (:mod:`.trace_filter`), ``order_by`` and keyset page tokens (the shared
pager and codec).

Order: any numeric attribute, status, request_id, name, run_id, client_request_id,
experiment_id, ``tags.<k>`` and ``metadata.<k>`` (traces without the key last); always
ending with ``timestamp_ms DESC, request_id``.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import ACTIVE, Experiment, Trace, TraceMetadata, TraceTag
from ..search.grammar import ATTRIBUTE, TAG
from ..search.keyset import Atom, Pager, fingerprint
from ..search.sql import Dialect
from . import trace_values as tv
from . import validation as v
from .trace_filter import GRAMMAR, compile_node, filter_condition, parse_filter
from .traces import TraceData, load_data

__all__ = ["search", "parse_filter", "filter_condition", "TOKEN_KIND"]

TOKEN_KIND = "traces"
DEFAULT_MAX_RESULTS = 100
MAX_RESULTS = 1000


def _end_time():
    return Trace.request_time + Trace.execution_duration


def _order_atoms(order_by: list, d: Dialect) -> list[Atom]:
    atoms: list[Atom] = []
    seen_time = False
    for ob in GRAMMAR.parse_order_by(order_by):
        key = ob.key
        if ob.kind != ATTRIBUTE:  # a tag or metadata value; traces without it come last
            if ob.kind == TAG and key == tv.TRACE_NAME_TAG:
                atoms.append(Atom(d.sort_string(Trace.name), ob.ascending, True, str))
                continue
            model = TraceTag if ob.kind == TAG else TraceMetadata
            sub = select(model.value).where(model.trace_pk == Trace.id, model.key == key).scalar_subquery()
            atoms.append(Atom(d.sort_string(sub), ob.ascending, True, str))
            continue
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
            iid = select(Experiment.iid).where(Experiment.id == Trace.experiment_id).scalar_subquery()
            atoms.append(Atom(iid, ob.ascending, False, int))
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


def _experiment_iids(session: Session, project_id: str, experiment_ids: Any) -> dict[int, int]:
    """{primary key: IID} of the project's active experiments among ``experiment_ids``."""
    if not experiment_ids:
        raise InvalidParameter("Missing value for required parameter 'locations' (the experiment ids).")
    iids = set()
    for item in experiment_ids:
        text = str(item).strip()
        if not text.isdecimal() or len(text) > 18:
            raise InvalidParameter(f"Invalid experiment ID {item!r}: expected an integer.")
        iids.add(int(text))
    return dict(session.execute(select(Experiment.id, Experiment.iid).where(
        Experiment.project_id == project_id, Experiment.iid.in_(sorted(iids)), Experiment.lifecycle_stage == ACTIVE)).all())


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
    iids = _experiment_iids(session, project_id, experiment_ids)
    pks = sorted(iids)
    token = v.require_str(page_token, "page_token") if page_token else None
    pager = Pager(TOKEN_KIND, atoms, token, fingerprint("traces", project_id, pks, node, order))
    if not pks:
        return [], None
    # No join to the experiments (their IIDs came with their keys): with the join,
    # SQLite's planner drives the query from the experiments table and sorts every trace
    # of the experiment instead of walking the (experiment, time) index.
    stmt = select(Trace).where(Trace.project_id == project_id, Trace.experiment_id.in_(pks))
    if node is not None:
        stmt = stmt.where(compile_node(node, d))
    page = pager.fetch(session, stmt, limit)
    return load_data(session, [(t, iids[t.experiment_id]) for t in page.items]), page.next_cursor
