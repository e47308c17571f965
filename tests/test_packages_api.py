"""The GitLab-compatible generic packages API against the live forge (SQLite and PostgreSQL):
upload, download, HEAD, Range, listing and pagination, deletion, validation, size limit
and who may do what."""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import delete, select

from tests.support.liveserver import another_forge


def _uid() -> str:
    return uuid.uuid4().hex[:8]


class Api:
    """requests against one project's packages API with one token."""

    def __init__(self, forge, token, project=1):
        self.base = f"{forge.base_url}/api/v4/projects/{project}/packages"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def url(self, suffix=""):
        return self.base + suffix

    def put(self, name, version, path, data, **kw):
        return requests.put(self.url(f"/generic/{name}/{version}/{path}"), data=data,
                            headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def get(self, suffix="", **kw):
        return requests.get(self.url(suffix), headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def head(self, suffix="", **kw):
        return requests.head(self.url(suffix), headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def delete(self, suffix="", **kw):
        return requests.delete(self.url(suffix), headers=self.headers, **kw)

    def package(self, name, version):
        found = [p for p in self.get("", params={"package_name": name, "per_page": 100}).json()
                 if p["name"] == name and p["version"] == version]
        return found[0] if found else None


def raw_request(base_url, method, raw_path, token, body=b""):
    """Send ``raw_path`` byte for byte (requests/urllib3 would normalize '..' segments away)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, raw_path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


@pytest.fixture
def api(forge):
    return Api(forge, forge.owner_token)


# --------------------------------------------------------------------------- round trips


def test_upload_download_head_and_sha256(api):
    name, data = f"pkg-{_uid()}", os.urandom(300_000) + b"end"
    resp = api.put(name, "1.0.0", "dir/sub/model.bin", data)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert body["file_md5"] == hashlib.md5(data).hexdigest()
    assert body["size"] == len(data) and body["file_name"] == "dir/sub/model.bin"

    got = api.get(f"/generic/{name}/1.0.0/dir/sub/model.bin")
    assert got.status_code == 200 and got.content == data
    assert got.headers["Accept-Ranges"] == "bytes"
    assert got.headers["ETag"] == f'"{body["file_sha256"]}"'
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Disposition"].startswith("attachment")

    head = api.head(f"/generic/{name}/1.0.0/dir/sub/model.bin")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(data)

    not_modified = api.get(f"/generic/{name}/1.0.0/dir/sub/model.bin",
                           headers={"If-None-Match": got.headers["ETag"]})
    assert not_modified.status_code == 304

    missing = api.get(f"/generic/{name}/1.0.0/dir/sub/other.bin")
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/json"


def test_range_requests(api):
    name, data = f"rng-{_uid()}", bytes(range(256)) * 40
    assert api.put(name, "1", "f.bin", data).status_code == 201
    path = f"/generic/{name}/1/f.bin"
    for header, start, end in (("bytes=0-9", 0, 9), ("bytes=100-", 100, len(data) - 1),
                               ("bytes=-16", len(data) - 16, len(data) - 1),
                               ("bytes=5000-999999", 5000, len(data) - 1)):
        resp = api.get(path, headers={"Range": header})
        assert resp.status_code == 206, header
        assert resp.content == data[start:end + 1], header
        assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
        assert int(resp.headers["Content-Length"]) == end - start + 1
    bad = api.get(path, headers={"Range": f"bytes={len(data)}-"})
    assert bad.status_code == 416 and bad.headers["Content-Range"] == f"bytes */{len(data)}"
    multi = api.get(path, headers={"Range": "bytes=0-1,5-6"})  # allowed to ignore: full body
    assert multi.status_code == 200 and multi.content == data


def test_reupload_replaces_the_file(api, forge):
    name = f"re-{_uid()}"
    first = api.put(name, "1", "a.txt", b"first version").json()
    second = api.put(name, "1", "a.txt", b"second, longer version").json()
    assert second["id"] == first["id"]  # the same file, replaced
    assert api.get(f"/generic/{name}/1/a.txt").content == b"second, longer version"
    package = api.package(name, "1")
    files = api.get(f"/{package['id']}/package_files").json()
    assert [(f["file_name"], f["size"]) for f in files] == [("a.txt", 22)]
    # The old bytes are gone from storage: exactly one object is referenced and stored.
    with forge.app.app_context():
        from gl_ml_tracking import get_state
        from gl_ml_tracking.models import PackageFile

        state = get_state(forge.app)
        row = state.session.get(PackageFile, first["id"])
        storage = state.get_storage()
        keys = set(storage.iter_keys("projects/"))
        assert row.storage_key in keys
        assert hashlib.sha256(b"".join(storage.open_range(row.storage_key))).hexdigest() == second["file_sha256"]
        state.session.remove()


def test_empty_file_and_content_type(api):
    name = f"ct-{_uid()}"
    assert api.put(name, "1", "empty.txt", b"").status_code == 201
    resp = api.get(f"/generic/{name}/1/empty.txt")
    assert resp.status_code == 200 and resp.content == b""
    assert api.put(name, "1", "page.html", b"<script>alert(1)</script>",
                   headers={"Content-Type": "text/html"}).status_code == 201
    page = api.get(f"/generic/{name}/1/page.html")
    # Served as a download that browsers will not sniff or run.
    assert page.headers["Content-Disposition"].startswith("attachment")
    assert page.headers["Content-Security-Policy"] == "sandbox"


def test_odd_file_names(api):
    name = f"odd-{_uid()}"
    for path in ("my file (1).txt", "données.txt", "dir with space/été+plus.csv", "a%20b.txt"):
        from urllib.parse import quote

        resp = api.put(name, "1", quote(path), path.encode())
        assert resp.status_code == 201, (path, resp.text)
        assert resp.json()["file_name"] == path
        assert api.get(f"/generic/{name}/1/{quote(path)}").content == path.encode()


def test_concurrent_uploads_to_one_new_package(api, forge):
    from concurrent.futures import ThreadPoolExecutor

    from gl_ml_tracking import get_state

    with forge.app.app_context():
        storage = get_state(forge.app).get_storage()
        before = set(storage.iter_keys())
    name = f"conc-{_uid()}"
    bodies = {i: f"upload {i};".encode() * 500 for i in range(16)}

    def upload(i):
        return api.put(name, "1", f"f{i % 4}.bin", bodies[i])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(upload, range(16)))
    assert [r.status_code for r in results] == [201] * 16, [r.text for r in results if r.status_code != 201]
    package = api.package(name, "1")
    files = api.get(f"/{package['id']}/package_files").json()
    assert sorted(f["file_name"] for f in files) == ["f0.bin", "f1.bin", "f2.bin", "f3.bin"]
    for f in files:
        content = api.get(f"/generic/{name}/1/{f['file_name']}").content
        slot = int(f["file_name"][1])
        assert content in [bodies[i] for i in range(slot, 16, 4)]  # one whole upload, never a mix
        assert hashlib.sha256(content).hexdigest() == f["file_sha256"]
    with forge.app.app_context():
        assert len(set(get_state(forge.app).get_storage().iter_keys()) - before) == 4  # replaced ones deleted


# --------------------------------------------------------------------------- listing


def test_list_filter_and_offset_pagination(api):
    tag = _uid()
    for i in range(5):
        assert api.put(f"list-{tag}", f"{i}.0", "f.txt", b"x").status_code == 201
    assert api.put(f"other-{tag}", "1.0", "f.txt", b"x").status_code == 201

    everything = api.get("", params={"package_name": tag, "per_page": 100}).json()
    assert {p["name"] for p in everything} == {f"list-{tag}", f"other-{tag}"}
    first = api.get("", params={"package_name": f"list-{tag}", "per_page": 2, "order_by": "version"})
    assert first.status_code == 200
    assert [p["version"] for p in first.json()] == ["0.0", "1.0"]
    assert first.headers["X-Total"] == "5" and first.headers["X-Total-Pages"] == "3"
    assert first.headers["X-Next-Page"] == "2" and 'rel="next"' in first.headers["Link"]
    third = api.get("", params={"package_name": f"list-{tag}", "per_page": 2, "page": 3, "order_by": "version"})
    assert [p["version"] for p in third.json()] == ["4.0"] and third.headers["X-Next-Page"] == ""
    desc = api.get("", params={"package_name": f"list-{tag}", "order_by": "version", "sort": "desc"}).json()
    assert [p["version"] for p in desc] == ["4.0", "3.0", "2.0", "1.0", "0.0"]
    one = everything[0]
    assert one["package_type"] == "generic" and one["file_count"] == 1
    assert one["_links"]["delete_api_path"].endswith(f"/packages/{one['id']}")
    assert api.get("", params={"package_type": "ml_model", "package_name": tag}).json() == []
    assert api.get("", params={"package_type": "nuget"}).status_code == 400
    assert api.get("", params={"per_page": "x"}).status_code == 400


def test_keyset_pagination_follows_links(api):
    tag = _uid()
    for i in range(7):
        api.put(f"ks-{tag}", f"{i}", "f.txt", b"x")
    seen, url, pages = [], None, 0
    resp = api.get("", params={"package_name": f"ks-{tag}", "per_page": 3, "pagination": "keyset"})
    while True:
        assert resp.status_code == 200
        pages += 1
        seen += [p["version"] for p in resp.json()]
        link = resp.headers.get("Link")
        if not link:
            break
        url = link.split(";")[0].strip("<> ")
        resp = requests.get(url, headers=api.headers)
    assert seen == [str(i) for i in range(7)] and pages == 3
    assert api.get("", params={"cursor": "not-a-cursor!"}).status_code == 400


def test_get_package_files_and_delete(api):
    name = f"del-{_uid()}"
    api.put(name, "1", "a.txt", b"a")
    api.put(name, "1", "b/c.txt", b"bc")
    package = api.package(name, "1")
    assert api.get(f"/{package['id']}").json()["name"] == name
    files = api.get(f"/{package['id']}/package_files").json()
    assert [f["file_name"] for f in files] == ["a.txt", "b/c.txt"]
    assert files[1]["file_sha256"] == hashlib.sha256(b"bc").hexdigest()
    download = api.get(f"/{package['id']}/package_files/{files[1]['id']}/download")
    assert download.content == b"bc"

    assert api.delete(f"/{package['id']}/package_files/{files[0]['id']}").status_code == 204
    assert api.get(f"/generic/{name}/1/a.txt").status_code == 404
    assert api.get(f"/generic/{name}/1/b/c.txt").content == b"bc"
    # Deleting the last file deletes the package, as GitLab does.
    assert api.delete(f"/{package['id']}/package_files/{files[1]['id']}").status_code == 204
    assert api.get(f"/{package['id']}").status_code == 404

    api.put(name, "2", "x.txt", b"x")
    second = api.package(name, "2")
    assert api.delete(f"/{second['id']}").status_code == 204
    assert api.get(f"/{second['id']}").status_code == 404
    assert api.get(f"/generic/{name}/2/x.txt").status_code == 404
    assert api.delete(f"/{second['id']}").status_code == 404
    assert api.get("/999999999").status_code == 404


# --------------------------------------------------------------------------- validation


TRAVERSAL_PAYLOADS = [
    # (name, version, raw file path as sent on the wire)
    ("p", "1", "../escape.txt"),
    ("p", "1", "a/../../escape.txt"),
    ("p", "1", "a/../b.txt"),
    ("p", "1", "./a.txt"),
    ("p", "1", "a/./b.txt"),
    ("p", "1", ".."),
    ("p", "1", "a/.."),
    ("p", "1", "%2e%2e/escape.txt"),
    ("p", "1", "%2E%2E/escape.txt"),
    ("p", "1", "a/%2e%2e/%2e%2e/escape.txt"),
    ("p", "1", ".%2e/escape.txt"),
    ("p", "1", "%2e%2e%2fescape.txt"),
    ("p", "1", "%2e%2e%2Fescape.txt"),
    ("p", "1", "a%2F..%2F..%2Fescape.txt"),
    ("p", "1", "%252e%252e/escape.txt"),
    ("p", "1", "%252e%252e%252fescape.txt"),
    ("p", "1", "%ef%bc%8e%ef%bc%8e/escape.txt"),  # fullwidth dots
    ("p", "1", "..%5cescape.txt"),
    ("p", "1", "..%5C..%5Cwindows%5Cwin.ini"),
    ("p", "1", "a%5cb.txt"),
    ("p", "1", "C:%5Cwindows%5Cwin.ini"),
    ("p", "1", "C:/windows/win.ini"),
    ("p", "1", "%2Fetc%2Fpasswd"),
    ("p", "1", "/etc/passwd"),
    ("p", "1", "a//b.txt"),
    ("p", "1", "a/b/"),
    ("p", "1", "nul%00.txt"),
    ("p", "1", "a%00/../b"),
    ("p", "1", "new%0aline.txt"),
    ("p", "1", "tab%09.txt"),
    ("p", "1", "del%7f.txt"),
    ("p", "1", "esc%1b.txt"),
    ("p", "1", "c1%c2%85.txt"),
    ("p", "1", "x" * 1100),
    ("p", "1", "d/" + "y" * 300),
    ("..", "1", "f.txt"),
    ("%2e%2e", "1", "f.txt"),
    ("p%2F..%2F..", "1", "f.txt"),
    ("p%5c..", "1", "f.txt"),
    ("p", "..", "f.txt"),
    ("p", "%2e%2e", "f.txt"),
    ("p", "1%2F..", "f.txt"),
    ("p%00", "1", "f.txt"),
    ("p", "1%00", "f.txt"),
    ("p%20q", "1", "f.txt"),
    ("n" * 300, "1", "f.txt"),
    ("p", "v" * 300, "f.txt"),
    ("-p", "1", "f.txt"),
]


def test_path_traversal_and_bad_names_are_refused(api, forge):
    assert len(TRAVERSAL_PAYLOADS) >= 30
    prefix = "/api/v4/projects/1/packages/generic/"
    with forge.app.app_context():
        from gl_ml_tracking import get_state

        storage = get_state(forge.app).get_storage()
        root = os.path.realpath(storage.root)
    before = _files_around(root)
    for name, version, path in TRAVERSAL_PAYLOADS:
        raw = f"{prefix}{name}/{version}/{path}"
        status, ctype, body = raw_request(forge.base_url, "PUT", raw, forge.owner_token, b"payload")
        assert status in (400, 404), (raw, status, body[:200])
        assert ctype.startswith("application/json"), (raw, ctype)
        status, _, _ = raw_request(forge.base_url, "GET", raw, forge.owner_token)
        assert status in (400, 404), raw
    # Most are refused by validation with a 400 that says why (not merely unrouted).
    status, _, body = raw_request(forge.base_url, "PUT", prefix + "p/1/a/%2e%2e/b.txt", forge.owner_token, b"x")
    assert status == 400 and b"'..'" in body
    status, _, body = raw_request(forge.base_url, "PUT", prefix + "p/1/a%5cb.txt", forge.owner_token, b"x")
    assert status == 400 and b"backslash" in body
    status, _, body = raw_request(forge.base_url, "PUT", prefix + "p/1/nul%00.txt", forge.owner_token, b"x")
    assert status == 400 and b"control" in body
    # Nothing was written anywhere: no new file in or beside the storage root, no package.
    assert _files_around(root) == before
    names = {p["name"] for p in Api(forge, forge.owner_token).get("", params={"per_page": 100}).json()}
    assert not names & {"p", "..", "p q", "-p"}


def _files_around(root):
    """Every file under the storage root's parent (where an escape would land)."""
    found = set()
    for dirpath, _dirs, files in os.walk(os.path.dirname(root)):
        for f in files:
            found.add(os.path.join(dirpath, f))
    return found


# --------------------------------------------------------------------------- access


def test_authentication_and_permissions(api, forge):
    name = f"auth-{_uid()}"
    assert api.put(name, "1", "f.txt", b"owner").status_code == 201
    anonymous = Api(forge, None)
    assert anonymous.get("").status_code == 401
    assert anonymous.put(name, "1", "g.txt", b"x").status_code == 401

    outsider = Api(forge, forge.outsider_token)
    # The public project is readable by the outsider, but not writable.
    assert outsider.get(f"/generic/{name}/1/f.txt").content == b"owner"
    refused = outsider.put(name, "1", "g.txt", b"x")
    assert refused.status_code == 403
    package = api.package(name, "1")
    assert outsider.delete(f"/{package['id']}").status_code == 403
    assert api.get(f"/generic/{name}/1/g.txt").status_code == 404

    # A read_api token of the owner can read but not upload.
    with forge.app.app_context():
        from examples.forge import auth
        from examples.forge.models import User, db

        owner = db.session.scalar(db.select(User).where(User.username == "demo"))
        _row, read_token = auth.create_personal_access_token(owner, f"ro-{_uid()}", ("read_api",))
        db.session.commit()
        db.session.remove()
    reader = Api(forge, read_token)
    assert reader.get(f"/generic/{name}/1/f.txt").content == b"owner"
    assert reader.put(name, "1", "h.txt", b"x").status_code == 403
    assert api.get(f"/generic/{name}/1/h.txt").status_code == 404


def test_private_project_package_invisible_to_outsider(forge):
    owner = Api(forge, forge.owner_token, project=2)
    name = f"secret-{_uid()}"
    assert owner.put(name, "1", "s.txt", b"secret").status_code == 201
    package = owner.package(name, "1")
    for project_ref in (2, "demo%2Fsecret"):
        outsider = Api(forge, forge.outsider_token, project=project_ref)
        for resp in (outsider.get(f"/generic/{name}/1/s.txt"), outsider.get(""),
                     outsider.get(f"/{package['id']}"), outsider.put(name, "1", "t.txt", b"x"),
                     outsider.delete(f"/{package['id']}")):
            assert resp.status_code == 404, resp.url
            assert b"secret" not in resp.content or b"Project Not Found" in resp.content
    # Indistinguishable from a project that does not exist.
    ghost = Api(forge, forge.outsider_token, project=987654)
    assert ghost.get("").status_code == 404 and ghost.get("").json() == \
        Api(forge, forge.outsider_token, project=2).get("").json()
    # Another project's package id does not leak through project 1 either.
    assert Api(forge, forge.owner_token, project=1).get(f"/{package['id']}").status_code == 404
    assert owner.get(f"/generic/{name}/1/s.txt").content == b"secret"


def test_project_by_full_path(forge):
    by_path = Api(forge, forge.owner_token, project="demo%2Fmnist")
    name = f"path-{_uid()}"
    assert by_path.put(name, "1", "f.txt", b"x").status_code == 201
    assert Api(forge, forge.owner_token, project=1).get(f"/generic/{name}/1/f.txt").content == b"x"


# --------------------------------------------------------------------------- size limit


@pytest.fixture(scope="module")
def small_limit_forge(database_url, tmp_path_factory):
    """A second server on the same database with a 64 KiB file limit."""
    with another_forge(database_url, str(tmp_path_factory.mktemp("storage-small")),
                       {"GL_ML_TRACKING_MAX_FILE_SIZE": 64 * 1024}) as live:
        yield live


def test_file_size_limit(small_limit_forge):
    api = Api(small_limit_forge, small_limit_forge.owner_token)
    name = f"big-{_uid()}"
    assert api.put(name, "1", "ok.bin", b"x" * (64 * 1024)).status_code == 201
    too_big = api.put(name, "1", "big.bin", b"x" * (64 * 1024 + 1))
    assert too_big.status_code == 413

    # Without a Content-Length (chunked), the limit is enforced while streaming.
    def chunks():
        for _ in range(20):
            yield b"y" * 8192

    chunked = api.put(name, "1", "chunked.bin", chunks())
    assert chunked.status_code == 413
    assert api.get(f"/generic/{name}/1/big.bin").status_code == 404
    assert api.get(f"/generic/{name}/1/chunked.bin").status_code == 404
    with small_limit_forge.app.app_context():
        from gl_ml_tracking import get_state

        storage = get_state(small_limit_forge.app).get_storage()
        assert len(list(storage.iter_keys())) == 1  # only ok.bin: refused uploads left nothing


def test_shared_files_survive_until_the_last_reference(api, forge):
    """A registered model version's package sharing a logged model's objects (no copy)."""
    from gl_ml_tracking import get_state
    from gl_ml_tracking.services import package_writes
    from gl_ml_tracking.services import packages as pkg_service

    src = f"src-{_uid()}"
    api.put(src, "1", "model/MLmodel", b"flavors: {}")
    api.put(src, "1", "model/weights.bin", b"w" * 1000)
    api.put(src, "1", "other.txt", b"not part of the model")
    model_name = f"My Model {_uid()}"
    with forge.app.app_context():
        state = get_state(forge.app)
        session, storage = state.session, state.get_storage()
        shared = package_writes.share_files(session, "1", src, "1", model_name, "1", prefix="model")
        session.commit()
        files = {f.file_path: f.storage_key for f in pkg_service.package_files(session, shared)}
        session.remove()
    assert sorted(files) == ["MLmodel", "weights.bin"]
    ml_model = Api(forge, forge.owner_token).get(
        f"/ml_models/{model_name}/1/weights.bin")
    assert ml_model.status_code == 200 and ml_model.content == b"w" * 1000
    listed = api.get("", params={"package_type": "ml_model", "package_name": model_name}).json()
    assert [(p["name"], p["version"], p["file_count"]) for p in listed] == [(model_name, "1", 2)]

    # Deleting the source keeps the objects the model package still uses.
    assert api.delete(f"/{api.package(src, '1')['id']}").status_code == 204
    with forge.app.app_context():
        storage = get_state(forge.app).get_storage()
        assert all(storage.exists(k) for k in files.values())
    assert api.get(f"/ml_models/{model_name}/1/MLmodel").content == b"flavors: {}"
    # Deleting the last reference removes them.
    assert api.delete(f"/{listed[0]['id']}").status_code == 204
    with forge.app.app_context():
        storage = get_state(forge.app).get_storage()
        assert not any(storage.exists(k) for k in files.values())


# --------------------------------------------------------------------------- garbage collection


def _mlflow_post(forge, method, body):
    resp = requests.post(f"{forge.tracking_uri(1)}/api/2.0/mlflow/{method}", json=body,
                         headers={"Authorization": f"Bearer {forge.owner_token}"})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_gc_removes_orphan_packages_and_objects(api, forge):
    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Package, Run, RunTag
    from gl_ml_tracking.services import packages as pkg_service
    from gl_ml_tracking.services.common import now_ms
    from gl_ml_tracking.services.package_storage import new_storage_key

    exp_id = _mlflow_post(forge, "experiments/create", {"name": f"gc-{_uid()}"})["experiment_id"]
    kept_run = _mlflow_post(forge, "runs/create", {"experiment_id": exp_id})["run"]["info"]
    gone_run = _mlflow_post(forge, "runs/create", {"experiment_id": exp_id})["run"]["info"]
    artifacts = f"{forge.tracking_uri(1)}/api/2.0/mlflow-artifacts/artifacts"
    auth = {"Authorization": f"Bearer {forge.owner_token}"}
    for info in (kept_run, gone_run):
        root = info["artifact_uri"].split(":/", 1)[1]
        for name in ("a.txt", "d/b.txt"):
            assert requests.put(f"{artifacts}/{root}/{name}", data=name.encode(), headers=auth).status_code == 200
    user_package = f"user-{_uid()}"
    assert api.put(user_package, "1", "f.txt", b"mine").status_code == 201

    app = forge.app
    with app.app_context():
        state = get_state(app)
        session, storage = state.session, state.get_storage()
        gone_iid = int(gone_run["artifact_uri"].rsplit("/", 1)[1])
        gone_pk = session.scalar(select(Run.id).where(Run.run_uuid == gone_run["run_id"]))
        gone_package = session.scalar(select(Package).where(
            Package.project_id == "1", Package.name == f"ml_experiment_{exp_id}", Package.version == str(gone_iid)))
        gone_keys = [f.storage_key for f in pkg_service.package_files(session, gone_package)]
        # A bulk delete that bypasses the services leaves the run's files behind.
        session.execute(delete(RunTag).where(RunTag.run_id == gone_pk))
        session.execute(delete(Run).where(Run.id == gone_pk))
        session.commit()
        # An object whose row never got committed (two days old), and one being uploaded now.
        old_key = new_storage_key("1")
        name = old_key.rsplit("/", 1)[1]
        old_key = old_key.replace(name, f"{now_ms() - 2 * 86400_000:012x}{name[12:]}")
        storage.save(old_key, io.BytesIO(b"stale"))
        young_key = new_storage_key("1")
        storage.save(young_key, io.BytesIO(b"in flight"))
        session.remove()

    runner = app.test_cli_runner()
    dry = runner.invoke(args=["ml-tracking", "gc", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"ml_experiment_{exp_id}/{gone_iid}" in dry.output and old_key in dry.output
    assert young_key not in dry.output and user_package not in dry.output
    with app.app_context():
        storage = get_state(app).get_storage()
        assert all(storage.exists(k) for k in gone_keys + [old_key, young_key])

    done = runner.invoke(args=["ml-tracking", "gc"])
    assert done.exit_code == 0, done.output
    assert "removed 1 orphan package(s) (2 file(s)), 1 orphan object(s) and " in done.output
    with app.app_context():
        storage = get_state(app).get_storage()
        assert not any(storage.exists(k) for k in gone_keys + [old_key])
        assert storage.exists(young_key)
    kept_root = kept_run["artifact_uri"].split(":/", 1)[1]
    assert requests.get(f"{artifacts}/{kept_root}/d/b.txt", headers=auth).content == b"d/b.txt"
    assert api.get(f"/generic/{user_package}/1/f.txt").content == b"mine"
    again = runner.invoke(args=["ml-tracking", "gc", "-q"])
    assert "removed 0 orphan package(s) (0 file(s)), 0 orphan object(s) and 0 unfinished upload(s)" in again.output



def test_gc_removes_leftovers_of_unfinished_uploads(forge, tmp_path):
    """A save interrupted by a killed server leaves a temp file, an abandoned multipart
    upload its folder: gc removes those untouched for the grace period, not younger ones."""
    import os
    import time

    from gl_ml_tracking import get_state
    from gl_ml_tracking.registry.storage import LocalStorage

    app = forge.app
    with app.app_context():
        storage = get_state(app).get_storage()
    if not isinstance(storage, LocalStorage):
        pytest.skip("S3 keeps no partial objects; its lifecycle rule expires multipart uploads")
    tmp_dir, multipart_dir = os.path.join(storage.root, ".tmp"), os.path.join(storage.root, ".multipart")
    old_tmp, young_tmp = os.path.join(tmp_dir, "upload-old"), os.path.join(tmp_dir, "upload-young")
    for path in (old_tmp, young_tmp):
        with open(path, "wb") as fh:
            fh.write(b"partial")
    old_upload = storage.create_multipart("projects/1/gc/leftover.bin")
    storage.upload_part("projects/1/gc/leftover.bin", old_upload, 1, io.BytesIO(b"part one"))
    young_upload = storage.create_multipart("projects/1/gc/young.bin")
    two_days_ago = time.time() - 2 * 86400
    old_dir = os.path.join(multipart_dir, old_upload)
    for path in [old_tmp, old_dir] + [os.path.join(old_dir, n) for n in os.listdir(old_dir)]:
        os.utime(path, (two_days_ago, two_days_ago))

    runner = app.test_cli_runner()
    dry = runner.invoke(args=["ml-tracking", "gc", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "unfinished upload: .tmp/upload-old" in dry.output and f"unfinished upload: .multipart/{old_upload}" in dry.output
    assert "upload-young" not in dry.output and young_upload not in dry.output
    assert os.path.exists(old_tmp) and os.path.isdir(old_dir)

    done = runner.invoke(args=["ml-tracking", "gc"])
    assert done.exit_code == 0, done.output
    assert "2 unfinished upload(s)" in done.output
    assert not os.path.exists(old_tmp) and not os.path.exists(old_dir)
    assert os.path.exists(young_tmp) and os.path.isdir(os.path.join(multipart_dir, young_upload))
    os.unlink(young_tmp)
    storage.abort_multipart("projects/1/gc/young.bin", young_upload)
