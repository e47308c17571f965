"""Differential: the same MLflow client calls against the reference ``mlflow server``
(3.17.2, SQLite, webhooks to private addresses allowed) and against our forge
(SQLite and PostgreSQL), both with a webhook to one real receiver: every event's
body is byte-identical (only the event's timestamp differs), with the same
headers, signed alike; the webhooks API answers the same JSON."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid

import pytest
import requests
from mlflow.tracking import MlflowClient

from tests.support.liveserver import build_app, migrate_and_seed, serve
from tests.support.procserver import free_port
from tests.support.webhook_receiver import Receiver
from tests.test_webhooks import WEBHOOK_CONFIG

BIN = os.path.dirname(sys.executable)
SECRET = "shared-secret"
EVENTS = ["registered_model.created", "model_version.created", "model_version_tag.set", "model_version_tag.deleted",
          "model_version_alias.created", "model_version_alias.deleted", "prompt.created", "prompt_tag.set",
          "prompt_tag.deleted"]
STAMP = re.compile(rb'"timestamp": "[0-9T:.+-]+"')


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    port = free_port()
    env = dict(os.environ, MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true", MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
               MLFLOW_WEBHOOK_CACHE_TTL="0")  # its per-event cache of webhooks would hide the ones made later
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(
        [os.path.join(BIN, "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp}/ref.db",
         "--artifacts-destination", str(tmp / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited:\n{(tmp / 'server.log').read_text()[-3000:]}")
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not start")
            time.sleep(0.2)  # polling a starting process: the condition is /health answering
        yield url
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


@pytest.fixture(scope="module")
def ours(database_url, tmp_path_factory):
    app = build_app(database_url, str(tmp_path_factory.mktemp("storage")), WEBHOOK_CONFIG)
    migrate_and_seed(app)
    live = serve(app)
    yield live
    from gl_ml_tracking.services import webhook_deliverer

    webhook_deliverer.stop(app)
    live.stop()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.stop()


def rest(base: str, method: str, path: str, body: dict, token: str) -> dict:
    r = requests.request(method, f"{base}/api/2.0/mlflow/{path}", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def registry_actions(client: MlflowClient, base: str, token: str, name: str, prompt: str) -> None:
    client.create_registered_model(name, tags={"team": "a", "n": "1"}, description="a model")
    client.create_model_version(name, "s3://bucket/path/model", tags={"k": "v"}, description="v1")
    client.create_model_version(name, "s3://bucket/path/model2")  # no description, no run: nulls
    client.set_model_version_tag(name, "1", "stage", "prod")
    client.delete_model_version_tag(name, "1", "stage")
    client.set_registered_model_alias(name, "champion", "2")
    client.delete_registered_model_alias(name, "champion")
    # Prompts as the client's prompt registry stores them (the client refuses them as models).
    tags = [{"key": "mlflow.prompt.is_prompt", "value": "true"}, {"key": "_mlflow_prompt_type", "value": "text"},
            {"key": "owner", "value": "me"}]
    rest(base, "POST", "registered-models/create", {"name": prompt, "tags": tags}, token)
    rest(base, "POST", "registered-models/set-tag", {"name": prompt, "key": "lang", "value": "en"}, token)
    rest(base, "DELETE", "registered-models/delete-tag", {"name": prompt, "key": "lang"}, token)


def test_event_bodies_and_headers_match_the_reference(reference, ours, receiver, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", ours.owner_token)
    run = uuid.uuid4().hex[:6]
    sides = {"ref": MlflowClient(reference, reference), "ours": MlflowClient(ours.tracking_uri(1), ours.tracking_uri(1))}
    bases = {"ref": reference, "ours": ours.tracking_uri(1)}
    made = []
    for side, client in sides.items():
        hook = client.create_webhook(name=f"diff-{side}", url=f"{receiver.base_url}/ok/{side}-{run}",
                                     events=EVENTS, secret=SECRET, description="compare")
        made.append((client, hook.webhook_id))
        raw = rest(bases[side], "GET", f"webhooks/{hook.webhook_id}", None, ours.owner_token)["webhook"]
        assert list(raw) == ["webhook_id", "name", "description", "url", "events", "status", "creation_timestamp",
                             "last_updated_timestamp"]
        assert [e["entity"] for e in raw["events"]] == sorted(e["entity"] for e in raw["events"])
        registry_actions(client, bases[side], ours.owner_token, f"cmp-model-{run}", f"cmp-prompt-{run}")
    bodies = {}
    for side in sides:
        got = receiver.wait_count(f"/ok/{side}-{run}", 10, timeout=60)
        assert all(r.signature_ok(SECRET) for r in got), side
        bodies[side] = {(r.event, r.json["data"].get("version")): r for r in got}
    assert set(bodies["ref"]) == set(bodies["ours"]) and len(bodies["ours"]) == 10
    for key, ref in bodies["ref"].items():
        mine = bodies["ours"][key]
        assert STAMP.sub(b"<t>", mine.body) == STAMP.sub(b"<t>", ref.body), key
        assert STAMP.search(mine.body) and STAMP.search(ref.body)
        same = lambda h: {k: v for k, v in h.items() if k not in ("Host", "X-MLflow-Delivery-Id", "X-MLflow-Timestamp",  # noqa: E731
                                                                  "X-MLflow-Signature", "Content-Length")}
        assert same(mine.headers) == same(ref.headers), key
        assert sorted(mine.headers) == sorted(ref.headers), key
    for client, webhook_id in made:
        client.delete_webhook(webhook_id)


PROMPT_EVENTS = ["prompt_version.created", "prompt_version_tag.set", "prompt_version_tag.deleted",
                 "prompt_alias.created", "prompt_alias.deleted"]


def test_prompt_version_events_match_the_reference(reference, ours, receiver):
    """What ``mlflow.genai.register_prompt`` and its aliases and tags cause. The client
    sends prompt versions with the placeholder source ``dummy-source``."""
    run = uuid.uuid4().hex[:6]
    bases = {"ref": reference, "ours": ours.tracking_uri(1)}
    token = ours.owner_token
    events = [{"entity": e.split(".")[0].upper(), "action": e.split(".")[1].upper()} for e in PROMPT_EVENTS]
    name = f"cmp-prompt-v-{run}"
    is_prompt = [{"key": "mlflow.prompt.is_prompt", "value": "true"}, {"key": "_mlflow_prompt_type", "value": "text"}]
    made = []
    for side, base in bases.items():
        made.append((base, rest(base, "POST", "webhooks", {"name": f"pv-{side}", "url": f"{receiver.base_url}/ok/pv-{side}-{run}",
                                        "events": events, "secret": SECRET}, token)["webhook"]["webhook_id"]))
        rest(base, "POST", "registered-models/create", {"name": name, "tags": is_prompt}, token)
        version = requests.post(f"{base}/api/2.0/mlflow/model-versions/create", timeout=30,
                                headers={"Authorization": f"Bearer {token}"},
                                json={"name": name, "source": "dummy-source", "description": "d",
                                      "tags": is_prompt + [{"key": "mlflow.prompt.text", "value": "Hello {{who}}"},
                                                           {"key": "x", "value": "y"}]})
        if side == "ours" and version.status_code == 400 and "dummy-source" in version.text:
            for where, webhook_id in made:
                rest(where, "DELETE", f"webhooks/{webhook_id}", None, token)
            pytest.skip("prompt versions with the client's placeholder source come with the prompt registry")
        assert version.status_code == 200, version.text
        rest(base, "POST", "model-versions/set-tag", {"name": name, "version": "1", "key": "k", "value": "v"}, token)
        rest(base, "DELETE", "model-versions/delete-tag", {"name": name, "version": "1", "key": "k"}, token)
        rest(base, "POST", "registered-models/alias", {"name": name, "alias": "prod", "version": "1"}, token)
        rest(base, "DELETE", "registered-models/alias", {"name": name, "alias": "prod"}, token)
    got = {side: {r.event: r for r in receiver.wait_count(f"/ok/pv-{side}-{run}", 5, timeout=60)} for side in bases}
    assert sorted(got["ours"]) == sorted(got["ref"]) == sorted(PROMPT_EVENTS)
    for event, ref in got["ref"].items():
        assert STAMP.sub(b"<t>", got["ours"][event].body) == STAMP.sub(b"<t>", ref.body), event
    for where, webhook_id in made:
        rest(where, "DELETE", f"webhooks/{webhook_id}", None, token)
