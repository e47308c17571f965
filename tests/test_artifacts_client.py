"""Run artifacts through the unmodified MLflow client, stored in the package registry:
log_artifact(s), log_text/dict/figure/image, list_artifacts at every depth and
download_artifacts, byte-identical (sha256), on SQLite and PostgreSQL, with local storage
and with S3 (a real moto server process), plus the multipart-upload path."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from gl_ml_tracking import get_state
from tests.support import child_env
from tests.support.liveserver import another_forge
from tests.support.s3_server import apply_s3_env


def _sha(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tree(root) -> dict[str, str]:
    """relative path -> sha256 of every file under root."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root).replace(os.sep, "/")] = _sha(full)
    return out


def _new_run(client):
    exp_id = client.create_experiment(f"art-{uuid.uuid4().hex[:8]}")
    return exp_id, client.create_run(exp_id)


def _run_iid(run) -> str:
    # artifact_uri is mlflow-artifacts:/ml_experiment_<experiment id>/<run iid>
    prefix, _, iid = run.info.artifact_uri.rpartition("/")
    assert prefix == f"mlflow-artifacts:/ml_experiment_{run.info.experiment_id}"
    return iid


def _package_files(forge, exp_id, run_iid, token=None):
    api = f"{forge.base_url}/api/v4/projects/1/packages"
    headers = {"Authorization": f"Bearer {token or forge.owner_token}"}
    packages = requests.get(api, params={"package_name": f"ml_experiment_{exp_id}", "per_page": 100},
                            headers=headers).json()
    found = [p for p in packages if p["name"] == f"ml_experiment_{exp_id}" and p["version"] == run_iid]
    if not found:
        return None
    files = requests.get(f"{api}/{found[0]['id']}/package_files", params={"per_page": 100}, headers=headers).json()
    return {f["file_name"]: f for f in files}


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


# --------------------------------------------------------------------------- the checks, shared by every storage


def check_log_artifact_round_trip(client, forge, tmp_path):
    exp_id, run = _new_run(client)
    run_id = run.info.run_id
    data = os.urandom(200_000)
    local = _write(str(tmp_path / "src" / "weights.bin"), data)
    client.log_artifact(run_id, local)
    client.log_artifact(run_id, local, artifact_path="nested/deeper")

    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [("nested", True), ("weights.bin", False)]
    assert top[1].file_size == len(data) and top[0].file_size is None
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id, "nested")] == [("nested/deeper", True)]
    deep = client.list_artifacts(run_id, "nested/deeper")
    assert [(f.path, f.is_dir, f.file_size) for f in deep] == [("nested/deeper/weights.bin", False, len(data))]
    assert client.list_artifacts(run_id, "nested/deeper/weights.bin") == []  # a file lists as nothing
    assert client.list_artifacts(run_id, "no/such/dir") == []

    got = client.download_artifacts(run_id, "nested/deeper/weights.bin", str(tmp_path / "dl1"))
    assert _sha(got) == hashlib.sha256(data).hexdigest()
    whole = client.download_artifacts(run_id, "", str(tmp_path / "dl2"))
    assert _tree(whole) == {"weights.bin": hashlib.sha256(data).hexdigest(),
                            "nested/deeper/weights.bin": hashlib.sha256(data).hexdigest()}

    # Uploads skip md5 (the slowest hash); the package files API computes it when it first
    # lists the file, and keeps it.
    assert _stored_md5s(forge, exp_id, _run_iid(run)) == {"weights.bin": None, "nested/deeper/weights.bin": None}
    # Visible in the package registry right away, with the same checksums.
    files = _package_files(forge, exp_id, _run_iid(run))
    assert set(files) == {"weights.bin", "nested/deeper/weights.bin"}
    assert files["weights.bin"]["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert files["weights.bin"]["file_md5"] == files["nested/deeper/weights.bin"]["file_md5"] == hashlib.md5(data).hexdigest()
    assert files["weights.bin"]["size"] == len(data)
    assert set(_stored_md5s(forge, exp_id, _run_iid(run)).values()) == {hashlib.md5(data).hexdigest()}
    return exp_id, run


def _stored_md5s(forge, exp_id, run_iid) -> dict:
    """{file path: md5 column} of the run's package files, read from the database."""
    from sqlalchemy import select

    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Package, PackageFile

    with forge.app.app_context():
        session = get_state().session
        rows = session.execute(
            select(PackageFile.file_path, PackageFile.md5).join(Package, Package.id == PackageFile.package_id)
            .where(Package.name == f"ml_experiment_{exp_id}", Package.version == str(run_iid))
        ).all()
        session.rollback()
    return dict(rows)


def check_log_artifacts_tree(client, tmp_path):
    _exp_id, run = _new_run(client)
    run_id = run.info.run_id
    src = tmp_path / "tree"
    expected = {}
    for rel, size in (("a.txt", 10), ("d1/b.bin", 70_000), ("d1/d2/c.bin", 1), ("d1/d2/d3/e.json", 500),
                      ("packages/ml/mlflow/f.txt", 3), ("empty.txt", 0)):
        data = os.urandom(size)
        _write(str(src / rel), data)
        expected[rel] = hashlib.sha256(data).hexdigest()
    client.log_artifacts(run_id, str(src), artifact_path="model")

    assert [f.path for f in client.list_artifacts(run_id)] == ["model"]
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id, "model")] == [
        ("model/a.txt", False), ("model/d1", True), ("model/empty.txt", False), ("model/packages", True)]
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id, "model/d1")] == [
        ("model/d1/b.bin", False), ("model/d1/d2", True)]
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id, "model/d1/d2")] == [
        ("model/d1/d2/c.bin", False), ("model/d1/d2/d3", True)]
    assert [f.path for f in client.list_artifacts(run_id, "model/d1/d2/d3")] == ["model/d1/d2/d3/e.json"]
    # Directory download, and the whole run.
    d1 = client.download_artifacts(run_id, "model/d1", str(tmp_path / "dl-d1"))
    assert _tree(d1) == {k[len("d1/"):]: v for k, v in expected.items() if k.startswith("d1/")}
    whole = client.download_artifacts(run_id, "", str(tmp_path / "dl-all"))
    assert _tree(whole) == {"model/" + k: v for k, v in expected.items()}
    return run


# --------------------------------------------------------------------------- local storage (the forge fixture)


def test_log_artifact_with_and_without_path(mlflow_client, forge, tmp_path):
    check_log_artifact_round_trip(mlflow_client, forge, tmp_path)


def test_log_artifacts_nested_directory(mlflow_client, tmp_path):
    check_log_artifacts_tree(mlflow_client, tmp_path)


def test_fluent_logging_helpers(mlflow_client, forge, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    mlflow.set_experiment(f"fluent-{uuid.uuid4().hex[:8]}")
    image = (np.arange(32 * 48 * 3) % 256).astype(np.uint8).reshape(32, 48, 3)
    with mlflow.start_run() as run:
        mlflow.log_text("hello, wörld\n", "notes/hello.txt")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "config/params.json")
        mlflow.log_dict({"k": "v"}, "config/params.yaml")
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [3, 1, 2])
        mlflow.log_figure(fig, "plots/curve.png")
        plt.close(fig)
        mlflow.log_image(image, "images/img.png")
    run_id = run.info.run_id
    assert [f.path for f in mlflow_client.list_artifacts(run_id)] == ["config", "images", "notes", "plots"]
    assert [f.path for f in mlflow_client.list_artifacts(run_id, "config")] == ["config/params.json",
                                                                                  "config/params.yaml"]
    out = tmp_path / "dl"
    assert open(mlflow_client.download_artifacts(run_id, "notes/hello.txt", str(out)), encoding="utf-8").read() \
        == "hello, wörld\n"
    assert json.load(open(mlflow_client.download_artifacts(run_id, "config/params.json", str(out)))) == \
        {"a": 1, "b": [1, 2]}
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config/params.json") == {"a": 1, "b": [1, 2]}
    import yaml

    assert yaml.safe_load(open(mlflow_client.download_artifacts(run_id, "config/params.yaml", str(out)))) == \
        {"k": "v"}
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt") == "hello, wörld\n"
    png = mlflow_client.download_artifacts(run_id, "plots/curve.png", str(out))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    img = mlflow_client.download_artifacts(run_id, "images/img.png", str(out))
    assert (np.asarray(Image.open(img)) == image).all()
    files = _package_files(forge, run.info.experiment_id, _run_iid(mlflow_client.get_run(run_id)))
    assert set(files) == {"notes/hello.txt", "config/params.json", "config/params.yaml", "plots/curve.png",
                          "images/img.png"}
    assert files["notes/hello.txt"]["content_type"].startswith("text/plain")
    assert files["plots/curve.png"]["content_type"] == "image/png"


def test_odd_file_names(mlflow_client, forge, tmp_path):
    exp_id, run = _new_run(mlflow_client)
    run_id = run.info.run_id
    names = ["my file (1).txt", "données.txt", "100% done & more.txt", "a+b=c;d'e.txt"]
    for name in names:
        _write(str(tmp_path / "odd" / name), name.encode())
        mlflow_client.log_artifact(run_id, str(tmp_path / "odd" / name), artifact_path="bin")
    listed = mlflow_client.list_artifacts(run_id, "bin")
    assert sorted(f.path for f in listed) == sorted(f"bin/{n}" for n in names)
    for name in names:
        got = mlflow_client.download_artifacts(run_id, f"bin/{name}", str(tmp_path / "dl"))
        assert open(got, "rb").read() == name.encode()
    assert set(_package_files(forge, exp_id, _run_iid(run))) == {f"bin/{n}" for n in names}


def test_reupload_and_delete_artifacts(mlflow_client, forge, tmp_path):
    exp_id, run = _new_run(mlflow_client)
    run_id = run.info.run_id
    path = _write(str(tmp_path / "v" / "f.txt"), b"one")
    mlflow_client.log_artifact(run_id, path, "d")
    _write(path, b"two, replaced")
    mlflow_client.log_artifact(run_id, path, "d")
    mlflow_client.log_artifact(run_id, path, "e")
    got = mlflow_client.download_artifacts(run_id, "d/f.txt", str(tmp_path / "dl"))
    assert open(got, "rb").read() == b"two, replaced"
    repo = get_artifact_repository(mlflow_client.get_run(run_id).info.artifact_uri)
    repo.delete_artifacts("d")
    assert [f.path for f in mlflow_client.list_artifacts(run_id)] == ["e"]
    repo.delete_artifacts()
    assert mlflow_client.list_artifacts(run_id) == []
    assert _package_files(forge, exp_id, _run_iid(run)) is None  # the emptied version is gone


def test_proxy_http_contract(forge, mlflow_client, tmp_path):
    """What the client relies on, checked on the wire: listing shapes, errors as MLflow JSON."""
    exp_id, run = _new_run(mlflow_client)
    root = _run_iid(run)
    base = forge.tracking_uri(1) + "/api/2.0/mlflow-artifacts/artifacts"
    auth = {"Authorization": f"Bearer {forge.owner_token}"}
    prefix = f"ml_experiment_{exp_id}/{root}"
    assert requests.put(f"{base}/{prefix}/x/y.txt", data=b"abc", headers=auth).status_code == 200
    listing = requests.get(base, params={"path": prefix}, headers=auth).json()
    assert listing == {"files": [{"path": "x", "is_dir": True}]}
    listing = requests.get(base, params={"path": prefix + "/x"}, headers=auth).json()
    assert listing == {"files": [{"path": "y.txt", "is_dir": False, "file_size": 3}]}
    own = requests.get(base, params={"path": prefix + "/x/y.txt"}, headers=auth)
    assert own.status_code == 200 and own.json().get("files", []) == []
    # The levels above a run list as directories.
    assert {"path": root, "is_dir": True} in requests.get(
        base, params={"path": f"ml_experiment_{exp_id}"}, headers=auth).json()["files"]
    ranged = requests.get(f"{base}/{prefix}/x/y.txt", headers={**auth, "Range": "bytes=1-"})
    assert ranged.status_code == 206 and ranged.content == b"bc"

    for bad in (f"{prefix}/%2e%2e/%2e%2e/x.txt", f"{prefix}/a%5cb.txt", f"{prefix}/n%00.txt"):
        resp = requests.put(f"{base}/{bad}", data=b"x", headers=auth)
        assert resp.status_code == 400 and resp.json()["error_code"] == "INVALID_PARAMETER_VALUE", bad
    for missing in (f"ml_experiment_{exp_id}/999999/f.txt", "ml_experiment_999999/1/f.txt", "elsewhere/1/f.txt",
                    f"ml_experiment_{exp_id}/models/m-{'0' * 32}/f.txt"):
        resp = requests.put(f"{base}/{missing}", data=b"x", headers=auth)
        assert resp.status_code == 404 and resp.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", missing
    assert requests.get(f"{base}/{prefix}/x/none.txt", headers=auth).status_code == 404
    assert requests.get(f"{base}/{prefix}/x", headers=auth).status_code == 404  # a directory is not a file

    # "auto": local files would have to be assembled from their parts, byte by byte, so the
    # client is told to send one stream (as the reference server does on local storage).
    info = requests.get(forge.tracking_uri(1) + "/api/3.0/mlflow/server-info", headers=auth).json()
    assert info["multipart_uploads_enabled"] is False and info["multipart_downloads_enabled"] is False


def test_artifact_access_rules(forge, mlflow_client):
    exp_id, run = _new_run(mlflow_client)
    prefix = f"ml_experiment_{exp_id}/{_run_iid(run)}"
    base = forge.tracking_uri(1) + "/api/2.0/mlflow-artifacts/artifacts"
    owner = {"Authorization": f"Bearer {forge.owner_token}"}
    outsider = {"Authorization": f"Bearer {forge.outsider_token}"}
    assert requests.put(f"{base}/{prefix}/f.txt", data=b"x", headers=owner).status_code == 200
    assert requests.get(f"{base}/{prefix}/f.txt").status_code == 401
    assert requests.get(f"{base}/{prefix}/f.txt", headers=outsider).content == b"x"  # public project
    denied = requests.put(f"{base}/{prefix}/g.txt", data=b"x", headers=outsider)
    assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"
    assert requests.delete(f"{base}/{prefix}/f.txt", headers=outsider).status_code == 403
    # The same path in the private project does not exist for the outsider (nor for the owner:
    # experiment ids are per project).
    private = forge.tracking_uri(2) + "/api/2.0/mlflow-artifacts/artifacts"
    assert requests.get(f"{private}/{prefix}/f.txt", headers=outsider).status_code == 404
    assert requests.get(f"{private}/{prefix}/f.txt", headers=owner).status_code == 404


# --------------------------------------------------------------------------- multipart


@pytest.fixture
def small_multipart(monkeypatch):
    """Make the client use the multipart path for files of 5 MB and more, in 5 MB parts."""
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(5 * 1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))


@pytest.fixture
def local_multipart(forge, monkeypatch):
    """Multipart uploads on local storage, which "auto" leaves off. The client caches the
    server-info answer per process, so it is told to try multipart directly."""
    monkeypatch.setattr(get_state(forge.app).config, "multipart_uploads", True)
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")


def check_multipart_upload(client, forge, tmp_path, caplog):
    exp_id, run = _new_run(client)
    data = os.urandom(12 * 1024 * 1024 + 123)
    local = _write(str(tmp_path / "mp" / "big model.bin"), data)
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        client.log_artifact(run.info.run_id, local, "weights")
    requests_seen = " ".join(r.getMessage() for r in caplog.records)
    assert "/mpu/create/" in requests_seen and "/mpu/complete/" in requests_seen
    assert requests_seen.count("/mpu/part/") == 3
    got = client.download_artifacts(run.info.run_id, "weights/big model.bin", str(tmp_path / "dl"))
    assert _sha(got) == hashlib.sha256(data).hexdigest()
    files = _package_files(forge, exp_id, _run_iid(run))
    assert files["weights/big model.bin"]["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert files["weights/big model.bin"]["size"] == len(data)


def test_multipart_upload(mlflow_client, forge, tmp_path, caplog, small_multipart, local_multipart):
    check_multipart_upload(mlflow_client, forge, tmp_path, caplog)


def test_multipart_part_urls_need_the_signed_token(mlflow_client, forge, local_multipart):
    exp_id, run = _new_run(mlflow_client)
    prefix = f"ml_experiment_{exp_id}/{_run_iid(run)}"
    api = forge.tracking_uri(1) + "/api/2.0/mlflow-artifacts"
    owner = {"Authorization": f"Bearer {forge.owner_token}"}
    created = requests.post(f"{api}/mpu/create/{prefix}", json={"path": "/home/me/a.bin", "num_parts": 2},
                            headers=owner).json()
    urls = [c["url"] for c in created["credentials"]]
    assert len(urls) == 2 and all("/mpu/part/" in u for u in urls)
    # A forged or altered token is refused like a missing project; the real one works anonymously.
    forged = urls[0].replace("upload_id=", "upload_id=x")
    assert requests.put(forged, data=b"x").status_code == 403  # the signature does not verify
    other_project = urls[0].replace("/projects/1/", "/projects/2/")
    assert requests.put(other_project, data=b"x").status_code == 404
    etags = []
    for url, chunk in zip(urls, (b"A" * 10, b"B" * 5)):
        resp = requests.put(url, data=chunk)
        assert resp.status_code == 200
        etags.append(resp.headers["ETag"])
    parts = [{"part_number": i + 1, "etag": e} for i, e in enumerate(etags)]
    wrong_target = requests.post(f"{api}/mpu/complete/{prefix}/sub", headers=owner,
                                 json={"path": "a.bin", "upload_id": created["upload_id"], "parts": parts})
    assert wrong_target.status_code == 400
    done = requests.post(f"{api}/mpu/complete/{prefix}", headers=owner,
                         json={"path": "C:\\Users\\me\\a.bin", "upload_id": created["upload_id"], "parts": parts})
    assert done.status_code == 200, done.text
    assert requests.get(f"{api}/artifacts/{prefix}/a.bin", headers=owner).content == b"A" * 10 + b"B" * 5
    # Outsiders cannot start uploads.
    outsider = {"Authorization": f"Bearer {forge.outsider_token}"}
    assert requests.post(f"{api}/mpu/create/{prefix}", json={"path": "b.bin", "num_parts": 1},
                         headers=outsider).status_code == 403


@pytest.mark.parametrize("setting", [False, "auto"])  # "auto" on local storage: off
def test_multipart_disabled_falls_back_to_a_plain_put(mlflow_client, forge, tmp_path, caplog, small_multipart,
                                                     monkeypatch, setting):
    monkeypatch.setattr(get_state(forge.app).config, "multipart_uploads", setting)
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")  # the client tries anyway
    _exp, run = _new_run(mlflow_client)
    data = os.urandom(6 * 1024 * 1024)
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        mlflow_client.log_artifact(run.info.run_id, _write(str(tmp_path / "fb" / "f.bin"), data))
    seen = " ".join(r.getMessage() for r in caplog.records)
    assert "/mpu/create/" in seen and "/mpu/part/" not in seen  # refused, then one PUT
    got = mlflow_client.download_artifacts(run.info.run_id, "f.bin", str(tmp_path / "dl"))
    assert _sha(got) == hashlib.sha256(data).hexdigest()


def test_artifact_stored_signal(mlflow_client, forge, tmp_path):
    from gl_ml_tracking import signals

    received = []

    def receiver(app, **kwargs):  # runs inside the request: read what is needed now
        received.append((app, dict(kwargs, project=kwargs["project"].id, file=kwargs["file"].sha256)))

    signals.artifact_stored.connect(receiver, forge.app)
    try:
        _exp, run = _new_run(mlflow_client)
        mlflow_client.log_artifact(run.info.run_id, _write(str(tmp_path / "s" / "f.txt"), b"hi"), "d")
    finally:
        signals.artifact_stored.disconnect(receiver, forge.app)
    assert len(received) == 1
    app, info = received[0]
    assert app is forge.app
    assert info["package_name"] == f"ml_experiment_{run.info.experiment_id}"
    assert info["version"] == _run_iid(run) and info["file_path"] == "d/f.txt"
    assert info["project"] == 1 and info["file"] == hashlib.sha256(b"hi").hexdigest()


# --------------------------------------------------------------------------- S3 storage


@pytest.fixture(scope="module", params=[False, True], ids=["proxied", "presigned"])
def s3_forge(request, database_url, moto_endpoint, tmp_path_factory):
    """The forge storing artifacts in S3 (same database as ``forge``), downloads either
    proxied or redirected to presigned S3 URLs."""
    import boto3

    bucket = f"glml-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as mp:
        apply_s3_env(mp)
        boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        with another_forge(database_url, str(tmp_path_factory.mktemp("unused")), {
            "GL_ML_TRACKING_STORAGE": "s3", "GL_ML_TRACKING_S3_BUCKET": bucket,
            "GL_ML_TRACKING_S3_PREFIX": "artifacts", "GL_ML_TRACKING_S3_ENDPOINT_URL": moto_endpoint,
            "GL_ML_TRACKING_S3_REGION": "us-east-1", "GL_ML_TRACKING_S3_PRESIGNED_DOWNLOADS": request.param}) as live:
            live.extra.update(bucket=bucket, endpoint=moto_endpoint)
            yield live


@pytest.fixture
def s3_client(s3_forge, monkeypatch):
    from mlflow.tracking import MlflowClient

    apply_s3_env(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", s3_forge.tracking_uri(1))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", s3_forge.owner_token)
    mlflow.set_tracking_uri(s3_forge.tracking_uri(1))
    return MlflowClient()


def _bucket_keys(forge):
    import boto3

    s3 = boto3.client("s3", endpoint_url=forge.extra["endpoint"], region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=forge.extra["bucket"])
    return {obj["Key"] for page in pages for obj in page.get("Contents", ())}


@pytest.mark.s3
def test_s3_round_trip(s3_client, s3_forge, tmp_path):
    before = _bucket_keys(s3_forge)
    _exp, run = check_log_artifact_round_trip(s3_client, s3_forge, tmp_path)
    check_log_artifacts_tree(s3_client, tmp_path)
    added = _bucket_keys(s3_forge) - before
    assert len(added) == 2 + 6 and all(k.startswith("artifacts/projects/1/") for k in added)
    # Deleting artifacts removes the objects from the bucket.
    get_artifact_repository(run.info.artifact_uri).delete_artifacts("nested")
    assert len(_bucket_keys(s3_forge) - before) == 1 + 6


@pytest.mark.s3
def test_s3_multipart_upload(s3_client, s3_forge, tmp_path, caplog, small_multipart):
    info = requests.get(s3_forge.tracking_uri(1) + "/api/3.0/mlflow/server-info",
                        headers={"Authorization": f"Bearer {s3_forge.owner_token}"}).json()
    assert info["multipart_uploads_enabled"] is True  # "auto": S3 assembles the parts itself
    check_multipart_upload(s3_client, s3_forge, tmp_path, caplog)


@pytest.mark.s3
def test_s3_presigned_or_proxied_download(s3_forge, s3_client, tmp_path):
    _exp, run = _new_run(s3_client)
    data = os.urandom(1000)
    s3_client.log_artifact(run.info.run_id, _write(str(tmp_path / "p" / "f.bin"), data))
    url = f"{s3_forge.tracking_uri(1)}/api/2.0/mlflow-artifacts/artifacts/" \
          f"ml_experiment_{run.info.experiment_id}/{_run_iid(run)}/f.bin"
    resp = requests.get(url, headers={"Authorization": f"Bearer {s3_forge.owner_token}"}, allow_redirects=False)
    presigned = s3_forge.app.config["GL_ML_TRACKING_S3_PRESIGNED_DOWNLOADS"]
    if presigned:
        assert resp.status_code == 302 and resp.headers["Location"].startswith(s3_forge.extra["endpoint"])
        assert requests.get(resp.headers["Location"]).content == data  # no token needed: signed
    else:
        assert resp.status_code == 200 and resp.content == data
    got = s3_client.download_artifacts(run.info.run_id, "f.bin", str(tmp_path / "dl"))
    assert open(got, "rb").read() == data


def test_unknown_paths_raise_client_errors(mlflow_client, tmp_path):
    _exp, run = _new_run(mlflow_client)
    with pytest.raises((MlflowException, OSError)):
        mlflow_client.download_artifacts(run.info.run_id, "missing.txt", str(tmp_path))


# --------------------------------------------------------------------------- a big file, memory measured


class RssSampler:
    """Peak resident memory of a process, sampled from a background thread."""

    def __init__(self, pid):
        import psutil

        self.process = psutil.Process(pid)
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = None

    def __enter__(self):
        import threading

        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(0.02):
                self.peak = max(self.peak, self.process.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth_mb(self):
        return (self.peak - self.baseline) / 2**20


@pytest.fixture(scope="module")
def forge_process(forge, database_url, tmp_path_factory):
    """The forge (database already seeded by ``forge``) served by a separate process."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "tests.support.forge_process", database_url,
                             str(tmp_path_factory.mktemp("big-storage"))],
                            stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        line = proc.stdout.readline()  # blocks until the server listens (or the process dies)
        assert line.startswith("PORT "), f"forge process did not start: {line!r}"
        yield proc, f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_big_file_round_trip_with_flat_server_memory(forge_process, forge, tmp_path, monkeypatch):
    import time

    from mlflow.tracking import MlflowClient

    proc, base_url = forge_process
    size_mb = int(os.environ.get("GLML_BIG_FILE_MB") or (1024 if os.environ.get("GLML_FULL_SIZE") == "1" else 64))
    tracking_uri = f"{base_url}/api/v4/projects/1/ml/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", forge.owner_token)
    # One streamed PUT (what every file under 500 MB gets): the path whose memory matters.
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    _exp, run = _new_run(client)  # also warms the server up before the baseline is taken

    local = tmp_path / "big.bin"
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(local, "wb") as f:
        for i in range(size_mb):
            chunk = block[i % 256:] + block[:i % 256]  # every MiB different, cheaply
            digest.update(chunk)
            f.write(chunk)

    with RssSampler(proc.pid) as upload_mem:
        started = time.perf_counter()
        client.log_artifact(run.info.run_id, str(local))
        upload_s = time.perf_counter() - started
    with RssSampler(proc.pid) as download_mem:
        started = time.perf_counter()
        got = client.download_artifacts(run.info.run_id, "big.bin", str(tmp_path / "dl"))
        download_s = time.perf_counter() - started
    assert os.path.getsize(got) == size_mb << 20
    assert _sha(got) == digest.hexdigest()
    print(f"\n{size_mb} MiB: upload {size_mb / upload_s:.0f} MiB/s (server RSS +{upload_mem.growth_mb:.1f} MiB), "
          f"download {size_mb / download_s:.0f} MiB/s (server RSS +{download_mem.growth_mb:.1f} MiB)")
    assert upload_mem.growth_mb < 100 and download_mem.growth_mb < 100
