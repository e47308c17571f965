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
from tests.support.mlflow_state import forget_fluent_state  # noqa: E402

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
    """Each test module starts with MLflow's fluent API as a fresh process has it (see
    tests/support/mlflow_state.py); live servers also forget it when they stop."""
    yield
    forget_fluent_state()
