"""How many runs of an experiment match a filter (the runs table's match count).
Counted by the database over the same filter the search compiles, up to a cap
(a count past it reads "more than"), so a filter over 100,000 runs stays cheap."""
from __future__ import annotations

from typing import Optional, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Run
from ..search.grammars import parse_run_filter
from ..search.sql import Dialect, compile_filter
from .run_search_sql import run_comparison

COUNT_CAP = 10_000


def count_matching_runs(session: Session, project_id: str, experiment_pk: int, filter_string: str,
                        stages: Sequence[str], cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(number of matching runs, whether the count stopped at ``cap``). Raises
    InvalidParameter for a filter the search would refuse."""
    node = parse_run_filter(filter_string)
    d = Dialect(session, Run)
    inner = select(Run.id).where(Run.project_id == project_id, Run.experiment_id == experiment_pk,
                                 Run.lifecycle_stage.in_(tuple(stages)))
    if node is not None:
        inner = inner.where(compile_filter(node, d, run_comparison))
    found: Optional[int] = session.scalar(select(func.count()).select_from(inner.limit(cap + 1).subquery()))
    found = int(found or 0)
    return min(found, cap), found > cap
