"""S3 down: every storage call of a request (upload, download, multipart, packages API)
answers 503 TEMPORARILY_UNAVAILABLE with Retry-After, as a database outage does, and
nothing half-written is listed; once S3 is back, the client's retry succeeds. A real
moto server process, stopped and started again on the same port, on SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import uuid
from urllib.parse import urlparse

import boto3
import pytest
import requests

from tests.support.liveserver import another_forge
from tests.support.s3_server import apply_s3_env, start_moto_server, stop_moto_server

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def outage(database_url, tmp_path_factory):
    """A forge on S3 and the moto process behind it (the test stops and restarts it)."""
    with pytest.MonkeyPatch.context() as mp:
        apply_s3_env(mp)
        endpoint, proc = start_moto_server()
        bucket = f"glml-outage-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        settings = {"GL_ML_TRACKING_STORAGE": "s3", "GL_ML_TRACKING_S3_BUCKET": bucket,
                    "GL_ML_TRACKING_S3_ENDPOINT_URL": endpoint, "GL_ML_TRACKING_S3_REGION": "us-east-1",
                    "GL_ML_TRACKING_RETRY_AFTER": 3}
        moto = {"proc": proc, "endpoint": endpoint, "bucket": bucket}  # the test restarts the process
        try:
            with another_forge(database_url, str(tmp_path_factory.mktemp("unused")), settings) as live:
                live.extra = moto
                yield live
        finally:
            stop_moto_server(moto["proc"])


def _unavailable(answer: requests.Response, gitlab: bool = False) -> None:
    assert answer.status_code == 503, (answer.status_code, answer.text[:300])
    assert answer.headers["Retry-After"] == "3"
    body = answer.json()
    if gitlab:
        assert body == {"message": "The file storage is unavailable; retry."}
    else:
        assert body == {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "The file storage is unavailable; retry."}


def test_storage_down_answers_503_then_the_retry_succeeds(outage, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    apply_s3_env(monkeypatch)
    client = MlflowClient(outage.tracking_uri(1))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", outage.owner_token)
    run = client.create_run(client.create_experiment(f"outage-{uuid.uuid4().hex[:6]}"))
    rid = run.info.run_id
    before = tmp_path / "before.txt"
    before.write_text("stored before the outage")
    client.log_artifact(rid, str(before))

    prefix = run.info.artifact_uri.split(":/", 1)[1]
    api = outage.tracking_uri(1) + "/api/2.0/mlflow-artifacts"
    owner = {"Authorization": f"Bearer {outage.owner_token}"}
    stop_moto_server(outage.extra["proc"])  # S3 is gone

    _unavailable(requests.put(f"{api}/artifacts/{prefix}/new.bin", data=b"x" * 1000, headers=owner, timeout=60))
    _unavailable(requests.get(f"{api}/artifacts/{prefix}/before.txt", headers=owner, timeout=60))
    _unavailable(requests.post(f"{api}/mpu/create/{prefix}", json={"path": "big.bin", "num_parts": 2},
                               headers=owner, timeout=60))
    packages = outage.tracking_uri(1).rsplit("/ml/mlflow", 1)[0] + "/packages/generic"
    _unavailable(requests.put(f"{packages}/pkg/1.0/f.bin", data=b"y", headers=owner, timeout=60), gitlab=True)
    # A database outage and a storage outage look the same to the client: it retries.
    listed = [f.path for f in client.list_artifacts(rid)]
    assert listed == ["before.txt"]  # nothing half-written is listed

    port = urlparse(outage.extra["endpoint"]).port
    outage.extra["endpoint"], outage.extra["proc"] = start_moto_server(port=port)
    # moto keeps its buckets in memory: the restarted server has to be given it again.
    boto3.client("s3", endpoint_url=outage.extra["endpoint"], region_name="us-east-1").create_bucket(
        Bucket=outage.extra["bucket"])
    after = tmp_path / "after.bin"
    after.write_bytes(b"z" * 4096)
    client.log_artifact(rid, str(after))
    got = client.download_artifacts(rid, "after.bin", str(tmp_path / "dl"))
    with open(got, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == hashlib.sha256(b"z" * 4096).hexdigest()
    assert sorted(f.path for f in client.list_artifacts(rid)) == ["after.bin", "before.txt"]


def test_database_503_carries_retry_after_too(outage, monkeypatch):
    """The header is added where every surface's errors are rendered: a database error
    (here a SQLite/PostgreSQL OperationalError raised inside a view) gets it as well."""
    from sqlalchemy.exc import OperationalError

    from gl_ml_tracking.services import search as search_service

    def fail(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(search_service, "search_experiments", fail)
    answer = requests.get(outage.tracking_uri(1) + "/api/2.0/mlflow/experiments/search",
                          headers={"Authorization": f"Bearer {outage.owner_token}"}, params={"max_results": 5},
                          timeout=60)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "3"
    assert answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
