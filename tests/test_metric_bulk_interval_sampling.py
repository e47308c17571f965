"""``get-history-bulk-interval`` samples rows as MLflow 3.17.2's server does, on shapes its own
case does not reach: uneven steps, several values per step (NaN and infinities among them),
runs with different step sets, a step range, max_results 1. The expectations were read from
the pinned reference server: ``GLML_CASES_AGAINST_REFERENCE=1`` runs this file against it."""
from __future__ import annotations

import math

from mlflow.entities import Metric

from tests.support.rest_cases import AGAINST_REFERENCE, get, mlflow_client  # noqa: F401

if AGAINST_REFERENCE:
    from tests.support.rest_cases import reference_url  # noqa: F401

BULK_INTERVAL = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"

UNEVEN = [0, 1, 2, 5, 9, 10, 30, 31, 32, 100, 101, 250, 251, 252, 1000]
# Several values at step 3 and 7, logged at the same and at later timestamps.
CROWDED = ([(s, 1, float(s)) for s in range(10)]
           + [(3, 1, v) for v in (math.nan, -1.0, 0.0, math.inf, -math.inf)]
           + [(3, 2, 5.0), (7, 0, 2.0), (7, 5, math.nan), (9, 3, 1.0)])


def _sampled(client, run_ids, **params):
    r = get(client, BULK_INTERVAL, {"run_ids": run_ids, "metric_key": "m", **params})
    assert r.status_code == 200, r.text
    return [(run_ids.index(m["run_id"]), m["step"], m["timestamp"], _value(m.get("value")))
            for m in r.json().get("metrics", [])]


INF = "inf"


def _value(value):
    """Infinities as one mark: the reference answers them as the largest doubles (MLflow stores
    them so), ours as JSON's "Infinity" (stored as such; a difference outside this case)."""
    if value in ("Infinity", "-Infinity") or (isinstance(value, float) and abs(value) == 1.7976931348623157e308):
        return INF if str(value)[0] != "-" else "-" + INF
    return value


def test_bulk_interval_samples_rows_as_mlflow(mlflow_client):
    c = mlflow_client
    exp = c.create_experiment("bulk interval shapes")
    uneven, crowded, short = (c.create_run(exp).info.run_id for _ in range(3))
    c.log_batch(uneven, metrics=[Metric("m", s * 0.5, 10 + s, s) for s in UNEVEN])
    c.log_batch(crowded, metrics=[Metric("m", v, t, s) for s, t, v in CROWDED])
    c.log_batch(short, metrics=[Metric("m", 1.0, 1, s) for s in (4, 8)])
    runs = [uneven, crowded, short]
    assert _sampled(c, runs, max_results=5) == [
        (0, 0, 10, 0.0), (0, 5, 15, 2.5), (0, 30, 40, 15.0), (0, 100, 110, 50.0), (0, 1000, 1010, 500.0),
        (1, 0, 1, 0.0), (1, 3, 1, -1.0), (1, 3, 1, INF), (1, 6, 1, 6.0), (1, 9, 3, 1.0),
        (2, 4, 1, 1.0), (2, 8, 1, 1.0)]
    assert _sampled(c, runs, max_results=3) == [
        (0, 0, 10, 0.0), (0, 10, 20, 5.0), (0, 1000, 1010, 500.0), (1, 0, 1, 0.0), (1, 3, 1, 3.0), (1, 9, 3, 1.0),
        (2, 4, 1, 1.0), (2, 8, 1, 1.0)]
    assert _sampled(c, runs, max_results=1) == [(0, 1000, 1010, 500.0), (1, 9, 3, 1.0), (2, 8, 1, 1.0)]
    assert _sampled(c, runs, max_results=7) == [
        (0, 0, 10, 0.0), (0, 5, 15, 2.5), (0, 10, 20, 5.0), (0, 31, 41, 15.5), (0, 100, 110, 50.0),
        (0, 250, 260, 125.0), (0, 1000, 1010, 500.0),
        (1, 0, 1, 0.0), (1, 3, 1, "-" + INF), (1, 3, 1, "NaN"), (1, 3, 2, 5.0), (1, 6, 1, 6.0), (1, 7, 5, "NaN"),
        (1, 9, 3, 1.0), (2, 4, 1, 1.0), (2, 8, 1, 1.0)]
    assert _sampled(c, runs, max_results=4, start_step=2, end_step=100) == [
        (0, 2, 12, 1.0), (0, 9, 19, 4.5), (0, 30, 40, 15.0), (0, 100, 110, 50.0),
        (1, 2, 1, 2.0), (1, 3, 1, 3.0), (1, 5, 1, 5.0), (1, 9, 3, 1.0), (2, 4, 1, 1.0), (2, 8, 1, 1.0)]
    # Fewer rows than max_results: every row, NaN in the value 0's place.
    assert _sampled(c, [crowded]) == [
        (0, 0, 1, 0.0), (0, 1, 1, 1.0), (0, 2, 1, 2.0), (0, 3, 1, "-" + INF), (0, 3, 1, -1.0), (0, 3, 1, 0.0),
        (0, 3, 1, "NaN"), (0, 3, 1, 3.0), (0, 3, 1, INF), (0, 3, 2, 5.0), (0, 4, 1, 4.0), (0, 5, 1, 5.0),
        (0, 6, 1, 6.0), (0, 7, 0, 2.0), (0, 7, 1, 7.0), (0, 7, 5, "NaN"), (0, 8, 1, 8.0), (0, 9, 1, 9.0),
        (0, 9, 3, 1.0)]
