"""What the ports of MLflow's REST tracking cases (``tests/tracking/test_rest_tracking.py``,
MLflow 3.x) share: the client fixture and plain-HTTP calls.

The fixture gives each test a fresh project of ours (as MLflow's suite gives each test a new
server) reached with the owner's token, on SQLite and PostgreSQL (the ``forge`` fixture's
parameters). With ``GLML_CASES_AGAINST_REFERENCE=1`` the same cases run against the pinned
reference ``mlflow server`` instead (one per module, SQLite, no token): that is how a failing
case is told apart as ours to fix or as newer than the pinned 3.17.2. Cases that lean on a
per-project difference (no ``Default`` experiment, server-chosen artifact locations) fail
there by design, and so do cases that reuse a name of another case of the module (one reference
server is shared): run the case in question alone (``-k``).
"""
from __future__ import annotations

import os

import pytest
import requests
from mlflow import MlflowClient

from tests.support.projects import new_project
from tests.support.reference import reference_server

AGAINST_REFERENCE = bool(os.environ.get("GLML_CASES_AGAINST_REFERENCE"))


def _forget_active_run() -> None:
    import mlflow

    while mlflow.active_run():
        mlflow.end_run()


if AGAINST_REFERENCE:
    @pytest.fixture(scope="module")
    def reference_url(tmp_path_factory):
        with reference_server(tmp_path_factory.mktemp("ref")) as url:
            yield url

    @pytest.fixture
    def mlflow_client(reference_url, monkeypatch):
        import mlflow

        monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", reference_url)
        mlflow.set_tracking_uri(reference_url)
        yield MlflowClient(reference_url)
        _forget_active_run()
else:
    @pytest.fixture
    def mlflow_client(forge, monkeypatch):
        import mlflow

        uri = forge.tracking_uri(new_project(forge))
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", forge.owner_token)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        yield MlflowClient(uri)
        _forget_active_run()


def call(client: MlflowClient, method: str, path: str, **kwargs) -> requests.Response:
    """``method`` on ``<tracking uri><path>`` with the caller's token (MLflow's cases send no
    credentials: its test server has no auth; each project of ours needs them)."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{client.tracking_uri}{path}", headers=headers, timeout=60, **kwargs)


def post(client: MlflowClient, path: str, payload) -> requests.Response:
    return call(client, "POST", path, json=payload)


def get(client: MlflowClient, path: str, params=None) -> requests.Response:
    return call(client, "GET", path, params=params)
