"""The prompt registry: MLflow's ``mlflow.genai`` prompt calls against a live forge (SQLite
and PostgreSQL), each test in a fresh project; the prompt pages over HTTP and in headless
Chromium (screenshots into ``tests/screenshots/<db>/``, git-ignored)."""
from __future__ import annotations

import html
import os
import re

import pytest
import requests

from tests.support.projects import new_project

XSS = '<img src=x onerror="alert(1)">'
CHROMIUM = os.environ.get("GLML_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "screenshots")


@pytest.fixture
def project(forge, monkeypatch):
    """A fresh public project, the MLflow client pointed at it through the environment."""
    import mlflow

    project_id = new_project(forge, visibility="public")
    uri = forge.tracking_uri(project_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", forge.owner_token)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with forge.app.app_context():
        from examples.forge.models import Project, db

        path = db.session.get(Project, project_id).full_path
    return {"id": project_id, "uri": uri, "web": f"{forge.base_url}/{path}/-/ml"}


def _seed(forge) -> None:
    import mlflow

    mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}!\nBe kind.", commit_message="first",
                                 tags={"team": "a"})
    mlflow.genai.register_prompt(name="greeting", template=f"Hello {{{{name}}}}!\nBe brief.\n{XSS}",
                                 commit_message="shorter")
    mlflow.genai.set_prompt_alias("greeting", "production", 1)
    mlflow.genai.register_prompt(name="chat", template=[{"role": "system", "content": "You are {{role}}"},
                                                        {"role": "user", "content": "{{q}}"}])
    from mlflow import MlflowClient

    MlflowClient().create_registered_model("plain-model")


def test_prompts_through_the_client(forge, project):
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    _seed(forge)
    client = MlflowClient()
    assert mlflow.genai.load_prompt("prompts:/greeting/1").template == "Hello {{name}}!\nBe kind."
    assert mlflow.genai.load_prompt("prompts:/greeting@production").version == 1
    assert mlflow.genai.load_prompt("prompts:/greeting@latest").version == 2
    chat = mlflow.genai.load_prompt("prompts:/chat/1")
    assert chat.template[1] == {"role": "user", "content": "{{q}}"}
    assert chat.format(role="a judge", q="why?")[0]["content"] == "You are a judge"
    assert sorted(p.name for p in mlflow.genai.search_prompts()) == ["chat", "greeting"]
    assert [p.name for p in mlflow.genai.search_prompts("name = 'chat'")] == ["chat"]
    # Prompts are no models: the registry's searches leave them out, as MLflow's.
    assert [m.name for m in client.search_registered_models()] == ["plain-model"]
    assert client.search_model_versions() == []

    client.set_prompt_tag("greeting", "owner", "nlp")
    assert client.get_prompt("greeting").tags["owner"] == "nlp"
    client.delete_prompt_tag("greeting", "owner")
    assert "owner" not in client.get_prompt("greeting").tags
    client.set_prompt_version_tag("greeting", 1, "reviewed", "yes")
    assert client.get_prompt_version("greeting", 1).tags["reviewed"] == "yes"
    mlflow.genai.delete_prompt_alias("greeting", "production")
    with pytest.raises(MlflowException):
        mlflow.genai.load_prompt("prompts:/greeting@production")

    # A prompt source must be the client's placeholder; a prompt is no model version source.
    api = f"{project['uri']}/api/2.0/mlflow/model-versions/create"
    auth = {"Authorization": f"Bearer {forge.owner_token}"}
    r = requests.post(api, headers=auth, json={"name": "greeting", "source": "s3://b/x",
                                                "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]})
    assert r.status_code == 400 and r.json()["message"].startswith("Invalid prompt source: 's3://b/x'")
    r = requests.post(api, headers=auth, json={"name": "greeting", "source": "prompt-template",
                                                "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"},
                                                         {"key": "mlflow.prompt.text", "value": "Hi"}]})
    assert r.status_code == 200 and r.json()["model_version"]["version"] == "3"  # the store's placeholder
    r = requests.post(api, headers=auth, json={"name": "plain-model", "source": "models:/greeting/1"})
    assert r.status_code == 400 and "Prompt versions cannot be used" in r.json()["message"]

    client.delete_prompt_version("greeting", 3)
    client.delete_prompt_version("greeting", 2)
    assert [v.version for v in client.search_prompt_versions("greeting")] == [1]
    client.delete_prompt_version("greeting", 1)
    client.delete_prompt("greeting")
    assert client.get_prompt("greeting") is None
    assert [p.name for p in mlflow.genai.search_prompts()] == ["chat"]


def test_prompt_pages(forge, project):
    _seed(forge)
    web = project["web"]
    listing = requests.get(f"{web}/prompts")
    assert listing.status_code == 200
    names = re.findall(r'data-prompt="([^"]+)"', listing.text)
    assert names == ["chat", "greeting"]
    assert "@production → v1" in listing.text and "team=a" in listing.text
    assert "plain-model" not in listing.text
    models = requests.get(f"{web}/models").text
    assert 'data-model="plain-model"' in models and 'data-model="greeting"' not in models
    assert requests.get(f"{web}/prompts?search=gree").text.count("data-prompt=") == 1

    page = requests.get(f"{web}/prompts/greeting")
    assert page.status_code == 200
    # Each version's template, escaped; the newest first.
    assert re.findall(r'data-version="(\d+)"', page.text) == ["2", "1"]
    assert XSS not in page.text and "&lt;img src=x onerror=" in page.text
    # The diff of the two newest versions by default.
    diff = re.findall(r'data-kind="(\w+)">(.*?)</span>', page.text)
    assert ("removed", "- Be kind.") in diff and ("added", "+ Be brief.") in diff
    assert ("same", "  Hello {{name}}!") in diff
    swapped = re.findall(r'data-kind="(\w+)">(.*?)</span>', requests.get(f"{web}/prompts/greeting?from=2&to=1").text)
    assert ("added", "+ Be kind.") in swapped and ("removed", "- Be brief.") in swapped
    assert requests.get(f"{web}/prompts/greeting?from=1&to=9").status_code == 404
    chat = html.unescape(requests.get(f"{web}/prompts/chat").text)
    assert '"role": "system"' in chat and 'data-testid="prompt-diff"' not in chat
    # A prompt is not a model page, and a model is no prompt.
    r = requests.get(f"{web}/models/greeting", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/ml/prompts/greeting")
    assert requests.get(f"{web}/prompts/plain-model").status_code == 404


@pytest.mark.browser
def test_prompt_pages_in_chromium(forge, project, db_kind):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    _seed(forge)
    folder = os.path.join(SCREENSHOTS, db_kind)
    os.makedirs(folder, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
            page.on("response", lambda r: r.status >= 500 and problems.append(f"{r.status} {r.url}"))
            page.goto(f"{project['web']}/prompts")
            assert page.locator("[data-testid=prompts-table] tr[data-prompt]").count() == 2
            page.screenshot(path=os.path.join(folder, "prompts.png"), full_page=True)
            page.click("a:text-is('greeting')")
            page.wait_for_url(re.compile(r"/ml/prompts/greeting$"))
            assert page.locator("[data-testid=prompt-name]").inner_text() == "greeting"
            assert page.locator("[data-testid=diff-lines] [data-kind=added]").count() == 2
            assert page.locator("[data-testid=diff-lines] [data-kind=removed]").inner_text() == "- Be kind."
            colour = page.locator("[data-kind=added]").first.evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour not in ("rgba(0, 0, 0, 0)", "transparent")  # the stylesheet marks changes
            assert XSS in page.locator("article[data-version='2'] [data-testid=template]").inner_text()
            page.screenshot(path=os.path.join(folder, "prompt.png"), full_page=True)
            page.select_option("select[name=from]", "2")
            page.select_option("select[name=to]", "1")
            with page.expect_navigation():
                page.click("button:text-is('Compare')")
            assert "from=2" in page.url and page.locator("[data-kind=added]").inner_text() == "+ Be kind."
            page.screenshot(path=os.path.join(folder, "prompt-diff.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
