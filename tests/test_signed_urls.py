"""Signed multipart part URLs fail clearly: a URL signed by a host with another
SECRET_KEY (or altered) answers 403 saying the signature did not verify, the same for
every project; the example forge refuses to start for real without an explicit key."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from gl_ml_tracking import get_state
from tests.support import ROOT, child_env
from tests.support.liveserver import another_forge

SIGNATURE_MESSAGE = "signature did not verify"


@pytest.fixture(scope="module")
def other_host(forge, database_url, tmp_path_factory):
    """A second host on the same database whose SECRET_KEY differs."""
    with another_forge(database_url, str(tmp_path_factory.mktemp("other")), {"SECRET_KEY": "another-hosts-key"},
                       seed=False) as live:
        yield live


@pytest.fixture
def multipart_on(forge, other_host, monkeypatch):
    for app in (forge.app, other_host.app):
        monkeypatch.setattr(get_state(app).config, "multipart_uploads", True)


def _create(forge, mlflow_client):
    exp = mlflow_client.create_experiment(f"signed-{os.urandom(4).hex()}")
    run = mlflow_client.create_run(exp)
    prefix = run.info.artifact_uri.split(":/", 1)[1]
    answer = requests.post(f"{forge.tracking_uri(1)}/api/2.0/mlflow-artifacts/mpu/create/{prefix}",
                           json={"path": "a.bin", "num_parts": 1},
                           headers={"Authorization": f"Bearer {forge.owner_token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["credentials"][0]["url"]


def _refused(answer: requests.Response) -> None:
    assert answer.status_code == 403, (answer.status_code, answer.text)
    body = answer.json()
    assert body["error_code"] == "PERMISSION_DENIED" and SIGNATURE_MESSAGE in body["message"], body
    assert "SECRET_KEY" in body["message"]


def test_a_host_with_another_key_says_the_signature_did_not_verify(forge, other_host, multipart_on, mlflow_client):
    url = _create(forge, mlflow_client)
    _refused(requests.put(url.replace(forge.base_url, other_host.base_url), data=b"part", timeout=30))
    assert requests.put(url, data=b"part", timeout=30).status_code == 200  # the issuing key verifies


def test_an_altered_token_is_refused_alike_for_any_project(forge, multipart_on, mlflow_client):
    url = _create(forge, mlflow_client)
    altered = url.replace("upload_id=", "upload_id=x")
    _refused(requests.put(altered, data=b"part", timeout=30))
    # The same answer for a project that does not exist: existence does not leak.
    _refused(requests.put(altered.replace("/projects/1/", "/projects/987654/"), data=b"part", timeout=30))
    no_token = url.split("?", 1)[0]
    answer = requests.put(no_token, data=b"part", timeout=30)
    assert answer.status_code == 403 and "upload token" in answer.json()["message"]
    # A genuine token of project 1 sent to project 2 still looks like a missing project.
    assert requests.put(url.replace("/projects/1/", "/projects/2/"), data=b"x", timeout=30).status_code == 404


def _forge_command(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "flask"), "--app", "examples.host_app",
                           "ml-tracking", "db", "current"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_example_forge_refuses_to_start_without_a_secret_key(tmp_path):
    env = child_env(DATABASE_URL=f"sqlite:///{tmp_path / 'f.db'}")
    for name in ("SECRET_KEY", "FLASK_DEBUG"):
        env.pop(name, None)
    refused = _forge_command(env)
    assert refused.returncode != 0
    assert "MissingSecretKey" in refused.stderr and "SECRET_KEY is not set" in refused.stderr
    assert _forge_command({**env, "SECRET_KEY": "explicit-key"}).returncode == 0


def test_example_forge_debug_keeps_a_key_in_the_instance_folder(tmp_path, monkeypatch):
    import examples.forge as forge_pkg

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setattr(forge_pkg, "INSTANCE_PATH", tmp_path)
    first = forge_pkg.create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}"})
    again = forge_pkg.create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}"})
    assert first.debug and first.config["SECRET_KEY"] == again.config["SECRET_KEY"]
    assert (tmp_path / "secret_key").read_text().strip() == first.config["SECRET_KEY"]
    monkeypatch.delenv("FLASK_DEBUG")
    with pytest.raises(forge_pkg.MissingSecretKey):
        forge_pkg.create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}"})
