"""Hostile input against the live forge (SQLite and PostgreSQL): malformed and
deep JSON, wrong content types, bodies past the limit, invalid UTF-8, NUL
bytes, SQL-looking filters, path traversal against package file names and
artifact paths, and script payloads stored then read back.

Every answer must be a clean error: a status below 500 and, on the MLflow API,
MLflow's ``{"error_code", "message"}`` JSON - never an HTML page or a trace.
"""
from __future__ import annotations

import functools
import json
import os
import uuid
from typing import Any, Optional

import pytest
import requests

from gl_ml_tracking import get_state

API = "/api/2.0/mlflow/"


# -- helpers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setup(forge):
    """One experiment and run in the public project, one marked run in the private one."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {forge.owner_token}"
    # A server that drops a response must fail the test, not hang it.
    s.request = functools.partial(s.request, timeout=60)
    base = forge.tracking_uri(1)
    exp = s.post(base + API + "experiments/create", json={"name": "hostile-" + uuid.uuid4().hex[:8]}).json()["experiment_id"]
    run = s.post(base + API + "runs/create", json={"experiment_id": exp}).json()["run"]
    s.post(base + API + "runs/log-batch", json={"run_id": run["info"]["run_id"], "params": [{"key": "lr", "value": "0.1"}],
                                                  "metrics": [{"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}]})
    marker = "hostilesecret" + uuid.uuid4().hex[:8]
    secret_base = forge.tracking_uri(2)
    sexp = s.post(secret_base + API + "experiments/create", json={"name": marker}).json()["experiment_id"]
    srun = s.post(secret_base + API + "runs/create", json={"experiment_id": sexp, "run_name": marker}).json()["run"]
    s.post(secret_base + API + "runs/log-parameter", json={"run_id": srun["info"]["run_id"], "key": "lr", "value": marker})
    model_id = s.post(base + API + "logged-models", json={"experiment_id": exp, "name": "hostile-model"}).json()["model"]["info"]["model_id"]
    return {"session": s, "base": base, "experiment_id": exp, "run": run, "marker": marker, "model_id": model_id,
            "artifact_dir": run["info"]["artifact_uri"].split(":/", 1)[1].lstrip("/")}


def assert_mlflow_error(response: requests.Response, statuses: tuple = (400,)) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json()
    assert set(body) >= {"error_code", "message"} and isinstance(body["error_code"], str) and body["error_code"]
    assert "Traceback" not in response.text and "<html" not in response.text.lower()
    return body


def raw(setup, method: str, endpoint: str, data: Any = None, headers: Optional[dict] = None,
        params: Any = None) -> requests.Response:
    return setup["session"].request(method, setup["base"] + API + endpoint, data=data, headers=headers or {}, params=params)


WRITE_ENDPOINTS = ["experiments/create", "runs/create", "runs/log-batch", "runs/log-metric", "runs/set-tag",
                   "registered-models/create", "logged-models", "runs/search"]


# -- malformed JSON and content types --------------------------------------------------
MALFORMED = [b"{", b"{\"name\": }", b"[1, 2", b"{'name': 'single quotes'}", b"nul", b"{\"a\": 1,}", b"\"just a string\"",
             b"[]", b"123", b"true", b"null", b"{\"name\": \"x\"} trailing", b"\xef\xbb\xbf{bom", b"{\"a\":NaN"]


@pytest.mark.parametrize("endpoint", WRITE_ENDPOINTS)
def test_malformed_json_is_a_clean_400(setup, endpoint):
    for body in MALFORMED:
        r = raw(setup, "POST", endpoint, data=body, headers={"Content-Type": "application/json"})
        assert_mlflow_error(r)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/xml", "", "application/json; charset=latin-1", "image/png"])
def test_wrong_content_types_never_crash(setup, content_type):
    """The client always sends JSON; anything else is parsed as JSON or refused, never a 500."""
    name = "ctype-" + uuid.uuid4().hex[:8]
    for body in (json.dumps({"name": name}).encode(), f"name={name}".encode(), b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nv\r\n--x--"):
        r = raw(setup, "POST", "experiments/create", data=body, headers={"Content-Type": content_type})
        if r.status_code == 200:
            assert r.json()["experiment_id"]
        else:
            assert_mlflow_error(r)


def test_get_endpoint_with_a_body_and_post_with_query(setup):
    r = raw(setup, "GET", "runs/get", data=b"{not json", params={"run_id": setup["run"]["info"]["run_id"]})
    assert r.status_code == 200
    assert_mlflow_error(raw(setup, "POST", "runs/search", data=b"", params={"experiment_ids": "nope", "max_results": "x"}),
                        (400, 404))


# -- sizes and depth -------------------------------------------------------------------------
def test_huge_body_with_length_is_413(setup, forge):
    limit = forge.app.config["GL_ML_TRACKING_MAX_JSON_BODY"]
    payload = b'{"name": "' + b"a" * (limit + 10) + b'"}'
    r = raw(setup, "POST", "experiments/create", data=payload, headers={"Content-Type": "application/json"})
    assert_mlflow_error(r, (413,))


def test_huge_chunked_body_is_413(setup, forge):
    """No Content-Length (chunked): the limit holds while reading."""
    limit = forge.app.config["GL_ML_TRACKING_MAX_JSON_BODY"]

    def chunks():
        yield b'{"run_id": "x", "params": ['
        sent = 0
        while sent <= limit:
            piece = b'{"key": "k", "value": "' + b"v" * 65000 + b'"},'
            sent += len(piece)
            yield piece
        yield b'{"key": "k", "value": "v"}]}'

    r = raw(setup, "POST", "runs/log-batch", data=chunks(), headers={"Content-Type": "application/json"})
    assert_mlflow_error(r, (413,))
    # And the server is still fine.
    assert raw(setup, "GET", "experiments/get", params={"experiment_id": setup["experiment_id"]}).status_code == 200


def test_files_past_the_size_limit_are_413_and_not_kept(setup, forge):
    """Package and artifact uploads past GL_ML_TRACKING_MAX_FILE_SIZE (lowered here),
    announced by Content-Length or discovered while streaming a chunked body."""
    s, base = setup["session"], setup["base"]
    settings = get_state(forge.app).config  # read once at init_app: the live value is here
    old = settings.max_file_size
    settings.max_file_size = 4096
    try:
        targets = [forge.base_url + "/api/v4/projects/1/packages/generic/toolarge/1.0.0/big.bin",
                   base + "/api/2.0/mlflow-artifacts/artifacts/" + setup["artifact_dir"] + "/toolarge.bin"]
        for url in targets:
            r = s.put(url, data=b"x" * 10_000)
            assert r.status_code == 413, (url, r.status_code, r.text[:200])
            assert r.headers["Content-Type"].startswith("application/json")
            r = s.put(url, data=(b"y" * 1000 for _ in range(10)))  # chunked: no length announced
            assert r.status_code == 413, (url, r.status_code, r.text[:200])
            assert s.get(url).status_code == 404  # nothing kept
            assert s.put(url, data=b"z" * 100).status_code in (200, 201)  # under the limit: fine
    finally:
        settings.max_file_size = old


@pytest.mark.parametrize("depth", [50, 1000, 100_000])
def test_deeply_nested_json(setup, depth):
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                 json.dumps({"name": "deep"})[:-1] + ', "tags": ' + "[" * depth + "]" * depth + "}"):
        r = raw(setup, "POST", "experiments/create", data=body.encode(), headers={"Content-Type": "application/json"})
        assert_mlflow_error(r)
    r = raw(setup, "POST", "runs/log-batch", headers={"Content-Type": "application/json"},
            data=('{"run_id": "%s", "params": [{"key": "k", "value": %s}]}'
                  % (setup["run"]["info"]["run_id"], '{"a":' * min(depth, 5000) + "1" + "}" * min(depth, 5000))).encode())
    assert_mlflow_error(r)


def test_wrongly_typed_fields(setup):
    run_id = setup["run"]["info"]["run_id"]
    bodies = [
        ("experiments/create", {"name": ["list"]}), ("experiments/create", {"name": {"o": 1}}), ("experiments/create", {"name": 5}),
        ("experiments/create", {"name": "x", "tags": "notalist"}), ("experiments/create", {"name": "x", "tags": [1, 2]}),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": "NaNx", "timestamp": 1}]}),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 2 ** 70}]}),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": -2 ** 64}]}),
        ("runs/log-batch", {"run_id": run_id, "metrics": {"key": "m"}}), ("runs/log-batch", {"run_id": run_id, "params": [None]}),
        ("runs/log-batch", {"run_id": [run_id]}), ("runs/log-metric", {"run_id": run_id, "key": "m", "value": True, "timestamp": "soon"}),
        ("runs/search", {"experiment_ids": "1", "max_results": -1}), ("runs/search", {"experiment_ids": [{"x": 1}]}),
        ("runs/search", {"experiment_ids": [setup["experiment_id"]], "max_results": 10 ** 30}),
        ("runs/search", {"experiment_ids": [setup["experiment_id"]], "page_token": "!!!notbase64"}),
        ("runs/search", {"experiment_ids": [setup["experiment_id"]], "order_by": [5]}),
        # Found by the fuzzer: a page token that is not a string was a 500.
        ("runs/search", {"experiment_ids": [setup["experiment_id"]], "page_token": 12.5}),
        ("runs/search", {"experiment_ids": [setup["experiment_id"]], "page_token": ["a"]}),
        ("experiments/search", {"page_token": 7}), ("experiments/search", {"page_token": {"k": 1}}),
        ("logged-models/search", {"experiment_ids": [setup["experiment_id"]], "page_token": 3.5}),
        ("registered-models/search", {"page_token": 1.5}), ("model-versions/search", {"page_token": [1]}),
        ("runs/update", {"run_id": run_id, "status": "EXPLODED"}), ("runs/update", {"run_id": run_id, "end_time": "yesterday"}),
        ("experiments/search", {"view_type": "SOME"}), ("experiments/search", {"max_results": "many"}),
        ("registered-models/create", {"name": ""}), ("model-versions/create", {"name": "x", "source": 7}),
    ]
    for endpoint, body in bodies:
        r = raw(setup, "POST", endpoint, data=json.dumps(body), headers={"Content-Type": "application/json"})
        assert_mlflow_error(r, (400, 404))


def test_forged_history_page_tokens(setup, forge):
    """Our history tokens hold three 64-bit integers; a token that decodes to anything
    else must be refused before it reaches the database driver (even one signed with
    the app's key: the signature is checked first, then the payload)."""
    from gl_ml_tracking.search.tokens import encode_token
    from gl_ml_tracking.services.metric_history import TOKEN_KIND

    def token(payload) -> str:
        with forge.app.app_context():
            return encode_token(payload, TOKEN_KIND)

    run_id = setup["run"]["info"]["run_id"]
    forged = [[1.5, 0, 0], ["a", 0, 0], [2 ** 70, 0, 0], [1, 2], [True, 0, 0], {"step": 1}, [None, 0, 0]]
    for payload in forged:
        r = raw(setup, "GET", "metrics/get-history",
                params={"run_id": run_id, "metric_key": "m", "max_results": 10, "page_token": token(payload)})
        body = assert_mlflow_error(r)
        assert body["error_code"] == "INVALID_PARAMETER_VALUE", (payload, body)


# -- digits that are not ASCII ----------------------------------------------------------------
# str.isdigit() is True for '²' and '①' but int() refuses them: every id parser must cope.
ODD_DIGITS = ["²", "¹²", "①", "٣", "１"]


def test_unicode_digits_in_ids(setup, forge):
    s, base = setup["session"], setup["base"]
    for digit in ODD_DIGITS:
        checks = [
            s.get(base + API + "experiments/get", params={"experiment_id": digit}),
            s.post(base + API + "experiments/update", json={"experiment_id": digit, "new_name": "renamed-" + uuid.uuid4().hex[:6]}),
            s.post(base + API + "experiments/restore", json={"experiment_id": digit}),
            s.post(base + API + "experiments/delete", json={"experiment_id": digit + "0"}),
            s.post(base + API + "runs/create", json={"experiment_id": digit}),
            s.post(base + API + "runs/search", json={"experiment_ids": [digit]}),
            s.post(base + API + "runs/search", json={"experiment_ids": [setup["experiment_id"]], "max_results": digit}),
            s.post(base + API + "experiments/search", json={"max_results": digit}),
            s.post(base + API + "logged-models/search", json={"experiment_ids": [digit]}),
            s.post(base + API + "model-versions/create", json={"name": "odd-digits", "source": f"models:/odd-digits/{digit}"}),
            s.get(base + API + "model-versions/get", params={"name": "odd-digits", "version": digit}),
            s.get(base + "/api/2.0/mlflow-artifacts/artifacts", params={"path": f"ml_experiment_{digit}/{digit}"}),
            s.get(forge.base_url + f"/api/v4/projects/{digit}/ml/mlflow" + API + "experiments/search"),
            s.get(forge.base_url + f"/api/v4/projects/{digit}/packages"),
            s.patch(base + API + "logged-models/" + setup["model_id"], json={"status": digit}),
        ]
        for r in checks:
            assert r.status_code < 500, (digit, r.request.method, r.request.url, r.text[:200])
            if r.status_code >= 400:
                assert r.headers["Content-Type"].startswith("application/json"), (digit, r.request.url)
        for page in (f"/demo/mnist/-/ml/experiments/{setup['experiment_id']}/compare?runs={digit}",
                     f"/demo/mnist/-/packages?cursor={digit}", f"/{digit}/-/ml/experiments", f"/demo/mnist/-/ml/experiments?page={digit}"):
            r = s.get(forge.base_url + page)
            assert r.status_code < 500, (digit, page, r.status_code)


# -- encodings and NUL -------------------------------------------------------------------------
def test_invalid_utf8(setup, forge):
    for body in (b'{"name": "\xff\xfe\xfd"}', b'{"name": "ok\xc3\x28"}', b"\xff\xff\xff"):
        assert_mlflow_error(raw(setup, "POST", "experiments/create", data=body, headers={"Content-Type": "application/json"}))
    # In the query string and in the project reference.
    r = setup["session"].get(setup["base"] + API + "experiments/get?experiment_id=%ff%fe")
    assert_mlflow_error(r, (400, 404))
    r = setup["session"].get(forge.base_url + "/api/v4/projects/%ff%fe/ml/mlflow" + API + "experiments/search")
    assert_mlflow_error(r, (404,))
    # In a token header: just not authenticated.
    r = requests.get(setup["base"] + API + "experiments/search", headers={"PRIVATE-TOKEN": b"\xff\xfe".decode("latin-1")})
    assert_mlflow_error(r, (401,))


def test_nul_bytes(setup):
    run_id = setup["run"]["info"]["run_id"]
    cases = [
        ("experiments/create", {"name": "nul\x00name"}),
        ("runs/log-parameter", {"run_id": run_id, "key": "k\x00", "value": "v"}),
        ("runs/log-parameter", {"run_id": run_id, "key": "knul", "value": "v\x00v"}),
        ("runs/set-tag", {"run_id": run_id, "key": "t", "value": "\x00"}),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m\x00", "value": 1, "timestamp": 1}]}),
        ("runs/search", {"experiment_ids": [setup["experiment_id"]], "filter": "params.lr = '\x00'"}),
        ("runs/create", {"experiment_id": setup["experiment_id"], "run_name": "a\x00b"}),
        ("registered-models/create", {"name": "m\x00"}),
        ("runs/get", {"run_id": "\x00"}),
    ]
    for endpoint, body in cases:
        r = raw(setup, "POST" if endpoint != "runs/get" else "GET", endpoint,
                data=json.dumps(body) if endpoint != "runs/get" else None,
                params=body if endpoint == "runs/get" else None, headers={"Content-Type": "application/json"})
        if r.status_code == 200:
            continue  # stored as given (SQLite keeps NUL) - still a clean answer
        assert_mlflow_error(r, (400, 404))
    # Nothing half-written: the run is still readable and consistent.
    assert raw(setup, "GET", "runs/get", params={"run_id": run_id}).status_code == 200


def test_lone_surrogates_are_a_clean_400_and_write_nothing(setup):
    """JSON may escape a lone surrogate (\\ud800), which no database can store as text:
    a 400, not a 500, and the batch it came in writes nothing."""
    run_id = setup["run"]["info"]["run_id"]
    cases = [
        ("runs/set-tag", '{"run_id": "%s", "key": "sur", "value": "a\\ud800b"}' % run_id),
        ("experiments/create", '{"name": "sur\\udfffname"}'),
        ("runs/log-batch", '{"run_id": "%s", "params": [{"key": "p_sur", "value": "ok"}], '
                           '"tags": [{"key": "t_sur", "value": "x\\ud800"}]}' % run_id),
    ]
    for endpoint, body in cases:
        assert "\\ud" in body  # sent escaped, as JSON allows
        body_json = assert_mlflow_error(raw(setup, "POST", endpoint, data=body, headers={"Content-Type": "application/json"}))
        assert body_json["error_code"] == "INVALID_PARAMETER_VALUE", body_json
    data = raw(setup, "GET", "runs/get", params={"run_id": run_id}).json()["run"]["data"]
    assert "p_sur" not in {p["key"] for p in data.get("params", [])}  # the batch was all or nothing
    assert not {"sur", "t_sur"} & {t["key"] for t in data.get("tags", [])}


# -- SQL-looking filters ----------------------------------------------------------------------
SQL_FILTERS = [
    "params.lr = '0.1' OR 1=1", "params.lr = '0.1'; DROP TABLE glml_runs; --", "params.lr = '' OR ''=''",
    "metrics.loss < 1 UNION SELECT * FROM forge_personal_access_tokens", "tags.`x` = 'a' --", "params.`lr' OR '1'='1` = '1'",
    "attributes.run_id IN ('a') OR 1=1", "attributes.status = 'FINISHED' AND (SELECT 1) = 1", "params.lr LIKE '%' ESCAPE '\\'",
    "params.lr = \"0.1\" /* comment */", "metrics.loss = 1e999", "metrics.loss > -1 AND metrics.loss < 'x'",
    "params.lr ILIKE '%'' OR ''1''=''1'", "attributes.start_time > 0; SELECT pg_sleep(10)", "`params`.`lr` = '1'",
    "params.lr = '0.1' AND params.lr = '0.1' AND " * 30 + "params.lr = '0.1'", "tags.\"mlflow.runName\" = '' OR 1",
    "datasets.name IN ('a', (SELECT name FROM glml_experiments))", "params.lr = 0x31", "run_name = 'x' OR run_name != 'x'",
]


def test_sql_looking_filters_are_parsed_not_executed(setup):
    for text in SQL_FILTERS:
        for endpoint, body in (("runs/search", {"experiment_ids": [setup["experiment_id"]], "filter": text}),
                               ("experiments/search", {"filter": text}), ("registered-models/search", {"filter": text}),
                               ("model-versions/search", {"filter": text}), ("logged-models/search", {"experiment_ids": [setup["experiment_id"]], "filter": text})):
            r = raw(setup, "POST", endpoint, data=json.dumps(body), headers={"Content-Type": "application/json"})
            if r.status_code == 200:
                assert setup["marker"] not in r.text, (endpoint, text)
                continue
            assert_mlflow_error(r, (400,))
    for order in ("metrics.loss; DROP TABLE glml_runs", "params.lr DESC, (SELECT 1)", "attributes.start_time ASC --"):
        r = raw(setup, "POST", "runs/search", data=json.dumps({"experiment_ids": [setup["experiment_id"]], "order_by": [order]}),
                headers={"Content-Type": "application/json"})
        assert r.status_code == 200 or assert_mlflow_error(r)
    # Tables intact, results still right.
    r = raw(setup, "POST", "runs/search", data=json.dumps({"experiment_ids": [setup["experiment_id"]], "filter": "params.lr = '0.1'"}),
            headers={"Content-Type": "application/json"})
    assert [x["info"]["run_id"] for x in r.json()["runs"]] == [setup["run"]["info"]["run_id"]]


# -- path traversal -----------------------------------------------------------------------------
TRAVERSAL = [
    "../x.txt", "../../etc/passwd", "../../../../../../../../etc/passwd", "a/../../b.txt", "a/./../../b.txt", "./x.txt",
    "..", ".", "a/..", "a/.", "/etc/passwd", "//etc/passwd", "%2e%2e/x.txt", "%2e%2e%2fx.txt", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "..%2fx.txt", "..%252fx.txt", "%252e%252e%252fx.txt", "..\\x.txt", "..\\..\\windows\\win.ini", "a\\..\\..\\b",
    "C:\\Windows\\win.ini", "\\\\server\\share\\x", "x.txt%00.png", "x\x00.txt", "..%00/x.txt", "%00", "a//b.txt", "a/",
    "a" * 5000, "a/" * 600 + "x", ("é" * 200) + ".txt", "..%c0%afx.txt", "%c0%ae%c0%ae/x.txt", "\u2025/x.txt", "\uff0e\uff0e/x.txt",
    "~/x.txt", "..;/x.txt", " ../x.txt", "x.txt\r\nSet-Cookie: a=b", "%0d%0aLocation: http://evil.example/",
]


def _quote_path(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/%")


def _stored_files(root: str) -> set[str]:
    found = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            found.add(os.path.join(dirpath, name))
    return found


def raw_request(base_url: str, method: str, target: str, body: bytes = b"", headers: Optional[dict] = None):
    """Send ``target`` byte for byte: HTTP libraries remove '..' segments before
    sending, which would hide exactly what is tested here."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, {k: v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_path_traversal_against_packages_and_artifacts(setup, forge):
    assert len(TRAVERSAL) >= 30
    storage_root = os.path.abspath(forge.app.config["GL_ML_TRACKING_STORAGE_PATH"])
    parent = os.path.dirname(storage_root)
    before_outside = {p for p in _stored_files(parent) if not p.startswith(storage_root)}
    auth = {"Authorization": f"Bearer {forge.owner_token}"}
    tracking_path = setup["base"][len(forge.base_url):]
    accepted = []
    for payload in TRAVERSAL:
        quoted = _quote_path(payload)
        targets = [
            f"/api/v4/projects/1/packages/generic/trav/1.0.0/{quoted}",
            f"{tracking_path}/api/2.0/mlflow-artifacts/artifacts/{setup['artifact_dir']}/{quoted}",
            f"{tracking_path}/api/2.0/mlflow-artifacts/artifacts/{quoted}",
        ]
        for target in targets:
            status, headers, body = raw_request(forge.base_url, "PUT", target, b"traversal body", auth)
            assert status < 500, (payload, target, status, body[:200])
            if status < 300:
                accepted.append(payload)
            else:
                assert status in (400, 404), (payload, target, status, body[:200])
                assert headers.get("Content-Type", "").startswith("application/json"), (payload, body[:200])
            status, headers, body = raw_request(forge.base_url, "GET", target, b"", auth)
            assert status < 500, (payload, target)
            assert b"root:" not in body and b"[fonts]" not in body
            for header, value in headers.items():
                assert "\n" not in value and "evil.example" not in value, (payload, header)
        s = setup["session"]
        r = s.get(setup["base"] + "/api/2.0/mlflow-artifacts/artifacts", params={"path": payload})
        assert r.status_code < 500, payload
        r = s.get(setup["base"] + API + "artifacts/list", params={"run_id": setup["run"]["info"]["run_id"], "path": payload})
        assert r.status_code < 500, payload
        r = s.post(setup["base"] + "/api/2.0/mlflow-artifacts/mpu/create/" + setup["artifact_dir"],
                   json={"path": payload, "num_parts": 1})
        assert r.status_code < 500, payload
    # Whatever was accepted is listed under a clean relative name inside the package.
    s = setup["session"]
    listing = s.get(forge.base_url + "/api/v4/projects/1/packages", params={"package_name": "trav"})
    for package in listing.json() if listing.status_code == 200 else []:
        files = s.get(forge.base_url + f"/api/v4/projects/1/packages/{package['id']}/package_files", params={"per_page": 100}).json()
        for f in files:
            name = f["file_name"]
            assert not name.startswith(("/", "\\")) and ".." not in name.split("/") and "\\" not in name and "\x00" not in name, name
    after_outside = {p for p in _stored_files(parent) if not p.startswith(storage_root)}
    assert after_outside == before_outside, after_outside - before_outside
    assert not [p for p in accepted if ".." in p.replace("\\", "/").split("/")], accepted


# -- stored script payloads ------------------------------------------------------------------
XSS = ['<script>alert("glml-xss")</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)",
       "<svg/onload=alert(1)>", "{{7*7}}", "';alert(1);//", "</textarea><script>alert(2)</script>",
       '=HYPERLINK("http://evil.example","x")']


def test_script_payloads_round_trip_as_data(setup, forge):
    s, base = setup["session"], setup["base"]
    exp = s.post(base + API + "experiments/create", json={"name": "xss " + XSS[0] + uuid.uuid4().hex[:6],
                                                          "tags": [{"key": "note", "value": XSS[1]}]})
    assert exp.status_code == 200
    exp_id = exp.json()["experiment_id"]
    run = s.post(base + API + "runs/create", json={"experiment_id": exp_id, "run_name": XSS[3],
                                                   "tags": [{"key": "mlflow.note.content", "value": "\n".join(XSS)}]}).json()["run"]
    run_id = run["info"]["run_id"]
    r = s.post(base + API + "runs/log-batch", json={"run_id": run_id,
                                                     "params": [{"key": f"p{i}", "value": v} for i, v in enumerate(XSS)],
                                                     "tags": [{"key": f"t{i}", "value": v} for i, v in enumerate(XSS)],
                                                     "metrics": [{"key": "m", "value": 1, "timestamp": 1}]})
    assert r.status_code == 200, r.text
    got = s.get(base + API + "runs/get", params={"run_id": run_id})
    assert got.headers["Content-Type"].startswith("application/json")
    data = got.json()["run"]["data"]
    assert {p["value"] for p in data["params"]} == set(XSS)  # stored and returned exactly, as data
    # An HTML artifact is served as an attachment that cannot run on the forge's origin.
    path = run["info"]["artifact_uri"].split(":/", 1)[1].lstrip("/") + "/page.html"
    put = s.put(base + "/api/2.0/mlflow-artifacts/artifacts/" + path, data=XSS[0].encode(), headers={"Content-Type": "text/html"})
    assert put.status_code == 200
    down = s.get(base + "/api/2.0/mlflow-artifacts/artifacts/" + path)
    assert down.content == XSS[0].encode()
    assert down.headers.get("X-Content-Type-Options") == "nosniff"
    assert "attachment" in down.headers.get("Content-Disposition", "")
    assert "sandbox" in down.headers.get("Content-Security-Policy", "") or not down.headers["Content-Type"].startswith("text/html")
    # Pages (when the UI is mounted) show the payloads escaped, never as markup.
    if any(r.endpoint.startswith("gl_ml_tracking_ui.") for r in forge.app.url_map.iter_rules()):
        with forge.app.app_context():
            from gl_ml_tracking.models import Run
            from gl_ml_tracking import get_state

            iid = get_state().session.query(Run).filter_by(run_uuid=run_id).one().iid
        model_name = "xss-model-" + uuid.uuid4().hex[:6]
        made = s.post(base + API + "registered-models/create", json={"name": model_name, "description": "\n".join(XSS),
                                                                     "tags": [{"key": "note", "value": XSS[6]}]})
        assert made.status_code == 200, made.text
        version = s.post(base + API + "model-versions/create", json={"name": model_name, "source": run["info"]["artifact_uri"],
                                                                     "run_id": run_id, "description": XSS[0]})
        assert version.status_code == 200, version.text
        for page in (f"/demo/mnist/-/ml/experiments/{exp_id}", f"/demo/mnist/-/ml/candidates/{iid}", "/demo/mnist/-/ml/experiments",
                     f"/demo/mnist/-/ml/experiments/{exp_id}/compare?run_ids={run_id}", "/demo/mnist/-/ml/models",
                     f"/demo/mnist/-/ml/models/{model_name}", f"/demo/mnist/-/ml/experiments/{exp_id}.csv"):
            html = s.get(forge.base_url + page)
            assert html.status_code == 200, (page, html.status_code)
            if page.endswith(".csv"):
                # Spreadsheet formula injection: cells starting with = + - @ are neutralised or quoted.
                assert "=HYPERLINK" in html.text  # the value is exported...
                assert "\n=" not in html.text and ",=" not in html.text and '"=' not in html.text, html.text[:300]  # ...not as a formula
                continue
            for payload in ('<script>alert("glml-xss")</script>', "<img src=x onerror", "<svg/onload", "</textarea><script>"):
                assert payload not in html.text, (page, payload)
            assert "49" not in html.text.split("{{7*7}}")[0][-5:]  # no template evaluation of stored text


def test_errors_never_echo_html(setup):
    r = raw(setup, "GET", "experiments/get", params={"experiment_id": "<script>alert(1)</script>"})
    body = assert_mlflow_error(r, (400, 404))
    assert r.headers["Content-Type"].startswith("application/json")
    assert isinstance(body["message"], str)
    r = setup["session"].get(setup["base"] + API + "no/such/<script>endpoint")
    assert_mlflow_error(r, (404,))


def test_wrong_typed_arguments_name_the_parameter_and_write_nothing(setup):
    """The route's schema refuses a wrong-typed or missing argument before the
    service runs: MLflow's 400 INVALID_PARAMETER_VALUE naming the parameter, and
    nothing written."""
    s, base, run_id = setup["session"], setup["base"], setup["run"]["info"]["run_id"]
    cases = [
        ("runs/search", {"experiment_ids": [setup["experiment_id"]], "max_results": "ten"}, "max_results"),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "typed_ok", "value": 1.0, "timestamp": 1},
                                                          {"key": "typed_bad", "value": [1], "timestamp": 1}]},
         "metrics.value"),
        ("runs/log-metric", {"run_id": run_id, "value": 1.0, "timestamp": 1}, "key"),
        ("runs/log-metric", {"run_id": run_id, "key": "typed_ts", "value": 1.0, "timestamp": "soon"}, "timestamp"),
    ]
    for endpoint, body, name in cases:
        body = assert_mlflow_error(s.post(base + API + endpoint, json=body))
        assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
        assert f"'{name}'" in body["message"], body
    metrics = s.get(base + API + "runs/get", params={"run_id": run_id}).json()["run"]["data"].get("metrics", [])
    assert not {m["key"] for m in metrics} & {"typed_ok", "typed_bad", "typed_ts"}
