"""How two trace filters go together (``traces/calculate-filter-correlation``, MLflow 3): the
counts of traces matching each filter, both, and all (within ``base_filter`` when given), and
their normalized pointwise mutual information (NPMI, in [-1, 1]).

The counts are one statement over this project's traces in the named experiments, each filter
compiled by ``trace_search`` (the grammar of ``traces/search``). NPMI follows MLflow 3.17.2's
policy: undefined (NaN, left out of the answer) when a filter matches nothing, -1 when they never
meet, and a second value with half a count added to every cell of the 2x2 table (Jeffreys'
prior), which stays defined on small samples.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Experiment, Trace
from . import lookups
from .trace_filter import filter_condition

JEFFREYS = 0.5


def _npmi(both: float, only1: float, only2: float, neither: float, always_together: bool) -> float:
    n1, n2 = both + only1, both + only2
    total = n1 + only2 + neither
    if n1 <= 0 or n2 <= 0 or both <= 0:
        return math.nan
    if always_together:  # (judged on the counts before smoothing, as MLflow does)
        return 1.0
    log_joint = math.log(both / total)
    pmi = log_joint - math.log(n1 / total) - math.log(n2 / total)
    return max(-1.0, min(1.0, pmi / -log_joint))


def npmi(joint: int, count1: int, count2: int, total: int) -> tuple[float, float]:
    """(NPMI, NPMI with Jeffreys' prior) of two filters' counts."""
    if total <= 0 or count1 == 0 or count2 == 0:
        return math.nan, math.nan
    cells = (joint, count1 - joint, count2 - joint, total - count1 - count2 + joint)
    if min(cells) < 0:
        return math.nan, math.nan
    together = cells[1] == cells[2] == cells[3] == 0
    plain = -1.0 if joint == 0 else _npmi(*cells, together)
    return plain, _npmi(*(c + JEFFREYS for c in cells), together)


def _condition(session: Session, filter_string: Any, name: str, required: bool = True):
    if filter_string in (None, ""):
        if required:
            raise InvalidParameter(f"Missing value for required parameter '{name}'.")
        return None
    if not isinstance(filter_string, str):
        raise InvalidParameter(f"Invalid value {filter_string!r} for parameter '{name}' supplied.")
    return filter_condition(session, filter_string)


def correlate(session: Session, project_id: str, experiment_ids: Any, filter_string1: Any, filter_string2: Any,
              base_filter: Optional[str] = None) -> dict:
    iids = [lookups.parse_experiment_iid(e) for e in experiment_ids or []]
    if not iids:
        raise InvalidParameter("Missing value for required parameter 'experiment_ids'.")
    first = _condition(session, filter_string1, "filter_string1")
    second = _condition(session, filter_string2, "filter_string2")
    base = _condition(session, base_filter, "base_filter", required=False)
    true = Trace.id.isnot(None)  # (a filter of nothing but spaces compiles to no condition: all traces)
    first, second = (true if first is None else first), (true if second is None else second)
    stmt = (select(func.count(Trace.id), func.count(case((first, 1))), func.count(case((second, 1))),
                   func.count(case((and_(first, second), 1))))
            .join(Experiment, Experiment.id == Trace.experiment_id)
            .where(Trace.project_id == project_id, Experiment.iid.in_(iids)))
    if base is not None:
        stmt = stmt.where(base)
    total, count1, count2, joint = (int(n) for n in session.execute(stmt).one())
    plain, smoothed = npmi(joint, count1, count2, total)
    out: dict = {"filter1_count": count1, "filter2_count": count2, "joint_count": joint, "total_count": total}
    # (NaN has no JSON: MLflow leaves an undefined value out, and its client reads that as NaN.)
    if not math.isnan(plain):
        out["npmi"] = plain
    if not math.isnan(smoothed):
        out["npmi_smoothed"] = smoothed
    return out
