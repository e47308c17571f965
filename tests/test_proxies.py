"""Behind a TLS load balancer: with GL_ML_TRACKING_TRUSTED_PROXIES the absolute URLs the
extension hands out (multipart part URLs, the OpenAPI server, the tracking URI on the
pages, the packages API's Link headers) use the forwarded scheme, host and prefix;
without it (the default) forwarded headers are ignored."""
from __future__ import annotations

import pytest
import requests

from gl_ml_tracking import get_state
from gl_ml_tracking.http.proxies import trusted_proxies
from tests.support.liveserver import another_forge

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "spoofed.example, ml.example.org",
             "X-Forwarded-Port": "443", "X-Forwarded-For": "10.0.0.7"}


@pytest.fixture(scope="module")
def proxied(database_url, tmp_path_factory):
    """The forge behind one trusted proxy (same database as ``forge``)."""
    with another_forge(database_url, str(tmp_path_factory.mktemp("proxied")),
                       {"GL_ML_TRACKING_TRUSTED_PROXIES": 1, "GL_ML_TRACKING_MULTIPART_UPLOADS": True}) as live:
        yield live


def _part_url(live, headers):
    owner = {"Authorization": f"Bearer {live.owner_token}", **headers}
    api = live.tracking_uri(1) + "/api/2.0/mlflow"
    exp = requests.post(f"{api}/experiments/create", json={"name": f"px-{id(headers)}-{live.base_url[-5:]}"},
                        headers=owner, timeout=30)
    exp_id = exp.json()["experiment_id"]
    run = requests.post(f"{api}/runs/create", json={"experiment_id": exp_id}, headers=owner, timeout=30).json()
    prefix = run["run"]["info"]["artifact_uri"].split(":/", 1)[1]
    created = requests.post(f"{live.tracking_uri(1)}/api/2.0/mlflow-artifacts/mpu/create/{prefix}",
                            json={"path": "a.bin", "num_parts": 1}, headers=owner, timeout=30)
    assert created.status_code == 200, created.text
    return created.json()["credentials"][0]["url"]


def test_trusted_proxy_headers_make_every_absolute_url(proxied):
    # One proxy trusted: its own values (the last ones) count, not what a client put before.
    url = _part_url(proxied, FORWARDED)
    assert url.startswith("https://ml.example.org/api/v4/projects/1/ml/mlflow/api/2.0/mlflow-artifacts/mpu/part/1?")
    owner = {"Authorization": f"Bearer {proxied.owner_token}", **FORWARDED, "X-Forwarded-Prefix": "/forge"}
    doc = requests.get(proxied.tracking_uri(1) + "/api/2.0/mlflow/openapi.json", headers=owner, timeout=30).json()
    assert doc["servers"][0]["url"] == "https://ml.example.org/forge/api/v4/projects/1/ml/mlflow"
    page = requests.get(f"{proxied.base_url}/demo/mnist/-/ml/experiments", headers=owner, timeout=30)
    assert page.status_code == 200 and "https://ml.example.org/forge/api/v4/projects/1/ml/mlflow" in page.text
    packages = requests.get(f"{proxied.base_url}/api/v4/projects/1/packages", headers=owner,
                            params={"per_page": 1}, timeout=30)
    assert packages.status_code == 200
    links = packages.headers.get("Link", "")
    assert links and all(part.strip().startswith("<https://ml.example.org/forge/") for part in links.split(","))


def test_forwarded_headers_are_ignored_by_default(forge):
    get_state(forge.app).config.multipart_uploads = True
    try:
        url = _part_url(forge, FORWARDED)
    finally:
        get_state(forge.app).config.multipart_uploads = "auto"
    assert url.startswith(forge.base_url + "/api/v4/projects/1/ml/mlflow/")


@pytest.mark.parametrize("bad", [-1, "two", 1.5, True])
def test_the_setting_must_be_a_count(bad):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        trusted_proxies(bad)
    assert trusted_proxies("2") == 2
