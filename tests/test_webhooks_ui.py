"""The webhooks page in headless Chromium, on SQLite and PostgreSQL: a maintainer
sees the project's webhooks and their deliveries (status, attempts) and sends a
delivery again; a reader of the registry who is not a maintainer sees neither."""
from __future__ import annotations

import os
import uuid

import pytest
import requests

from tests.support.liveserver import build_app, migrate_and_seed, serve
from tests.support.webhook_receiver import Receiver
from tests.test_webhooks import WEBHOOK_CONFIG

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("GLML_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture(scope="module")
def live(database_url, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    app = build_app(database_url, str(tmp_path_factory.mktemp("storage")), WEBHOOK_CONFIG)
    migrate_and_seed(app)
    forge = serve(app)
    yield forge
    from gl_ml_tracking.services import webhook_deliverer

    webhook_deliverer.stop(app)
    forge.stop()


def api(forge, method, path, body=None, project=1):
    r = requests.request(method, forge.tracking_uri(project) + "/api/2.0/mlflow/" + path, json=body, timeout=30,
                         headers={"Authorization": f"Bearer {forge.owner_token}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_maintainer_sees_webhooks_and_sends_a_delivery_again(live):
    from playwright.sync_api import sync_playwright

    receiver = Receiver()
    try:
        path = "/ok/ui-" + uuid.uuid4().hex[:6]
        name = "ui-hook-" + uuid.uuid4().hex[:6]
        hook = api(live, "POST", "webhooks", {"name": name, "url": receiver.base_url + path, "secret": "x",
                                              "description": "<b>not bold</b>",
                                              "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]})["webhook"]
        api(live, "POST", "registered-models/create", {"name": "ui-model-" + uuid.uuid4().hex[:6]})
        first = receiver.wait_count(path, 1)[0]
        delivery_id = first.headers["X-MLflow-Delivery-Id"]

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(base_url=live.base_url)
            page.set_default_timeout(20000)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (errors.append(d.message), d.dismiss()))
            page.goto("/users/sign_in")
            page.fill("#username", "demo")
            page.fill("#password", "demo-password")
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.goto("/demo/mnist/-/ml/experiments")
            page.click("nav.glml-tabs >> text=Webhooks")
            row = page.locator(f'[data-webhook="{hook["webhook_id"]}"]')
            assert name in row.inner_text() and receiver.base_url + path in row.inner_text()
            assert "<b>not bold</b>" in row.inner_text()  # escaped, shown as text
            delivery = page.locator(f'[data-delivery="{delivery_id}"]')
            for _ in range(50):  # the deliverer records the answer just after the receiver got it
                if delivery.get_attribute("data-status") == "SUCCEEDED":
                    break
                page.reload()
            assert delivery.get_attribute("data-status") == "SUCCEEDED"
            assert "registered_model.created" in delivery.inner_text() and "HTTP 200" in delivery.inner_text()
            with page.expect_navigation():
                delivery.locator("button", has_text="Send again").click()
            assert "will be sent again" in page.locator(".glml-alert").inner_text()
            again = receiver.wait_count(path, 2)[1]
            assert again.headers["X-MLflow-Delivery-Id"] == delivery_id and again.body == first.body
            assert not errors, errors
            browser.close()
    finally:
        receiver.stop()


def test_readers_who_are_not_maintainers_see_no_webhooks(live):
    api(live, "POST", "webhooks", {"name": "hidden-hook", "url": "http://127.0.0.1:9/secret-path",
                                   "events": [{"entity": "PROMPT", "action": "CREATED"}]})
    anonymous = requests.get(live.base_url + "/demo/mnist/-/ml/webhooks", timeout=30)  # a public project
    assert anonymous.status_code == 200 and "Only the project's maintainers" in anonymous.text
    assert "secret-path" not in anonymous.text and "hidden-hook" not in anonymous.text
    experiments = requests.get(live.base_url + "/demo/mnist/-/ml/experiments", timeout=30)
    assert "/ml/webhooks" not in experiments.text  # no tab either
    refused = requests.post(live.base_url + f"/demo/mnist/-/ml/webhooks/deliveries/{uuid.uuid4()}/redeliver", timeout=30)
    assert refused.status_code in (403, 404)
