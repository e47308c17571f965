"""Webhooks end to end, on SQLite and PostgreSQL: the MLflow client manages them,
registry changes made through the client are delivered by the in-process
deliverer to a real HTTP receiver on loopback (allowed by
``GL_ML_TRACKING_WEBHOOKS_ALLOW_LOCAL_NETWORK``), signed as MLflow signs, each
once; failures are retried, redirects are not followed, the local network is
refused unless allowed, and projects do not see each other's webhooks."""
from __future__ import annotations

import contextlib
import json
import uuid

import pytest
import requests
from mlflow.entities.webhook import WebhookEvent, WebhookStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.support.liveserver import build_app, migrate_and_seed, serve
from tests.support.webhook_receiver import Receiver

SECRET = "s3cr3t-for-tests"
WEBHOOK_CONFIG = {
    "GL_ML_TRACKING_WEBHOOKS_ALLOW_LOCAL_NETWORK": True,
    "GL_ML_TRACKING_WEBHOOKS_ALLOWED_SCHEMES": ("http", "https"),
    "GL_ML_TRACKING_WEBHOOKS_BACKOFF": 0.2,
    "GL_ML_TRACKING_WEBHOOKS_BACKOFF_MAX": 0.5,
    "GL_ML_TRACKING_WEBHOOKS_TIMEOUT": 1,
    "GL_ML_TRACKING_WEBHOOKS_MAX_ATTEMPTS": 3,
    "GL_ML_TRACKING_WEBHOOKS_POLL_INTERVAL": 0.5,
}
MODEL_EVENTS = ["registered_model.created", "model_version.created", "model_version_tag.set",
                "model_version_tag.deleted", "model_version_alias.created", "model_version_alias.deleted"]


@pytest.fixture(scope="module")
def hook_forge(database_url, tmp_path_factory):
    app = build_app(database_url, str(tmp_path_factory.mktemp("storage")), WEBHOOK_CONFIG)
    migrate_and_seed(app)
    live = serve(app)
    yield live
    from gl_ml_tracking import get_state
    from gl_ml_tracking.services import webhook_deliverer

    webhook_deliverer.stop(app)
    live.stop()
    with app.app_context():
        get_state(app).db.engine.dispose()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def client(hook_forge, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", hook_forge.owner_token)
    return MlflowClient(tracking_uri=hook_forge.tracking_uri(1), registry_uri=hook_forge.tracking_uri(1))


@pytest.fixture
def hooks(client):
    """Creates webhooks through the client and deletes them after the test."""
    made = []

    def make(path, events, client_=None, **kwargs):
        c = client_ or client
        hook = c.create_webhook(name=f"hook-{uuid.uuid4().hex[:8]}", url=path, events=events, **kwargs)
        made.append((c, hook.webhook_id))
        return hook

    yield make
    for c, webhook_id in made:
        try:
            c.delete_webhook(webhook_id)
        except MlflowException:
            pass


def api(forge, method, path, project=1, **kwargs):
    headers = {"Authorization": f"Bearer {forge.owner_token}"}
    return requests.request(method, forge.tracking_uri(project) + "/api/2.0/mlflow/" + path, headers=headers,
                            timeout=30, **kwargs)


def deliveries(forge, webhook_id):
    """The outbox rows of one webhook, oldest first, with their attempts."""
    from sqlalchemy import select

    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt

    with forge.app.app_context():
        session = get_state().session
        rows = session.execute(select(WebhookDelivery).join(Webhook, Webhook.id == WebhookDelivery.webhook_pk)
                               .where(Webhook.webhook_id == webhook_id).order_by(WebhookDelivery.id)).scalars().all()
        out = []
        for row in rows:
            attempts = session.execute(select(WebhookDeliveryAttempt).where(WebhookDeliveryAttempt.delivery_pk == row.id)
                                       .order_by(WebhookDeliveryAttempt.attempt)).scalars().all()
            out.append((row.status, row.attempts, row.delivery_id, [(a.status_code, a.error) for a in attempts]))
        session.rollback()
        return out


def test_client_manages_webhooks(client, hooks, receiver, hook_forge):
    hook = hooks(receiver.base_url + "/ok/crud", ["registered_model.created", "model_version.created"],
                 description="first", secret=SECRET)
    assert hook.status == WebhookStatus.ACTIVE and hook.description == "first"
    # Sorted by entity and action, as MLflow answers.
    assert [str(e) for e in hook.events] == ["model_version.created", "registered_model.created"]
    got = client.get_webhook(hook.webhook_id)
    assert (got.name, got.url, got.creation_timestamp) == (hook.name, hook.url, hook.creation_timestamp)
    raw = api(hook_forge, "GET", f"webhooks/{hook.webhook_id}").json()
    assert SECRET not in json.dumps(raw) and "secret" not in raw["webhook"]
    assert raw["webhook"]["events"][1] == {"entity": "REGISTERED_MODEL", "action": "CREATED"}
    assert list(raw["webhook"]) == ["webhook_id", "name", "description", "url", "events", "status",
                                    "creation_timestamp", "last_updated_timestamp"]

    updated = client.update_webhook(hook.webhook_id, name="renamed-hook", status=WebhookStatus.DISABLED,
                                    events=[WebhookEvent.from_str("model_version_tag.set")])
    assert updated.name == "renamed-hook" and updated.status == WebhookStatus.DISABLED
    assert [str(e) for e in updated.events] == ["model_version_tag.set"]
    assert updated.url == hook.url and updated.description == "first"
    assert updated.last_updated_timestamp >= hook.last_updated_timestamp

    second = hooks(receiver.base_url + "/ok/crud2", ["prompt.created"])
    third = hooks(receiver.base_url + "/ok/crud3", ["prompt_alias.deleted"])
    first_page = client.list_webhooks(max_results=2)
    assert [w.webhook_id for w in first_page] == [third.webhook_id, second.webhook_id] and first_page.token
    rest = client.list_webhooks(max_results=2, page_token=first_page.token)
    assert hook.webhook_id in [w.webhook_id for w in rest]

    client.delete_webhook(second.webhook_id)
    with pytest.raises(MlflowException) as err:
        client.get_webhook(second.webhook_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert second.webhook_id not in [w.webhook_id for w in client.list_webhooks()]


def test_registry_events_delivered_once_and_signed(client, hooks, receiver, hook_forge):
    path = "/ok/" + uuid.uuid4().hex[:8]
    hook = hooks(receiver.base_url + path, MODEL_EVENTS, secret=SECRET)
    name = "wh-model-" + uuid.uuid4().hex[:6]
    client.create_registered_model(name, tags={"team": "a"}, description="d")
    client.create_model_version(name, "s3://bucket/model", tags={"k": "v"})
    client.set_model_version_tag(name, "1", "stage", "prod")
    client.delete_model_version_tag(name, "1", "stage")
    client.set_registered_model_alias(name, "champion", "1")
    client.delete_registered_model_alias(name, "champion")
    client.set_registered_model_tag(name, "no-event", "x")  # MLflow sends nothing for a model's tags

    got = receiver.wait_count(path, 6)
    assert [r.event for r in got] == MODEL_EVENTS
    assert all(r.signature_ok(SECRET) for r in got)
    assert not any(r.signature_ok("wrong-secret") for r in got)
    assert len({r.headers["X-MLflow-Delivery-Id"] for r in got}) == 6
    data = [r.json["data"] for r in got]
    assert data[0] == {"name": name, "tags": {"team": "a"}, "description": "d"}
    assert data[1] == {"name": name, "version": "1", "source": "s3://bucket/model", "run_id": None,
                       "tags": {"k": "v"}, "description": None}
    assert data[2] == {"name": name, "version": "1", "key": "stage", "value": "prod"}
    assert data[3] == {"name": name, "version": "1", "key": "stage"}
    assert data[4] == {"name": name, "alias": "champion", "version": "1"}
    assert data[5] == {"name": name, "alias": "champion"}
    assert list(got[0].json) == ["entity", "action", "timestamp", "data"]
    # Each delivered exactly once: the outbox says so, and nothing more arrives.
    rows = _wait_rows(hook_forge, hook.webhook_id, lambda rows: all(r[0] == "SUCCEEDED" for r in rows))
    assert [(s, n) for s, n, _, _ in rows] == [("SUCCEEDED", 1)] * 6
    assert len(receiver.on(path)) == 6


def test_failing_receiver_is_retried_until_it_recovers(client, hooks, receiver, hook_forge):
    path = f"/fail2/{uuid.uuid4().hex[:8]}"
    hook = hooks(receiver.base_url + path, ["registered_model.created"], secret=SECRET)
    client.create_registered_model("wh-retry-" + uuid.uuid4().hex[:6])
    got = receiver.wait_count(path, 3)
    assert len({r.headers["X-MLflow-Delivery-Id"] for r in got}) == 1  # the same delivery, again
    assert len({r.body for r in got}) == 1 and all(r.signature_ok(SECRET) for r in got)
    rows = _wait_rows(hook_forge, hook.webhook_id, lambda rows: rows and rows[0][0] == "SUCCEEDED")
    status, attempts, _, tries = rows[0]
    assert (status, attempts) == ("SUCCEEDED", 3)
    assert [code for code, _ in tries] == [500, 500, 200]


def test_silent_receiver_times_out_and_fails_after_the_last_attempt(client, hooks, receiver, hook_forge):
    path = f"/silent/{uuid.uuid4().hex[:8]}"
    hook = hooks(receiver.base_url + path, ["registered_model.created"])
    client.create_registered_model("wh-silent-" + uuid.uuid4().hex[:6])
    rows = _wait_rows(hook_forge, hook.webhook_id, lambda rows: rows and rows[0][0] == "FAILED", timeout=60)
    status, attempts, _, tries = rows[0]
    assert attempts == 3 and all(code is None and "timed out" in error for code, error in tries)
    assert len(receiver.on(path)) == 3


def test_redirects_are_not_followed(client, hooks, receiver, hook_forge):
    path = f"/redirect/{uuid.uuid4().hex[:8]}"
    hook = hooks(receiver.base_url + path, ["registered_model.created"])
    before = len(receiver.on("/ok/redirected"))
    client.create_registered_model("wh-redirect-" + uuid.uuid4().hex[:6])
    rows = _wait_rows(hook_forge, hook.webhook_id, lambda rows: rows and rows[0][0] == "FAILED")
    assert rows[0][1] == 1 and rows[0][3] == [(302, None)]
    assert len(receiver.on("/ok/redirected")) == before


def test_disabled_webhook_gets_nothing(client, hooks, receiver, hook_forge):
    path = "/ok/" + uuid.uuid4().hex[:8]
    hook = hooks(receiver.base_url + path, ["registered_model.created"], status=WebhookStatus.DISABLED)
    live = hooks(receiver.base_url + path + "-live", ["registered_model.created"])
    client.create_registered_model("wh-disabled-" + uuid.uuid4().hex[:6])
    receiver.wait_count(path + "-live", 1)
    assert deliveries(hook_forge, hook.webhook_id) == [] and receiver.on(path) == []
    _wait_rows(hook_forge, live.webhook_id, lambda rows: rows and rows[0][0] == "SUCCEEDED")


def test_test_webhook_sends_mlflows_example(client, hooks, receiver):
    path = "/ok/" + uuid.uuid4().hex[:8]
    hook = hooks(receiver.base_url + path, ["model_version_alias.created", "registered_model.created"], secret=SECRET)
    result = client.test_webhook(hook.webhook_id)
    assert result.success and result.response_status == 200 and result.response_body == "thanks"
    result = client.test_webhook(hook.webhook_id, event=WebhookEvent.from_str("prompt_version.created"))
    assert result.success
    first, second = receiver.wait_count(path, 2)
    assert first.json["data"] == {"name": "example_model", "alias": "example_alias", "version": "1"}
    assert second.json["data"]["template"] == "Hello {{name}}!" and second.signature_ok(SECRET)
    failing = hooks(receiver.base_url + "/fail99/" + uuid.uuid4().hex[:6], ["registered_model.created"])
    result = client.test_webhook(failing.webhook_id)
    assert not result.success and result.response_status == 500


def test_projects_do_not_share_webhooks(client, hooks, receiver, hook_forge, monkeypatch):
    path = "/ok/" + uuid.uuid4().hex[:8]
    hook = hooks(receiver.base_url + path, ["registered_model.created"])
    other = MlflowClient(tracking_uri=hook_forge.tracking_uri(2), registry_uri=hook_forge.tracking_uri(2))
    with pytest.raises(MlflowException) as err:
        other.get_webhook(hook.webhook_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    for method, suffix, body in (("PATCH", "", {"name": "stolen"}), ("DELETE", "", None), ("POST", "/test", {})):
        r = api(hook_forge, method, f"webhooks/{hook.webhook_id}{suffix}", project=2, json=body)
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert hook.webhook_id not in [w.webhook_id for w in other.list_webhooks()]
    # A change in project 2 is not delivered to project 1's webhook; one in project 1 is.
    other.create_registered_model("wh-other-" + uuid.uuid4().hex[:6])
    mine = "wh-mine-" + uuid.uuid4().hex[:6]
    client.create_registered_model(mine)
    got = receiver.wait_count(path, 1)
    assert [r.json["data"]["name"] for r in got] == [mine]
    assert client.get_webhook(hook.webhook_id).name == hook.name


@pytest.mark.parametrize("body,needle", [
    ({"url": "http://x.example/h", "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]},
     "Missing value for required parameter 'name'"),
    ({"name": "Bad Name", "url": "http://x.example/h", "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]},
     "Webhook name 'Bad Name' is invalid"),
    ({"name": "ok-name", "url": "ftp://x.example/h", "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]},
     "Invalid webhook URL scheme: 'ftp'"),
    ({"name": "ok-name", "url": "http://x.example/h", "events": []}, "Webhook events must be a non-empty list"),
    ({"name": "ok-name", "url": "http://x.example/h", "events": [{"entity": "REGISTERED_MODEL", "action": "SET"}]},
     "Invalid action 'set' for entity 'registered_model'"),
    ({"name": "ok-name", "url": "http://x.example/h", "events": [{"entity": "NOPE", "action": "SET"}]}, "events"),
    ({"name": "ok-name", "url": "http://x.example/h", "events": "x"}, "events"),
    ({"name": "ok-name", "url": "", "events": [{"entity": "PROMPT", "action": "CREATED"}]},
     "Missing value for required parameter 'url'"),
    ({"name": 5, "url": "http://x.example/h", "events": [{"entity": "PROMPT", "action": "CREATED"}]}, "name"),
])
def test_bad_input_is_mlflows_error_json(hook_forge, body, needle):
    r = api(hook_forge, "POST", "webhooks", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and needle in r.json()["message"], r.text


def test_bad_ids_and_pages(hook_forge):
    r = api(hook_forge, "GET", "webhooks/no-such-id")
    assert r.status_code == 404 and r.json() == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                                                  "message": "Webhook with ID no-such-id not found."}
    for query in ({"max_results": 0 - 1}, {"max_results": 5000}, {"page_token": "forged"}, {"max_results": "x"}):
        r = api(hook_forge, "GET", "webhooks", params=query)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (query, r.text)


def test_local_network_refused_unless_allowed(client, hooks, receiver, hook_forge):
    from gl_ml_tracking import get_state

    config = get_state(hook_forge.app).config
    path = "/ok/" + uuid.uuid4().hex[:8]
    hook = hooks(receiver.base_url + path, ["registered_model.created"])
    config.webhooks_allow_local_network = False
    try:
        for url in (receiver.base_url + "/ok/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]:9/x"):
            r = api(hook_forge, "POST", "webhooks",
                    json={"name": "local", "url": url, "events": [{"entity": "PROMPT", "action": "CREATED"}]})
            assert r.status_code == 400 and "non-public IP address" in r.json()["message"], (url, r.text)
        # Checked again at delivery: a webhook saved while allowed is refused now, not sent.
        client.create_registered_model("wh-refused-" + uuid.uuid4().hex[:6])
        rows = _wait_rows(hook_forge, hook.webhook_id, lambda rows: rows and rows[0][0] == "FAILED")
        assert rows[0][3][0][0] is None and rows[0][3][0][1].startswith("refused")
        assert receiver.on(path) == []
        result = client.test_webhook(hook.webhook_id)
        assert not result.success and "non-public" in result.error_message
    finally:
        config.webhooks_allow_local_network = True


def _wait_rows(forge, webhook_id, predicate, timeout: float = 30):
    """Poll the outbox until ``predicate`` holds (deliveries happen in another thread)."""
    import threading
    import time

    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        rows = deliveries(forge, webhook_id)
        if predicate(rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox never reached the expected state: {rows}")
        tick.wait(0.1)


def test_prompt_events(hooks, receiver, hook_forge):
    """Prompts (registered models tagged ``mlflow.prompt.is_prompt``) send prompt_* events
    instead of the model ones, with MLflow's payloads (the template from its tag, the
    prompt's own tags left out)."""
    path = "/ok/" + uuid.uuid4().hex[:8]
    hooks(receiver.base_url + path, ["prompt.created", "prompt_version.created", "prompt_tag.set", "prompt_tag.deleted",
                                     "prompt_version_tag.set", "prompt_version_tag.deleted", "prompt_alias.created",
                                     "prompt_alias.deleted", "registered_model.created", "model_version.created"])
    name = "wh-prompt-" + uuid.uuid4().hex[:6]
    prompt_tags = [{"key": "mlflow.prompt.is_prompt", "value": "true"}, {"key": "_mlflow_prompt_type", "value": "text"}]
    steps = [
        ("POST", "registered-models/create", {"name": name, "tags": prompt_tags + [{"key": "o", "value": "me"}],
                                              "description": "p"}),
        ("POST", "model-versions/create", {"name": name, "source": "dummy-source", "description": "first",
                                           "tags": prompt_tags + [{"key": "mlflow.prompt.text", "value": "Hi {{x}}"},
                                                                  {"key": "t", "value": "1"}]}),
        ("POST", "registered-models/set-tag", {"name": name, "key": "lang", "value": "en"}),
        ("DELETE", "registered-models/delete-tag", {"name": name, "key": "lang"}),
        ("POST", "model-versions/set-tag", {"name": name, "version": "1", "key": "k", "value": "v"}),
        ("DELETE", "model-versions/delete-tag", {"name": name, "version": "1", "key": "k"}),
        ("POST", "registered-models/alias", {"name": name, "alias": "prod", "version": "1"}),
        ("DELETE", "registered-models/alias", {"name": name, "alias": "prod"}),
    ]
    for method, where, body in steps:
        r = api(hook_forge, method, where, json=body)
        assert r.status_code == 200, r.text
    got = receiver.wait_count(path, 8)
    assert [r.event for r in got] == ["prompt.created", "prompt_version.created", "prompt_tag.set", "prompt_tag.deleted",
                                      "prompt_version_tag.set", "prompt_version_tag.deleted", "prompt_alias.created",
                                      "prompt_alias.deleted"]
    assert got[0].json["data"] == {"name": name, "tags": {"o": "me"}, "description": "p"}
    assert got[1].json["data"] == {"name": name, "version": "1", "template": "Hi {{x}}", "tags": {"t": "1"},
                                   "description": "first"}
    assert got[6].json["data"] == {"name": name, "alias": "prod", "version": "1"}


def test_failed_change_records_no_event(client, hooks, receiver, hook_forge):
    """The outbox row is written in the change's transaction: a change that fails
    (here a duplicate name) leaves no delivery behind."""
    path = "/ok/" + uuid.uuid4().hex[:8]
    hook = hooks(receiver.base_url + path, ["registered_model.created", "model_version.created"])
    name = "wh-once-" + uuid.uuid4().hex[:6]
    client.create_registered_model(name)
    with pytest.raises(MlflowException):
        client.create_registered_model(name)
    r = api(hook_forge, "POST", "model-versions/create", json={"name": "no-such-model-" + name, "source": "s3://bucket/model"})
    assert r.status_code == 404, r.text
    _wait_rows(hook_forge, hook.webhook_id, lambda rows: len(rows) == 1 and rows[0][0] == "SUCCEEDED")
    assert [r.json["data"]["name"] for r in receiver.on(path)] == [name]


def test_cli_delivers_and_prunes(hook_forge, receiver, tmp_path):
    """With the in-process deliverer off, `flask ml-tracking webhooks deliver` sends
    what is due and `prune` removes finished deliveries."""
    from sqlalchemy import update

    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import WebhookDelivery
    from gl_ml_tracking.services import webhook_deliverer

    app = hook_forge.app
    config = get_state(app).config
    webhook_deliverer.stop(app)
    config.webhooks_deliverer = False
    try:
        path = "/ok/" + uuid.uuid4().hex[:8]
        hook = api(hook_forge, "POST", "webhooks", json={"name": "cli-hook", "url": receiver.base_url + path,
                                                        "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]})
        webhook_id = hook.json()["webhook"]["webhook_id"]
        for i in range(3):
            assert api(hook_forge, "POST", "registered-models/create", json={"name": f"cli-{i}-{uuid.uuid4().hex[:4]}"}).ok
        assert [s for s, *_ in deliveries(hook_forge, webhook_id)] == ["PENDING"] * 3 and receiver.on(path) == []
        runner = app.test_cli_runner()
        out = runner.invoke(args=["ml-tracking", "webhooks", "deliver"])
        assert out.exit_code == 0 and "3 delivered" in out.output, out.output
        assert len(receiver.on(path)) == 3
        assert [s for s, *_ in deliveries(hook_forge, webhook_id)] == ["SUCCEEDED"] * 3
        out = runner.invoke(args=["ml-tracking", "webhooks", "deliver"])
        assert "0 claimed" in out.output and len(receiver.on(path)) == 3
        with app.app_context():  # age them past the retention
            session = get_state().session
            session.execute(update(WebhookDelivery).values(completion_time=1))
            session.commit()
        out = runner.invoke(args=["ml-tracking", "webhooks", "prune"])
        assert out.exit_code == 0 and "removed" in out.output
        assert deliveries(hook_forge, webhook_id) == []
        api(hook_forge, "DELETE", f"webhooks/{webhook_id}")
    finally:
        config.webhooks_deliverer = True


@contextlib.contextmanager
def deliverer_off(forge):
    """No in-process deliverer while the block runs (as in a host that delivers by CLI)."""
    from gl_ml_tracking import get_state
    from gl_ml_tracking.services import webhook_deliverer

    config = get_state(forge.app).config
    webhook_deliverer.stop(forge.app)
    config.webhooks_deliverer = False
    try:
        yield
    finally:
        config.webhooks_deliverer = True


def hook_with_pending_event(forge, receiver, name: str) -> tuple[str, str]:
    """A webhook and one recorded, undelivered event for it: (webhook id, receiver path)."""
    path = "/ok/" + uuid.uuid4().hex[:8]
    hook = api(forge, "POST", "webhooks", json={"name": name, "url": receiver.base_url + path,
                                                "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]})
    webhook_id = hook.json()["webhook"]["webhook_id"]
    assert api(forge, "POST", "registered-models/create", json={"name": name + "-" + uuid.uuid4().hex[:6]}).ok
    assert [s for s, *_ in deliveries(forge, webhook_id)] == ["PENDING"] and receiver.on(path) == []
    return webhook_id, path


def test_a_new_process_delivers_what_an_old_one_left(hook_forge, receiver):
    """Deliveries recorded while no deliverer ran are sent once a process serving
    requests looks at the outbox (its first request), without any new event."""
    from gl_ml_tracking import get_state
    from gl_ml_tracking.services import webhook_deliverer

    with deliverer_off(hook_forge):
        webhook_id, path = hook_with_pending_event(hook_forge, receiver, "left-over")
    get_state(hook_forge.app).extra.pop(webhook_deliverer.CHECKED_KEY, None)  # as in a process that served nothing yet
    assert api(hook_forge, "GET", "experiments/search", params={"max_results": 1}).ok
    assert len(receiver.wait_count(path, 1)) == 1
    _wait_rows(hook_forge, webhook_id, lambda rows: rows[0][0] == "SUCCEEDED")
    api(hook_forge, "DELETE", f"webhooks/{webhook_id}")


def test_an_expired_lease_is_taken_over_and_the_late_result_ignored(hook_forge, receiver):
    """A deliverer that claimed a delivery and stalled past its lease loses it: another
    claims it and delivers; the stalled one's result is not written (at least once)."""
    from sqlalchemy import update

    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import WebhookDelivery
    from gl_ml_tracking.services import webhook_delivery
    from gl_ml_tracking.services.webhook_http import Outcome

    app = hook_forge.app
    state = get_state(app)
    with deliverer_off(hook_forge):
        webhook_id, path = hook_with_pending_event(hook_forge, receiver, "lease")
        with app.app_context():
            session = state.session
            stalled_token, stalled = webhook_delivery.claim(session, 10, lease_s=60)
            assert len(stalled) == 1
            assert webhook_delivery.claim(session, 10, lease_s=60)[1] == []  # leased: nobody else takes it
            session.execute(update(WebhookDelivery).values(lease_until=1))  # the lease runs out
            session.commit()
            assert webhook_delivery.deliver_round(session).succeeded == 1
            assert webhook_delivery.finish(session, stalled[0], stalled_token, Outcome(500, "late", None, 5), 0,
                                           state.config) == "LOST"
        rows = deliveries(hook_forge, webhook_id)
        assert [(s, n) for s, n, _, _ in rows] == [("SUCCEEDED", 1)] and rows[0][3] == [(200, None)]
        assert len(receiver.on(path)) == 1
        api(hook_forge, "DELETE", f"webhooks/{webhook_id}")


def test_bad_updates_and_tests_change_nothing(client, hooks, receiver, hook_forge):
    hook = hooks(receiver.base_url + "/ok/bad-update", ["registered_model.created"], description="kept")
    for body, needle in (({"name": "Bad Name"}, "is invalid"), ({"url": "ftp://x.example/"}, "scheme"),
                         ({"status": "NOPE"}, "status"), ({"events": [{"entity": "PROMPT", "action": "SET"}]}, "Invalid action"),
                         ({"events": [{"entity": 99, "action": 1}]}, "events.entity"), ({"name": ["x"]}, "name")):
        r = api(hook_forge, "PATCH", f"webhooks/{hook.webhook_id}", json=body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (body, r.text)
        assert needle in r.json()["message"], (body, r.text)
    r = api(hook_forge, "POST", f"webhooks/{hook.webhook_id}/test", json={"event": {"entity": "PROMPT", "action": "SET"}})
    assert r.status_code == 400 and "Invalid action" in r.json()["message"]
    same = client.get_webhook(hook.webhook_id)
    assert (same.name, same.url, same.description, [str(e) for e in same.events]) == \
        (hook.name, hook.url, "kept", ["registered_model.created"])
    # Numbers for enums, as protobuf's JSON allows: 5 = PROMPT, 1 = CREATED; 2 = DISABLED.
    r = api(hook_forge, "PATCH", f"webhooks/{hook.webhook_id}", json={"events": [{"entity": 5, "action": 1}], "status": 2})
    assert r.status_code == 200 and r.json()["webhook"]["events"] == [{"entity": "PROMPT", "action": "CREATED"}]
    assert r.json()["webhook"]["status"] == "DISABLED"
