"""Page tokens and cursors are signed with the app's SECRET_KEY: one byte changed, or a
token signed by another app, is refused as INVALID_PARAMETER_VALUE (runs/search and
the packages API's keyset cursor, on SQLite and PostgreSQL)."""
from __future__ import annotations

import uuid

import requests
from flask import Flask

from gl_ml_tracking.search.tokens import decode_token, encode_token
from gl_ml_tracking.services.packages import PACKAGES_TOKEN_KIND
from gl_ml_tracking.services.search import RUNS_TOKEN_KIND


def _tampered(token: str) -> str:
    """``token`` with one byte of its signed payload changed."""
    i = len(token) // 4
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def _signed_elsewhere(forge, token: str, kind: str) -> str:
    """The same payload as ``token``, signed by an app with another SECRET_KEY."""
    with forge.app.app_context():
        payload = decode_token(token, kind)
    other = Flask("another-app")
    other.config["SECRET_KEY"] = "another-secret-key"
    with other.app_context():
        return encode_token(payload, kind)


def _assert_refused(response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE", response.text


def test_runs_search_refuses_tampered_and_foreign_tokens(forge, mlflow_client):
    experiment_id = mlflow_client.create_experiment(f"tokens-{uuid.uuid4().hex[:8]}")
    for _ in range(3):
        mlflow_client.create_run(experiment_id)
    url = forge.tracking_uri(1) + "/api/2.0/mlflow/runs/search"
    headers = {"Authorization": f"Bearer {forge.owner_token}"}
    body = {"experiment_ids": [experiment_id], "max_results": 1}
    token = requests.post(url, json=body, headers=headers).json()["next_page_token"]

    assert len(requests.post(url, json={**body, "page_token": token}, headers=headers).json()["runs"]) == 1
    _assert_refused(requests.post(url, json={**body, "page_token": _tampered(token)}, headers=headers))
    foreign = _signed_elsewhere(forge, token, RUNS_TOKEN_KIND)
    _assert_refused(requests.post(url, json={**body, "page_token": foreign}, headers=headers))


def test_packages_cursor_refuses_tampered_and_foreign_cursors(forge):
    name = f"cursor-{uuid.uuid4().hex[:8]}"
    base = f"{forge.base_url}/api/v4/projects/1/packages"
    headers = {"Authorization": f"Bearer {forge.owner_token}"}
    for version in ("1", "2", "3"):
        put = requests.put(f"{base}/generic/{name}/{version}/f.txt", data=b"x", headers=headers)
        assert put.status_code == 201, put.text
    query = {"package_name": name, "per_page": 1, "pagination": "keyset"}
    cursor = requests.get(base, params=query, headers=headers).headers["X-Next-Cursor"]

    second = requests.get(base, params={**query, "cursor": cursor}, headers=headers)
    assert second.status_code == 200 and [p["version"] for p in second.json()] == ["2"]
    _assert_refused(requests.get(base, params={**query, "cursor": _tampered(cursor)}, headers=headers))
    foreign = _signed_elsewhere(forge, cursor, PACKAGES_TOKEN_KIND)
    _assert_refused(requests.get(base, params={**query, "cursor": foreign}, headers=headers))
