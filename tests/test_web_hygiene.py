"""Web hygiene: security headers on every page, CSRF on every page mutation,
no open redirects, tokens stored hashed and compared in constant time, and the
rate-limit hook a host uses (documented in docs/RELIABILITY.md)."""
from __future__ import annotations

import hmac
import re
import uuid
from urllib.parse import urlsplit

import pytest

API = "/api/v4/projects/1/ml/mlflow/api/2.0/mlflow/"


def _owner(forge) -> dict:
    return {"Authorization": f"Bearer {forge.owner_token}"}


@pytest.fixture(scope="module")
def planted(forge):
    c = forge.app.test_client()
    h = _owner(forge)
    exp = c.post(API + "experiments/create", json={"name": "hygiene-" + uuid.uuid4().hex[:8]}, headers=h).get_json()["experiment_id"]
    run = c.post(API + "runs/create", json={"experiment_id": exp}, headers=h).get_json()["run"]
    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Run

    with forge.app.app_context():
        iid = get_state().session.query(Run).filter_by(run_uuid=run["info"]["run_id"]).one().iid
    return {"experiment_id": exp, "run_id": run["info"]["run_id"], "run_iid": iid}


def ui_rules(app, method: str):
    return [r for r in app.url_map.iter_rules()
            if r.endpoint.startswith(("gl_ml_tracking_ui.", "gl_ml_tracking_ci.")) and method in r.methods]


def fill(rule: str, planted: dict) -> str:
    def value(match):
        name = match.group(2)
        if name == "project_path":
            return "demo/mnist"
        if name == "iid":
            return str(planted["experiment_id"] if "/experiments/" in rule else planted["run_iid"])
        return "1" if match.group(1) == "int" else "x"

    return re.sub(r"<(?:(\w+):)?(\w+)>", value, rule)


def signed_in_client(forge):
    """A browser: signs in through the forge's form (with its CSRF token)."""
    c = forge.app.test_client()
    page = c.get("/users/sign_in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = c.post("/users/sign_in", data={"username": "demo", "password": "demo-password", "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return c


def glml_csrf(html: str) -> str:
    from gl_ml_tracking.services import csrf

    match = re.search(r'name="%s" value="([^"]+)"' % re.escape(csrf.FORM_FIELD), html)
    assert match, "the page carries no CSRF field"
    return match.group(1)


# -- headers -----------------------------------------------------------------------------
def test_security_headers_on_every_page(forge, planted):
    rules = ui_rules(forge.app, "GET")
    if not rules:
        pytest.skip("the UI is not mounted")
    c = signed_in_client(forge)
    checked = 0
    for rule in rules:
        for url in (fill(rule.rule, planted), fill(rule.rule, planted).replace("demo/mnist", "demo/no-such"),):
            r = c.get(url)
            assert r.status_code < 500, (url, r.status_code)
            assert r.headers.get("X-Content-Type-Options") == "nosniff", url
            if "html" in (r.content_type or ""):
                csp = r.headers.get("Content-Security-Policy", "")
                assert "default-src" in csp and "object-src 'none'" in csp and "frame-ancestors" in csp, (url, csp)
                assert "'unsafe-eval'" not in csp and "script-src 'self'" in csp, (url, csp)
                assert r.headers.get("X-Frame-Options") in ("SAMEORIGIN", "DENY"), url
                assert r.headers.get("Referrer-Policy"), url
            checked += 1
    assert checked >= 2 * len(rules)


def test_api_errors_and_files_are_not_renderable(forge, planted):
    c = forge.app.test_client()
    r = c.get(API + "runs/get?run_id=<b>x</b>", headers=_owner(forge))
    assert r.content_type.startswith("application/json")
    artifact_dir = f"ml_experiment_{planted['experiment_id']}/{planted['run_iid']}"
    put = c.put(f"/api/v4/projects/1/ml/mlflow/api/2.0/mlflow-artifacts/artifacts/{artifact_dir}/x.svg",
                data=b"<svg onload=alert(1)>", headers={**_owner(forge), "Content-Type": "image/svg+xml"})
    assert put.status_code == 200
    got = c.get(f"/api/v4/projects/1/ml/mlflow/api/2.0/mlflow-artifacts/artifacts/{artifact_dir}/x.svg", headers=_owner(forge))
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in got.headers.get("Content-Security-Policy", "")


# -- CSRF ------------------------------------------------------------------------------
def test_csrf_on_every_page_mutation(forge, planted):
    rules = ui_rules(forge.app, "POST")
    if not rules:
        pytest.skip("the UI has no mutations")
    c = signed_in_client(forge)
    page = c.get(f"/demo/mnist/-/ml/experiments/{planted['experiment_id']}")
    assert page.status_code == 200, page.status_code
    token = glml_csrf(page.get_data(as_text=True))
    from gl_ml_tracking.services import csrf

    refused = 0
    for rule in rules:
        url = fill(rule.rule, planted)
        attempts = [
            {},  # no token
            {"data": {csrf.FORM_FIELD: "forged-" + "x" * 40}},  # wrong token
            {"data": {csrf.FORM_FIELD: token}, "headers": {"Origin": "https://evil.example"}},  # right token, other site
        ]
        for kwargs in attempts:
            r = c.post(url, **kwargs)
            assert r.status_code in (400, 403), (url, kwargs, r.status_code)
            refused += 1
    assert refused == 3 * len(rules)
    # Nothing changed: the experiment and the run are still active.
    h = _owner(forge)
    api = forge.app.test_client()
    assert api.get(API + "experiments/get", query_string={"experiment_id": planted["experiment_id"]},
                   headers=h).get_json()["experiment"]["lifecycle_stage"] == "active"
    assert api.get(API + "runs/get", query_string={"run_id": planted["run_id"]},
                   headers=h).get_json()["run"]["info"]["lifecycle_stage"] == "active"
    # And the same form with this session's token works (so the refusals were the CSRF check's).
    r = c.post(f"/demo/mnist/-/ml/experiments/{planted['experiment_id']}/delete", data={csrf.FORM_FIELD: token})
    assert r.status_code in (302, 303), r.status_code
    assert api.get(API + "experiments/get", query_string={"experiment_id": planted["experiment_id"]},
                   headers=h).get_json()["experiment"]["lifecycle_stage"] == "deleted"
    r = c.post(f"/demo/mnist/-/ml/experiments/{planted['experiment_id']}/restore", data={csrf.FORM_FIELD: token},
               headers={"Origin": "http://localhost"})
    assert r.status_code in (302, 303), r.status_code


# -- redirects --------------------------------------------------------------------------
OFFSITE = ["//evil.example/", "/\\evil.example", "https://evil.example/", "http:evil.example", "\\\\evil.example",
           "javascript:alert(1)", "/%2F%2Fevil.example", "%2F%2Fevil.example", " //evil.example", "\t//evil.example",
           "/\t/evil.example", "https:/evil.example"]


def _is_offsite(location: str) -> bool:
    parts = urlsplit(location.strip())
    return bool(parts.netloc and parts.netloc not in ("localhost", "127.0.0.1")) or parts.scheme not in ("", "http", "https") \
        or location.strip().startswith(("//", "/\\", "\\"))


def test_no_open_redirects(forge, planted):
    c = forge.app.test_client()
    for target in OFFSITE:
        page = c.get("/users/sign_in", query_string={"next": target})
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
        r = c.post("/users/sign_in", data={"username": "demo", "password": "demo-password", "csrf_token": token, "next": target})
        assert r.status_code == 302 and not _is_offsite(r.headers["Location"]), (target, r.headers.get("Location"))
    if ui_rules(forge.app, "POST"):
        s = signed_in_client(forge)
        token = glml_csrf(s.get(f"/demo/mnist/-/ml/experiments/{planted['experiment_id']}").get_data(as_text=True))
        from gl_ml_tracking.services import csrf

        for target in OFFSITE:
            for action in ("delete", "restore"):
                r = s.post(f"/demo/mnist/-/ml/experiments/{planted['experiment_id']}/{action}",
                           data={csrf.FORM_FIELD: token, "next": target})
                if r.status_code in (301, 302, 303, 307, 308):
                    assert not _is_offsite(r.headers["Location"]), (target, r.headers["Location"])
    # Canonical-path redirects of pages stay on the site too.
    for path in ("/DEMO/MNIST/-/ml/experiments", "//evil.example/-/ml/experiments", "/%2F%2Fevil.example/-/ml/experiments"):
        r = c.get(path)
        if r.status_code in (301, 302, 303, 307, 308):
            assert not _is_offsite(r.headers["Location"]), (path, r.headers["Location"])


# -- tokens -----------------------------------------------------------------------------
def test_tokens_stored_hashed_and_compared_in_constant_time(forge, monkeypatch):
    from examples.forge import auth
    from examples.forge.models import Job, PersonalAccessToken, db
    from sqlalchemy import select

    with forge.app.app_context():
        rows = db.session.scalars(select(PersonalAccessToken)).all()
        assert rows
        for row in rows:
            assert re.fullmatch(r"[0-9a-f]{64}", row.token_digest)
        stored = " ".join(r.token_digest for r in rows)
        assert forge.owner_token not in stored and forge.outsider_token not in stored
        assert auth.token_digest(forge.owner_token) in stored
        columns = [c.name for c in PersonalAccessToken.__table__.columns] + [c.name for c in Job.__table__.columns]
        assert "token" not in columns  # no clear-text column at all

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    c = forge.app.test_client()
    assert c.get(API + "experiments/search", headers=_owner(forge)).status_code == 200
    digest = auth.token_digest(forge.owner_token)
    assert (digest, digest) in calls or any(digest in (a, b) for a, b in calls), "the token was not compared with compare_digest"
    calls.clear()
    # A wrong token of the same shape: refused, the comparison never short-cuts on the clear text.
    wrong = forge.owner_token[:-1] + ("0" if forge.owner_token[-1] != "0" else "1")
    assert c.get(API + "experiments/search", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    assert all(wrong not in (a, b) for a, b in calls)


def test_csrf_tokens_compared_in_constant_time(forge, planted, monkeypatch):
    if not ui_rules(forge.app, "POST"):
        pytest.skip("the UI has no mutations")
    from gl_ml_tracking.services import csrf

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(csrf.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    c = signed_in_client(forge)
    token = glml_csrf(c.get(f"/demo/mnist/-/ml/experiments/{planted['experiment_id']}").get_data(as_text=True))
    c.post(f"/demo/mnist/-/ml/experiments/{planted['experiment_id']}/restore", data={csrf.FORM_FIELD: token[:-2] + "zz"})
    assert calls, "CSRF tokens must be compared with hmac.compare_digest"


# -- rate limiting hook ------------------------------------------------------------------
def test_a_host_can_rate_limit_the_api(forge, tmp_path):
    """What docs/RELIABILITY.md tells hosts: a ``before_request`` on the extension's
    blueprints (or Flask-Limiter on them) answers 429 in MLflow's error shape, which
    the MLflow client retries with backoff."""
    from tests.support.liveserver import build_app, migrate_and_seed
    from flask import jsonify, request

    app = build_app(f"sqlite:///{tmp_path}/rl.db", str(tmp_path / "storage"))
    migrate_and_seed(app)
    seen: dict = {}
    LIMIT = 3

    def limit():
        key = request.headers.get("Authorization", request.remote_addr)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > LIMIT:
            response = jsonify(error_code="REQUEST_LIMIT_EXCEEDED", message="Too many requests; retry later.")
            response.status_code = 429
            response.headers["Retry-After"] = "1"
            return response
        return None

    for blueprint in ("gl_ml_tracking_api", "gl_ml_tracking_packages"):
        app.before_request_funcs.setdefault(blueprint, []).append(limit)
    c = app.test_client()
    h = {"Authorization": "Bearer glpat-test-owner-token-000000000001"}
    statuses = [c.get(API + "experiments/search", headers=h).status_code for _ in range(LIMIT + 2)]
    assert statuses == [200] * LIMIT + [429, 429]
    body = c.get(API + "experiments/search", headers=h).get_json()
    assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    # The host's own pages are not limited by it.
    assert all(c.get("/").status_code == 200 for _ in range(LIMIT + 2))
