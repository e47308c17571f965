"""``runs/search`` and ``experiments/search``: the MLflow searches of a project.

Both parse with :mod:`gl_ml_tracking.search.grammars`, compile the AST into one
SQLAlchemy ``select`` (runs: :mod:`.run_search_sql`) and read one keyset page
(:class:`~gl_ml_tracking.search.keyset.Pager`) of at most ``max_results + 1`` rows: the
database filters, sorts and limits; nothing is loaded to be filtered in Python, and
there is no query per row (the caller loads params, metrics and tags of the page in bulk).

Here are the business rules: the view types, ``max_results``, the project's scope.
Experiments follow MLflow's order: default ``creation_time DESC, experiment_id ASC``;
any other order ends with ``experiment_id DESC`` unless it names ``experiment_id``
(MLflow's tie-breaker). ``experiment_id`` is the per-project IID.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import exists, literal, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from ..errors import InvalidParameter
from ..models import ACTIVE, DELETED, Experiment, ExperimentTag, Run
from ..search.grammar import ATTRIBUTE, TAG, Comparison, OrderBy
from ..search.grammars import (
    EXPERIMENT_ID_ATTRIBUTE,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
)
from ..search.keyset import Atom, Pager, fingerprint
from ..search.sql import Dialect, compile_filter, numeric_condition
from .run_search_sql import run_comparison, run_order

__all__ = [
    "search_runs",
    "search_experiments",
    "view_type_stages",
    "validate_max_results",
    "SEARCH_MAX_RESULTS_DEFAULT",
    "SEARCH_MAX_RESULTS_THRESHOLD",
    "RUNS_TOKEN_KIND",
    "EXPERIMENTS_TOKEN_KIND",
]

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000
RUNS_TOKEN_KIND = "runs"
EXPERIMENTS_TOKEN_KIND = "experiments"

_VIEW_TYPES = {
    "ACTIVE_ONLY": (ACTIVE,),
    "DELETED_ONLY": (DELETED,),
    "ALL": (ACTIVE, DELETED),
}
_VIEW_TYPE_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


# --------------------------------------------------------------------------- arguments
def view_type_stages(view_type: Any) -> tuple[str, ...]:
    """Lifecycle stages for an MLflow ViewType: its name (any case), its number, or None (ACTIVE_ONLY)."""
    if view_type is None or view_type == "":
        return _VIEW_TYPES["ACTIVE_ONLY"]
    if isinstance(view_type, int) and not isinstance(view_type, bool) and view_type in _VIEW_TYPE_NUMBERS:
        return _VIEW_TYPES[_VIEW_TYPE_NUMBERS[view_type]]
    if isinstance(view_type, str) and view_type.strip().upper() in _VIEW_TYPES:
        return _VIEW_TYPES[view_type.strip().upper()]
    raise InvalidParameter(
        f"Invalid value {view_type!r} for parameter 'view_type': expected one of ACTIVE_ONLY, DELETED_ONLY, ALL."
    )


def validate_max_results(max_results: Any) -> int:
    """MLflow's rule: a positive integer, at most 50000; None means the default (1000)."""
    if max_results is None:
        return SEARCH_MAX_RESULTS_DEFAULT
    value = max_results
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():  # not isdigit: int("²") fails
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(
            f"Invalid value {max_results!r} for parameter 'max_results' supplied. It must be a positive integer"
        )
    if value < 1:
        raise InvalidParameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer"
        )
    if value > SEARCH_MAX_RESULTS_THRESHOLD:
        raise InvalidParameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            f"It must be at most {SEARCH_MAX_RESULTS_THRESHOLD}"
        )
    return value


# --------------------------------------------------------------------------- runs
def search_runs(
    session: Session,
    project_id: str,
    experiment_pks: list[int],
    filter_string: str = "",
    run_view_type: str = "ACTIVE_ONLY",
    max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
    order_by: Optional[list[str]] = None,
    page_token: Optional[str] = None,
) -> tuple[list[Run], Optional[str]]:
    """One page of the project's runs in ``experiment_pks`` (internal experiment ids)
    that match ``filter_string``, in MLflow's order, and the next page's token
    (None on the last page). Raises InvalidParameter on any bad argument."""
    limit = validate_max_results(max_results)
    stages = view_type_stages(run_view_type)
    node = parse_run_filter(filter_string)
    order = parse_run_order_by(order_by)
    pks = sorted({int(pk) for pk in experiment_pks or ()})
    d = Dialect(session, Run)
    atoms, joins = run_order(order, d)
    pager = Pager(RUNS_TOKEN_KIND, atoms, page_token, fingerprint("runs", project_id, pks, stages, node, order))
    if not pks:
        return [], None

    # The experiment is loaded by a second query (the caller needs its IID); its tags
    # are not. Joining it in made SQLite scan and sort every run of the experiment
    # instead of walking the (experiment, start_time, run_uuid) index.
    stmt = select(Run).options(selectinload(Run.experiment).lazyload(Experiment.tags))
    for target, onclause in joins:
        stmt = stmt.outerjoin(target, onclause)
    stmt = stmt.where(
        Run.project_id == project_id,
        Run.experiment_id.in_(pks),
        Run.lifecycle_stage.in_(stages),
    )
    if node is not None:
        stmt = stmt.where(compile_filter(node, d, run_comparison))
    page = pager.fetch(session, stmt, limit)
    return page.items, page.next_cursor


# --------------------------------------------------------------------------- experiments
def _experiment_comparison(c: Comparison, d: Dialect) -> ColumnElement:
    if c.kind == TAG:
        if c.op == "IS NULL":
            return ~exists(
                select(literal(1)).where(ExperimentTag.experiment_id == Experiment.id, ExperimentTag.key == c.key)
            )
        if c.op == "IS NOT NULL":
            return Experiment.id.in_(select(ExperimentTag.experiment_id).where(ExperimentTag.key == c.key))
        sub = select(ExperimentTag.experiment_id).where(
            ExperimentTag.key == c.key, d.compare_string(ExperimentTag.value, c.op, c.value)
        )
        return Experiment.id.in_(sub)
    if c.key == EXPERIMENT_ID_ATTRIBUTE:
        if c.op in ("IN", "NOT IN"):
            return Experiment.iid.in_(list(c.value)) if c.op == "IN" else Experiment.iid.not_in(list(c.value))
        return numeric_condition(Experiment.iid, c.op, c.value)
    if c.key == "name":
        return d.compare_string(Experiment.name, c.op, c.value)
    return numeric_condition(getattr(Experiment, c.key), c.op, c.value)


def _experiment_order(order: list[OrderBy], d: Dialect) -> list[Atom]:
    if not order:
        order = [OrderBy(ATTRIBUTE, "creation_time", False), OrderBy(ATTRIBUTE, EXPERIMENT_ID_ATTRIBUTE, True)]
    atoms: list[Atom] = []
    for ob in order:
        if ob.key == EXPERIMENT_ID_ATTRIBUTE:
            atoms.append(Atom(Experiment.iid, ob.ascending, False, int))
            return atoms  # unique within the project
        if ob.key == "name":
            atoms.append(Atom(d.sort_string(Experiment.name), ob.ascending, False, str))
        else:
            atoms.append(Atom(getattr(Experiment, ob.key), ob.ascending, False, int))
    atoms.append(Atom(Experiment.iid, False, False, int))  # MLflow's tie-breaker: experiment_id DESC
    return atoms


def search_experiments(
    session: Session,
    project_id: str,
    filter_string: str = "",
    view_type: str = "ACTIVE_ONLY",
    max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
    order_by: Optional[list[str]] = None,
    page_token: Optional[str] = None,
) -> tuple[list[Experiment], Optional[str]]:
    """One page of the project's experiments matching ``filter_string`` and the
    next page's token (None on the last page). Raises InvalidParameter on any bad argument."""
    limit = validate_max_results(max_results)
    stages = view_type_stages(view_type)
    node = parse_experiment_filter(filter_string)
    order = parse_experiment_order_by(order_by)
    d = Dialect(session, Experiment)
    atoms = _experiment_order(order, d)
    pager = Pager(
        EXPERIMENTS_TOKEN_KIND, atoms, page_token, fingerprint("experiments", project_id, stages, node, order)
    )
    stmt = select(Experiment).where(
        Experiment.project_id == project_id,
        Experiment.lifecycle_stage.in_(stages),
    )
    if node is not None:
        stmt = stmt.where(compile_filter(node, d, _experiment_comparison))
    page = pager.fetch(session, stmt, limit)
    return page.items, page.next_cursor
