"""``get-history-bulk-interval``'s sampling, as MLflow 3.17.2's server answers it.

MLflow samples each run's rows (not its steps): the run's values of the key within
[start_step, end_step], in (step, timestamp, value, NaN last) order, are cut into
``max_results`` buckets as NTILE cuts them (the first ``n % max_results`` buckets one
row longer), the first row of each bucket is kept, and the run's last row replaces the
last kept one when it is not kept already. So 20 steps give 0,4,8,12,19 of max_results
5, several values at one step are several rows, and max_results 1 gives the last row.
A NaN sorts as MLflow stores it, as the value 0 (``value`` is NULL here).

One statement for all the runs: the database numbers each run's rows and sends only
the bucket starts and the last row, so the answer holds ``max_results`` rows per run
whatever the history's length, but every row asked about is read once (as MLflow's
own server does). Counting the rows per step on the index, choosing here and reading
only the kept rows was slower on SQLite (100 runs x 2,500 points: the quarter million
counts cost more to send than the numbering). The charts' sampling (``metric_sampling``,
index seeks per step interval, cost independent of the history's length) is a different
rule, kept for the pages.
"""
from __future__ import annotations

from typing import Optional, Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from ..models import Metric

__all__ = ["kept_positions", "mlflow_sampled_rows"]

_TABLE = Metric.__tablename__

# rn is 1-based; i = rn - 1. With q = n / m and r = n % m (n > m), NTILE's buckets start
# at i = b * (q + 1) for b < r, then every q rows from r * (q + 1) on (nullif: SQL need not
# skip that branch when n <= m, where q may be 0).
_SQL = (
    "SELECT run_id, id, step, timestamp, value, is_nan, rn, n FROM ("
    " SELECT m.run_id, m.id, m.step, m.timestamp, m.value, m.is_nan,"
    " row_number() OVER (PARTITION BY m.run_id ORDER BY m.step, m.timestamp, coalesce(m.value, 0), m.is_nan) AS rn,"
    " count(*) OVER (PARTITION BY m.run_id) AS n"
    f" FROM {_TABLE} m WHERE m.run_id IN :runs AND m.key = :key{{cond}}) s"
    " WHERE n <= :m OR rn = n"
    " OR (rn - 1 < (n % :m) * (n / :m + 1) AND (rn - 1) % (n / :m + 1) = 0)"
    " OR (rn - 1 >= (n % :m) * (n / :m + 1) AND (rn - 1 - (n % :m) * (n / :m + 1)) % nullif(n / :m, 0) = 0)"
    " ORDER BY run_id, rn"
)


def kept_positions(n: int, m: int) -> list[int]:
    """The 0-based positions MLflow keeps of ``n`` ordered rows for ``max_results`` m."""
    if n <= m:
        return list(range(n))
    q, r = divmod(n, m)
    kept = [b * (q + 1) if b < r else r * (q + 1) + (b - r) * q for b in range(m)]
    kept[-1] = n - 1  # the last row, in place of the last start unless it is that row
    return kept


def mlflow_sampled_rows(
    session: Session, run_pks: Sequence[int], key: str, start_step: Optional[int], end_step: Optional[int],
    max_results: int,
) -> dict[int, list[tuple]]:
    """``{run pk: [(run pk, id, step, timestamp, value, is_nan), ...]}`` in MLflow's order."""
    run_pks = list(dict.fromkeys(int(pk) for pk in run_pks))
    result: dict[int, list[tuple]] = {pk: [] for pk in run_pks}
    if not run_pks:
        return result
    m = max(1, int(max_results))
    cond, params = "", {"runs": run_pks, "key": key, "m": m}
    if start_step is not None:
        cond += " AND m.step >= :start"
        params["start"] = start_step
    if end_step is not None:
        cond += " AND m.step <= :end"
        params["end"] = end_step
    stmt = text(_SQL.format(cond=cond)).bindparams(bindparam("runs", expanding=True))
    candidates: dict[int, list] = {pk: [] for pk in run_pks}
    for row in session.execute(stmt, params):
        candidates[row[0]].append(row)
    for pk, rows in candidates.items():
        if rows:  # the database sent the bucket starts and the last row; keep MLflow's m
            wanted = set(kept_positions(rows[0][7], m))
            result[pk] = [tuple(row[:6]) for row in rows if row[6] - 1 in wanted]
    return result
