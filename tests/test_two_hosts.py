"""Two app instances on one host, one PostgreSQL database and one S3 server process,
each gunicorn with examples/gunicorn_conf.py: the real client alternates between them
(create on one, log on the other, multipart parts through the other), a resent batch
is stored once, and the two never share gunicorn's control socket."""
from __future__ import annotations

import hashlib
import os
import uuid

import boto3
import pytest
import requests

from tests.support.livedb import fresh_database
from tests.support.procserver import OWNER_TOKEN, ServerProcess, prepare_database, server_env
from tests.support.s3_server import S3_TEST_ENV, apply_s3_env

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]


@pytest.fixture(scope="module")
def two_hosts(moto_endpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two-hosts")
    bucket = f"glml-two-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        apply_s3_env(mp)
        boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    with fresh_database("postgresql", str(tmp)) as url:
        env = server_env(url, str(tmp / "unused"), {
            **S3_TEST_ENV, "HOME": str(tmp / "home"), "XDG_RUNTIME_DIR": str(tmp / "run"),
            "GL_ML_TRACKING_STORAGE": "s3", "GL_ML_TRACKING_S3_BUCKET": bucket,
            "GL_ML_TRACKING_S3_ENDPOINT_URL": moto_endpoint, "GL_ML_TRACKING_S3_REGION": "us-east-1",
            "GL_ML_TRACKING_MULTIPART_UPLOADS": "true"})
        os.makedirs(env["HOME"]), os.makedirs(env["XDG_RUNTIME_DIR"])
        prepare_database(env)
        hosts = [ServerProcess(env, workers=2, threads=2, log_path=str(tmp / f"host{i}.log")).start() for i in (1, 2)]
        try:
            yield hosts, env
        finally:
            for host in hosts:
                host.stop()


def test_the_client_alternates_between_two_hosts(two_hosts, tmp_path, monkeypatch):
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    (one, two), env = two_hosts
    apply_s3_env(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", OWNER_TOKEN)
    a, b = MlflowClient(one.tracking_uri()), MlflowClient(two.tracking_uri())
    exp = a.create_experiment(f"two-{uuid.uuid4().hex[:6]}")
    run = b.create_run(exp)
    rid = run.info.run_id
    batch = [Metric("loss", 1 / (i + 1), 1000 + i, i) for i in range(60)]
    a.log_batch(rid, metrics=batch)
    b.log_batch(rid, metrics=batch)  # the resend, through the other host
    b.log_metric(rid, "acc", 0.5, timestamp=7, step=1)
    a.log_metric(rid, "acc", 0.5, timestamp=7, step=1)
    assert len(b.get_metric_history(rid, "loss")) == 60 and len(a.get_metric_history(rid, "acc")) == 1

    # Multipart: created on one host, parts through the other, completed on the first.
    prefix = run.info.artifact_uri.split(":/", 1)[1]
    owner = {"Authorization": f"Bearer {OWNER_TOKEN}"}
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1234)]
    created = requests.post(f"{one.tracking_uri()}/api/2.0/mlflow-artifacts/mpu/create/{prefix}",
                            json={"path": "model.bin", "num_parts": 2}, headers=owner, timeout=60)
    assert created.status_code == 200, created.text
    etags = []
    for credential, data in zip(created.json()["credentials"], parts):
        sent = requests.put(credential["url"].replace(one.base_url, two.base_url), data=data, timeout=120)
        assert sent.status_code == 200, sent.text
        etags.append({"part_number": credential["part_number"], "etag": sent.headers["ETag"]})
    done = requests.post(f"{one.tracking_uri()}/api/2.0/mlflow-artifacts/mpu/complete/{prefix}", headers=owner,
                         json={"path": "model.bin", "upload_id": created.json()["upload_id"], "parts": etags},
                         timeout=120)
    assert done.status_code == 200, done.text
    got = b.download_artifacts(rid, "model.bin", str(tmp_path))
    with open(got, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == hashlib.sha256(b"".join(parts)).hexdigest()

    # Neither instance opened gunicorn's per-user control socket (they would fight over it).
    for root in (env["HOME"], env["XDG_RUNTIME_DIR"]):
        found = [os.path.join(d, f) for d, _dirs, files in os.walk(root) for f in files if f.endswith(".ctl")]
        assert found == [], found
    assert one.process.poll() is None and two.process.poll() is None
