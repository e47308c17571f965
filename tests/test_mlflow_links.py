"""The "View run at <tracking URI>/#/experiments/<id>/runs/<run_id>" link the
MLflow client prints lands on our run page, in a real browser."""
from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.browser


def test_view_run_link_opens_the_run_page(forge, mlflow_client):
    from playwright.sync_api import sync_playwright

    exp_id = mlflow_client.create_experiment("linked-from-mlflow")
    run = mlflow_client.create_run(exp_id, run_name="follow-me")
    run_id = run.info.run_id
    link = f"{forge.tracking_uri('demo%2Fmnist')}/#/experiments/{exp_id}/runs/{run_id}"
    # Without a browser: the root redirects to the link page; unreadable projects stay 404.
    r = requests.get(forge.tracking_uri(1) + "/", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/demo/mnist/-/ml/mlflow-link")
    assert requests.get(forge.tracking_uri(2) + "/", allow_redirects=False).status_code == 404
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page()
        page.goto(link)
        page.wait_for_url("**/-/ml/candidates/*")
        assert "follow-me" in page.content()
        page.goto(f"{forge.tracking_uri(1)}/#/experiments/{exp_id}")
        page.wait_for_url(f"**/-/ml/experiments/{exp_id}")
        assert "linked-from-mlflow" in page.content()
        browser.close()
