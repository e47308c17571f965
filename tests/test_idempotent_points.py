"""A resent metric point is stored once, as MLflow stores it (its primary key is the
point): ``log_metric`` and ``log_batch`` through the real client and raw REST, NaN
included, on SQLite and PostgreSQL; migration 0003 removes duplicates stored before."""
from __future__ import annotations

import math
import uuid

import pytest
import requests
import sqlalchemy as sa
from mlflow.entities import Metric

from tests.support.livedb import fresh_database
from tests.support.liveserver import OWNER_TOKEN, build_app, migrate_and_seed


def _run(client):
    exp = client.create_experiment(f"idem-{uuid.uuid4().hex[:8]}")
    return client.create_run(exp).info.run_id


def _history(client, run_id, key):
    return sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))


def test_resent_log_metric_is_stored_once(mlflow_client):
    run_id = _run(mlflow_client)
    for _ in range(3):
        mlflow_client.log_metric(run_id, "loss", 0.5, timestamp=1000, step=1)
    mlflow_client.log_metric(run_id, "loss", 0.25, timestamp=1000, step=1)  # another value: another point
    assert _history(mlflow_client, run_id, "loss") == [(1, 1000, 0.25), (1, 1000, 0.5)]
    assert mlflow_client.get_run(run_id).data.metrics["loss"] == 0.5


def test_resent_log_batch_is_stored_once(mlflow_client):
    run_id = _run(mlflow_client)
    points = [Metric("acc", 0.1 * i, 2000 + i, i) for i in range(120)]  # big enough for PostgreSQL's array path
    small = [Metric("lr", 0.01, 5, 0), Metric("lr", 0.02, 6, 1)]
    for _ in range(2):
        mlflow_client.log_batch(run_id, metrics=points + small)
    assert len(_history(mlflow_client, run_id, "acc")) == 120
    assert _history(mlflow_client, run_id, "lr") == [(0, 5, 0.01), (1, 6, 0.02)]
    latest = mlflow_client.get_run(run_id).data.metrics
    assert latest["acc"] == pytest.approx(11.9) and latest["lr"] == 0.02


def test_resent_raw_rest_points_and_nan(forge, mlflow_client):
    run_id = _run(mlflow_client)
    api = forge.tracking_uri(1) + "/api/2.0/mlflow"
    headers = {"Authorization": f"Bearer {forge.owner_token}"}
    one = {"run_id": run_id, "key": "m", "value": "NaN", "timestamp": 7, "step": 3}
    for _ in range(2):
        answer = requests.post(f"{api}/runs/log-metric", json=one, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
    zero = {"run_id": run_id, "key": "m", "value": 0.0, "timestamp": 7, "step": 3}  # 0 is not NaN
    assert requests.post(f"{api}/runs/log-metric", json=zero, headers=headers, timeout=30).status_code == 200
    batch = {"run_id": run_id, "metrics": [{"key": "b", "value": v, "timestamp": 9, "step": 0}
                                           for v in (1.0, 1.0, "Infinity", "Infinity", "NaN", "NaN")]}
    for _ in range(2):
        answer = requests.post(f"{api}/runs/log-batch", json=batch, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
    history = mlflow_client.get_metric_history(run_id, "m")
    assert sorted(str(m.value) for m in history) == ["0.0", "nan"]
    values = [m.value for m in mlflow_client.get_metric_history(run_id, "b")]
    assert len(values) == 3 and sum(math.isnan(x) for x in values) == 1 and math.inf in values and 1.0 in values


def test_migration_removes_stored_duplicates(db_kind, tmp_path):
    with fresh_database(db_kind, str(tmp_path)) as url:
        app = build_app(url, str(tmp_path / "storage"))
        migrate_and_seed(app)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {OWNER_TOKEN}"}
        api = "/api/v4/projects/1/ml/mlflow/api/2.0/mlflow"
        created = client.post(f"{api}/runs/create", json={"experiment_id": "0"}, headers=headers)
        run_id = created.get_json()["run"]["info"]["run_id"]
        for value in (1.5, "NaN", 2.5):
            answer = client.post(f"{api}/runs/log-metric", headers=headers,
                                 json={"run_id": run_id, "key": "k", "value": value, "timestamp": 1, "step": 1})
            assert answer.status_code == 200
        from gl_ml_tracking import get_state, migrate

        with app.app_context():
            engine = get_state(app).db.engine
            migrate.downgrade("0002")  # as stored before: duplicates were possible
            copy = ("INSERT INTO glml_metrics (run_id, key, value, is_nan, timestamp, step) "
                    "SELECT run_id, key, value, is_nan, timestamp, step FROM glml_metrics")
            with engine.begin() as conn:
                conn.execute(sa.text(copy))
                conn.execute(sa.text(copy))
                assert conn.execute(sa.text("SELECT count(*) FROM glml_metrics")).scalar() == 12  # each point four times
            migrate.upgrade()
            with engine.connect() as conn:
                kept = conn.execute(sa.text("SELECT value, is_nan FROM glml_metrics ORDER BY id")).all()
            with pytest.raises(sa.exc.IntegrityError, match="ux_glml_metrics_point|UNIQUE"):
                with engine.begin() as conn:  # the index now refuses a copy
                    conn.execute(sa.text(copy))
            engine.dispose()
        assert [(row[0], bool(row[1])) for row in kept] == [(1.5, False), (None, True), (2.5, False)]
        history = client.get(f"{api}/metrics/get-history", headers=headers, query_string={"run_id": run_id, "metric_key": "k"})
        assert len(history.get_json()["metrics"]) == 3
