"""Nothing in the extension assumes the example forge: a host of another shape
mounts it with a few lines of glue and the MLflow client works against it."""
from __future__ import annotations

import inspect

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

from gl_ml_tracking import migrate
from tests import second_host
from tests.support.livedb import fresh_database
from tests.support.liveserver import serve


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def lab(request, tmp_path_factory):
    with fresh_database(request.param, str(tmp_path_factory.mktemp("labdb"))) as url:
        app = second_host.create_app(url, str(tmp_path_factory.mktemp("labstore")))
        with app.app_context():
            second_host.db.create_all()
            migrate.upgrade()
            second_host.db.session.add_all([
                second_host.Member(id=1, username="ada", api_key="key-ada"),
                second_host.Member(id=2, username="bob", api_key="key-bob"),
                second_host.Workspace(id=10, full_path="physics/particles", name="Particles", owner_id=1),
            ])
            second_host.db.session.commit()
        live = serve(app)
        yield live
        live.stop()
        with app.app_context():
            second_host.db.engine.dispose()


def test_glue_is_small():
    source = inspect.getsource(second_host.create_app)
    glue = source.split("# --- glue")[1].split("# --- end of glue")[0]
    lines = [l for l in glue.splitlines()[1:] if l.strip()]
    assert len(lines) < 40, len(lines)


def test_mlflow_client_against_second_host(lab, monkeypatch):
    uri = f"{lab.base_url}/lab/physics%2Fparticles/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "key-ada")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp_id = client.create_experiment("collider")
    run = client.create_run(exp_id)
    client.log_metric(run.info.run_id, "energy", 13.6)
    assert client.get_run(run.info.run_id).data.metrics == {"energy": 13.6}
    # by numeric id too; and bob (not the owner) sees nothing
    r = requests.post(f"{lab.base_url}/lab/10/mlflow/api/2.0/mlflow/experiments/search", json={},
                      headers={"Authorization": "Bearer key-ada"})
    assert [e["name"] for e in r.json()["experiments"]] == ["collider"]
    r = requests.post(f"{lab.base_url}/lab/10/mlflow/api/2.0/mlflow/experiments/search", json={},
                      headers={"Authorization": "Bearer key-bob"})
    assert r.status_code == 404
