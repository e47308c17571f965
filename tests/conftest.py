"""Shared fixtures: a live example forge on SQLite and on PostgreSQL, and an
MLflow client pointed at it through the environment, as a user would."""
from __future__ import annotations

import os

import pytest

# Fail fast instead of retrying for minutes: the client retries 5xx 7 times by default.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

from tests.support.livedb import fresh_database  # noqa: E402
from tests.support.liveserver import build_app, migrate_and_seed, serve  # noqa: E402
from tests.support.browser import browser, make_page, shot  # noqa: E402,F401 - the browser tests' fixtures

DB_KINDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module", params=DB_KINDS)
def db_kind(request):
    return request.param


@pytest.fixture(scope="module")
def database_url(db_kind, tmp_path_factory):
    with fresh_database(db_kind, str(tmp_path_factory.mktemp("db"))) as url:
        yield url


@pytest.fixture(scope="module")
def forge(database_url, tmp_path_factory):
    """A seeded example forge served on a free port (one per module and database)."""
    app = build_app(database_url, str(tmp_path_factory.mktemp("storage")))
    seeded = migrate_and_seed(app)
    live = serve(app)
    live.extra["seed"] = seeded
    yield live
    live.stop()
    with app.app_context():
        from gl_ml_tracking import get_state

        get_state(app).db.engine.dispose()


@pytest.fixture
def mlflow_client(forge, monkeypatch):
    """An ``MlflowClient`` configured only through the environment, as a data scientist does."""
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", forge.tracking_uri(1))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", forge.owner_token)
    mlflow.set_tracking_uri(forge.tracking_uri(1))
    yield MlflowClient()
    if mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="module")
def moto_endpoint():
    """A moto S3 server process on loopback for the module's S3 tests (boto3 pointed at
    fake credentials while it runs)."""
    from tests.support.s3_server import apply_s3_env, start_moto_server, stop_moto_server

    with pytest.MonkeyPatch.context() as mp:
        apply_s3_env(mp)
        endpoint, proc = start_moto_server()
        try:
            yield endpoint
        finally:
            stop_moto_server(proc)


@pytest.fixture(scope="module", autouse=True)
def fresh_fluent_state():
    """Each test module starts with MLflow's fluent API as a fresh process has it.
    ``mlflow.set_tracking_uri`` and ``mlflow.set_experiment`` keep their values in module
    globals (and the environment) for the rest of the process: a module whose live server
    had stopped stayed the tracking URI of the next module that configures the client only
    through the environment (connection refused), and its experiment made the next module's
    ``start_run(run_id=...)`` refuse a run of its own project ("active experiment ID does not
    match"). MLflow has no public way to forget the experiment; its own tests reset the same
    global."""
    yield
    import mlflow
    import mlflow.tracking.fluent as fluent

    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # also unsets MLFLOW_TRACKING_URI
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
