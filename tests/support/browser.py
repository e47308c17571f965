"""Headless Chromium for the browser tests: where it is and how it starts, what a page must
never do (``Watcher``), and the fixtures every browser test uses (``browser``, ``make_page``,
``shot``), registered for all test modules by ``tests/conftest.py``.

Each test module brings its own ``live`` forge (with ``live.extra["db"]`` set); the fixtures
here use whichever ``live`` the module defines.
"""
from __future__ import annotations

import os

import pytest

from tests.support.ui_seed import PASSWORD

CHROMIUM = os.environ.get("GLML_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "screenshots")
# Chromium's own console report that a sandboxed HTML preview's script was stopped: that is
# the sandbox working, not a problem of the page.
SANDBOX_REPORT = "because the document's frame is sandboxed"


class Watcher:
    """Collects what must never happen on a page: dialogs, script errors, failed loads."""

    def __init__(self, page):
        self.problems: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _dialog(self, dialog):
        self.problems.append(f"dialog {dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, message):
        if message.type == "error" and "favicon" not in (message.location or {}).get("url", ""):
            # Failed loads are reported by _response with their URL.
            if "Failed to load resource" not in message.text and SANDBOX_REPORT not in message.text:
                self.problems.append(f"console error: {message.text}")

    def _response(self, response):
        if response.status >= 500 or (response.status == 404 and not response.url.endswith("/favicon.ico")
                                      and "/-/gl-ml-tracking/static/" in response.url):
            self.problems.append(f"{response.status} {response.url}")


def sign_in(page, user: str, password: str) -> None:
    page.goto("/users/sign_in")
    page.fill("#username", user)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "Sign in" not in page.title(), f"{user} could not sign in"


@pytest.fixture(scope="module")
def browser(live):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def make_page(browser, live, request):
    """``make_page(width=None, user="demo", password=...)``: a page in a fresh context, signed
    in as ``user`` (``user=None``: anonymous), as wide as asked or as the module's
    ``PAGE_WIDTH`` (1360 px). Whatever a ``Watcher`` saw on any of the test's pages fails the
    test at the end."""
    contexts, watchers = [], []
    default_width = getattr(request.module, "PAGE_WIDTH", 1360)

    def factory(width: int | None = None, user: str | None = "demo", password: str = PASSWORD):
        width = width or default_width
        context = browser.new_context(viewport={"width": width, "height": 900}, base_url=live.base_url,
                                      accept_downloads=True)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.base_url)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20000)
        watchers.append(Watcher(page))
        if user:
            sign_in(page, user, password)
        return page

    yield factory
    problems = [p for w in watchers for p in w.problems]
    for context in contexts:
        context.close()
    assert not problems, problems


@pytest.fixture
def shot(live, request):
    """``shot(page, name)``: a full-page screenshot in ``tests/screenshots/<db>/``, named with
    the module's ``SHOT_PREFIX`` if it has one; returns its path."""
    folder = os.path.join(SCREENSHOTS, live.extra["db"])
    os.makedirs(folder, exist_ok=True)
    prefix = getattr(request.module, "SHOT_PREFIX", "")

    def take(page, name: str) -> str:
        path = os.path.join(folder, f"{prefix}{name}.png")
        page.screenshot(path=path, full_page=True)
        return path

    return take
