"""Chart sampling (the run page's and the experiment page's charts), on
SQLite and PostgreSQL, against a brute-force reading of the same rule over the
whole history: the step range [lo, hi] is cut at ``t_i = lo + floor(span * i /
(n - 1))`` into intervals (t_(i-1), t_i], and each interval shows the value last
logged at its highest step."""
from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from sqlalchemy.orm import Session

from gl_ml_tracking.errors import InvalidParameter
from gl_ml_tracking.models import Experiment, Metric, Run
from gl_ml_tracking.services.metric_history import bulk_interval
from gl_ml_tracking.services.metric_sampling import sample_steps_many
from tests.test_search_sql import engine  # noqa: F401  (the SQLite / PostgreSQL fixture)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def expected_sample(rows, start, end, n):
    """rows: (id, step, timestamp, value). The brute force: every row is looked at."""
    rows = [r for r in rows if (start is None or r[1] >= start) and (end is None or r[1] <= end)]
    if not rows:
        return []
    lo, hi = min(r[1] for r in rows), max(r[1] for r in rows)
    n = max(n, 2)
    targets = sorted({lo + math.floor(Fraction((hi - lo) * i, n - 1)) for i in range(n)})
    picked, previous = [], None
    for target in targets:
        inside = [r for r in rows if (previous is None or r[1] > previous) and r[1] <= target]
        previous = target
        if inside:
            top = max(r[1] for r in inside)
            picked.append(max((r for r in inside if r[1] == top), key=lambda r: (r[2], r[0])))
    return [(r[0], r[1], r[2], r[3]) for r in picked]


HISTORIES = {
    "dense": [(s, 1000 + s, s * 0.5) for s in range(2500)],
    "sparse": [(s, 7, float(s)) for s in sorted(random.Random(1).sample(range(-50_000, 50_000), 900))],
    "repeated steps": [(s // 3, 1000 - s, float(s)) for s in range(700)],
    "few": [(0, 5, 1.0), (10, 5, 2.0), (10, 9, 3.0), (11, 1, 4.0)],
    "one step": [(42, 1, 1.0), (42, 3, 2.0), (42, 2, 3.0)],
    "int64 extremes": [(INT64_MIN, 1, 1.0), (-1, 1, 2.0), (0, 1, 3.0), (INT64_MAX, 1, 4.0)],
    # span * (n - 1) fits in an int64 for n = 2 only: PostgreSQL's exact integer
    # arithmetic for n = 2, its numeric one for larger n, the same answer.
    "wide": [(-(2**61), 1, 1.0), (5, 1, 2.0), (2**61 + 3, 1, 3.0), (2**62 + 2**60, 1, 4.0), (2**62 + 2**60 + 1, 1, 5.0)],
}


@pytest.fixture(scope="module")
def histories(engine):  # noqa: F811
    """{name: (run pk, rows as (id, step, timestamp, value))}, plus an empty run."""
    made = {}
    with Session(engine) as s:
        exp = Experiment(project_id="sampling", iid=1, name="charts", creation_time=0, last_update_time=0)
        s.add(exp)
        s.flush()
        for number, (name, points) in enumerate([*HISTORIES.items(), ("empty", [])], start=1):
            run = Run(run_uuid=f"{number:032x}", project_id="sampling", experiment_id=exp.id, iid=number,
                      name=name, status="RUNNING", start_time=0, lifecycle_stage="active")
            s.add(run)
            s.flush()
            metrics = [Metric(run_id=run.id, key="loss", value=v, is_nan=False, timestamp=ts, step=step)
                       for step, ts, v in points]
            # The same steps under another key must never leak into "loss" (distinct
            # values: an identical point is stored once).
            metrics += [Metric(run_id=run.id, key="acc", value=-1.0 - i, is_nan=False, timestamp=10**12, step=step)
                        for i, (step, _ts, _v) in enumerate(points[:50])]
            s.add_all(metrics)
            s.flush()
            made[name] = (run.id, [(m.id, m.step, m.timestamp, m.value) for m in metrics if m.key == "loss"])
        s.commit()
    return made


def _got(points):
    return [(p.id, p.step, p.timestamp, p.value) for p in points]


@pytest.mark.parametrize("n", [2, 3, 7, 320, 2500])
@pytest.mark.parametrize("name", list(HISTORIES))
def test_sample_matches_the_brute_force(engine, histories, name, n):  # noqa: F811
    pk, rows = histories[name]
    with Session(engine) as s:
        got = sample_steps_many(s, [pk], "loss", None, None, n)[pk]
    want = expected_sample(rows, None, None, n)
    assert _got(got) == want
    assert len(got) <= n
    assert got[0].step == min(r[1] for r in rows) and got[-1].step == max(r[1] for r in rows)


@pytest.mark.parametrize("bounds", [(100, 900), (None, 10), (-10_000, None), (3000, 4000), (11, 11)])
def test_step_bounds_limit_the_range(engine, histories, bounds):  # noqa: F811
    start, end = bounds
    pks = [histories[name][0] for name in HISTORIES]
    with Session(engine) as s:
        got = sample_steps_many(s, pks, "loss", start, end, 50)
    for name in HISTORIES:
        pk, rows = histories[name]
        assert _got(got[pk]) == expected_sample(rows, start, end, 50), name


def test_many_runs_in_one_call_and_an_empty_run(engine, histories):  # noqa: F811
    pks = [histories[name][0] for name in [*HISTORIES, "empty"]]
    with Session(engine) as s:
        got = sample_steps_many(s, pks + pks[:2], "loss", None, None, 320)
        assert set(got) == set(pks)
        assert got[histories["empty"][0]] == []
        for name in HISTORIES:
            pk, rows = histories[name]
            assert _got(got[pk]) == expected_sample(rows, None, None, 320), name
        assert sample_steps_many(s, pks, "no such metric", None, None, 10) == {pk: [] for pk in pks}


def test_bulk_interval_checks_its_arguments_and_keeps_run_order(engine, histories):  # noqa: F811
    with Session(engine) as s:
        runs = [s.get(Run, histories[name][0]) for name in ("few", "dense")]
        pairs = bulk_interval(s, runs, "loss", None, None, "3")
        # MLflow's rule (services/metric_buckets): rows, not steps. "few" has 4 rows (two at
        # step 10): buckets of 2, 1, 1 rows; "dense" 2,500: starts 0, 834, 1667, the last
        # row (2499) in place of the last start.
        assert [run.name for run, _row in pairs] == ["few"] * 3 + ["dense"] * 3
        assert [(row[1], row[2]) for _run, row in pairs] == [(0, 5), (10, 9), (11, 1), (0, 1000), (834, 1834),
                                                             (2499, 3499)]
        for bad in ("0", "2501", "x"):
            with pytest.raises(InvalidParameter):
                bulk_interval(s, runs, "loss", None, None, bad)
        with pytest.raises(InvalidParameter, match="end_step"):
            bulk_interval(s, runs, "loss", "5", "4", "10")


# --------------------------------------------------------------------------- whole histories
@pytest.mark.parametrize("chunk", [1, 7, 20_000])
@pytest.mark.parametrize("name", ["dense", "repeated steps", "int64 extremes"])
def test_streamed_history_is_every_point_in_order_across_chunks(engine, histories, monkeypatch, name, chunk):  # noqa: F811
    from gl_ml_tracking.services import metric_history

    monkeypatch.setattr(metric_history, "STREAM_CHUNK", chunk)
    pk, rows = histories[name]
    want = sorted(rows, key=lambda r: (r[1], r[2], r[0]))
    with Session(engine) as s:
        chunks = list(metric_history.iter_history_chunks(s, pk, "loss"))
    assert all(len(c) <= chunk for c in chunks)
    assert [(r[0], r[1], r[2], r[3]) for c in chunks for r in c] == want


@pytest.mark.parametrize("page", [1, 333, 25_000])
def test_history_pages_follow_their_tokens_to_the_end(engine, histories, page):  # noqa: F811
    from gl_ml_tracking.services.metric_history import history_page

    pk, rows = histories["repeated steps"]
    with Session(engine) as s:
        run = s.get(Run, pk)
        got, token, calls = [], None, 0
        while True:
            part, token = history_page(s, run, "loss", page, token)
            got += part
            calls += 1
            if token is None:
                break
    assert [(r[0], r[1], r[2], r[3]) for r in got] == sorted(rows, key=lambda r: (r[1], r[2], r[0]))
    assert calls == -(-len(rows) // page)  # no empty last page: the token ends with the data
