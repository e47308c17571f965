"""Webhook deliveries under real concurrency: gunicorn with 3 workers (each with its
in-process deliverer) plus a ``flask ml-tracking webhooks deliver --loop`` process,
all claiming from one outbox, while 8 client threads change the registry at once.
Held: every event reaches every subscribed webhook exactly once (no delivery sent
twice, none lost), each signed, on PostgreSQL and SQLite."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.support import ROOT
from tests.support.livedb import fresh_database
from tests.support.procserver import BIN, OWNER_TOKEN, ServerProcess, prepare_database, server_env
from tests.support.webhook_receiver import Receiver

THREADS = 8
SECRET = "concurrency-secret"
EVENTS = [{"entity": "REGISTERED_MODEL", "action": "CREATED"}, {"entity": "MODEL_VERSION", "action": "CREATED"},
          {"entity": "MODEL_VERSION_TAG", "action": "SET"}]
SETTINGS = {
    "GL_ML_TRACKING_WEBHOOKS_ALLOW_LOCAL_NETWORK": "true",
    "GL_ML_TRACKING_WEBHOOKS_ALLOWED_SCHEMES": '["http", "https"]',
    "GL_ML_TRACKING_WEBHOOKS_POLL_INTERVAL": "0.5",
}


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def setup(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("webhooks-concurrency")
    receiver = Receiver()
    with fresh_database(request.param, str(tmp)) as url:
        env = server_env(url, str(tmp / "storage"), SETTINGS)
        prepare_database(env)
        server = ServerProcess(env, workers=3, threads=4, log_path=str(tmp / "gunicorn.log")).start()
        log = open(tmp / "deliver.log", "wb")
        cli = subprocess.Popen([os.path.join(BIN, "flask"), "--app", "examples.host_app", "ml-tracking", "webhooks",
                                "deliver", "--loop", "--interval", "0.2"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield server, receiver, url
        finally:
            cli.terminate()
            cli.wait(timeout=30)
            log.close()
            server.stop()
            receiver.stop()


def api(server, method, path, body=None):
    r = requests.request(method, server.tracking_uri(1) + "/api/2.0/mlflow/" + path, json=body, timeout=60,
                         headers={"Authorization": f"Bearer {OWNER_TOKEN}"})
    assert r.status_code == 200, r.text
    return r.json()


def outbox(url: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT status, attempts, delivery_id FROM glml_webhook_deliveries")).all()
    finally:
        engine.dispose()


def test_each_event_delivered_exactly_once(setup):
    server, receiver, url = setup
    paths = [f"/ok/a-{uuid.uuid4().hex[:6]}", f"/ok/b-{uuid.uuid4().hex[:6]}"]
    for i, path in enumerate(paths):
        api(server, "POST", "webhooks", {"name": f"conc-{i}", "url": receiver.base_url + path, "events": EVENTS,
                                         "secret": SECRET})

    def work(n: int) -> None:
        name = f"conc-model-{n}-{uuid.uuid4().hex[:4]}"
        api(server, "POST", "registered-models/create", {"name": name})
        api(server, "POST", "model-versions/create", {"name": name, "source": "s3://b/m"})
        api(server, "POST", "model-versions/set-tag", {"name": name, "version": "1", "key": "k", "value": str(n)})

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))
    expected = THREADS * len(EVENTS)
    for path in paths:
        receiver.wait_count(path, expected, timeout=90)
    # Every outbox row is final after one attempt: nobody will send any of them again.
    deadline, tick = time.monotonic() + 60, threading.Event()
    while True:
        rows = outbox(url)
        if len(rows) == 2 * expected and all(r[0] == "SUCCEEDED" for r in rows):
            break
        assert time.monotonic() < deadline, collections.Counter(r[0] for r in rows)
        tick.wait(0.2)
    assert all(r[1] == 1 for r in rows)
    for path in paths:
        got = receiver.on(path)
        assert len(got) == expected, f"{path}: {len(got)} deliveries for {expected} events"
        assert len({r.headers["X-MLflow-Delivery-Id"] for r in got}) == expected
        assert all(r.signature_ok(SECRET) for r in got)
        events = collections.Counter((r.event, r.json["data"]["name"]) for r in got)
        assert len(events) == expected and set(events.values()) == {1}
    print(f"\nwebhooks: {2 * expected} deliveries of {expected} events to 2 webhooks, each exactly once "
          f"(3 gunicorn workers + 1 CLI deliverer)")
    assert json.loads(got[0].body)["entity"] in ("registered_model", "model_version", "model_version_tag")
