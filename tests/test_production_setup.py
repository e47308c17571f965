"""The README's production setup, for real: gunicorn started with
``examples/gunicorn_conf.py`` and 4 workers × 4 threads, on PostgreSQL, with artifacts
in S3 (a moto server process on loopback). The same MLflow-client session, run from 8
threads at once, gives the same results as with one worker: what was logged, what a
search finds and in which order, the history, the artifact bytes (read back through the
server and straight from the bucket)."""
from __future__ import annotations

import hashlib
import os
import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.livedb import fresh_database
from tests.support.procserver import OWNER_TOKEN, ServerProcess, prepare_database, server_env
from tests.support.s3_server import S3_TEST_ENV, apply_s3_env

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

RUNS = 16
ARTIFACT = random.Random(3).randbytes(3 * 1024 * 1024 + 17)


def session_outcome(tracking_uri: str, tmp_path) -> dict:
    """Everything a user would look at after the session, with ids and times left out."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("production-setup")
    tmp_path.mkdir(parents=True, exist_ok=True)
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(ARTIFACT)

    def one_run(i: int) -> str:
        run = client.create_run(exp, run_name=f"run-{i:02d}", tags={"team": "a" if i % 2 else "b"})
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric("acc", (i * 7 % 10) / 10, 1_700_000_000_000 + i, 0)],
                         params=[Param("lr", str(0.001 * (i % 4))), Param("layers", str(i % 3))],
                         tags=[RunTag("stage", "train")])
        for step in range(1, 26):
            client.log_metric(rid, "loss", 1.0 / (step + i), timestamp=1_700_000_000_000 + step, step=step)
        if i % 4 == 0:
            client.log_artifact(rid, str(artifact), "model")
        client.set_terminated(rid)
        return rid

    with ThreadPoolExecutor(max_workers=8) as pool:
        run_ids = list(pool.map(one_run, range(RUNS)))

    def summary(run) -> tuple:
        d = run.data
        return (run.info.run_name, run.info.status, sorted(d.params.items()), sorted(d.metrics.items()),
                sorted((k, v) for k, v in d.tags.items() if not k.startswith("mlflow.")))

    everything = client.search_runs([exp], max_results=1000, order_by=["attributes.run_name"])
    found = client.search_runs([exp], "metrics.acc > 0.3 AND params.layers = '1' AND tags.team = 'a'",
                               order_by=["metrics.acc DESC", "attributes.run_name"])
    paged, token = [], None
    while True:
        page = client.search_runs([exp], order_by=["attributes.run_name"], max_results=5, page_token=token)
        paged += [r.info.run_name for r in page]
        token = page.token
        if not token:
            break
    histories = {client.get_run(rid).info.run_name: [(m.step, m.value) for m in client.get_metric_history(rid, "loss")]
                 for rid in run_ids}
    downloads = {}
    for rid in run_ids[::4]:
        listed = [(f.path, f.file_size) for f in client.list_artifacts(rid, "model")]
        got = client.download_artifacts(rid, "model/model.bin", str(tmp_path / uuid.uuid4().hex))
        with open(got, "rb") as fh:
            downloads[client.get_run(rid).info.run_name] = (listed, hashlib.sha256(fh.read()).hexdigest())
    return {
        "runs": [summary(r) for r in everything],
        "filtered": [r.info.run_name for r in found],
        "paged": paged,
        "histories": histories,
        "artifacts": downloads,
    }


@pytest.mark.slow
def test_four_workers_on_postgresql_and_s3_match_one_worker(moto_endpoint, tmp_path, monkeypatch):
    import boto3

    apply_s3_env(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", OWNER_TOKEN)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    outcomes, bucket_sizes = {}, {}
    for workers in (1, 4):
        bucket = f"glml-prod-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=bucket)
        with fresh_database("postgresql", str(tmp_path)) as url:
            env = server_env(url, str(tmp_path / f"unused-{workers}"), {
                **S3_TEST_ENV,
                "GL_ML_TRACKING_STORAGE": "s3", "GL_ML_TRACKING_S3_BUCKET": bucket,
                "GL_ML_TRACKING_S3_ENDPOINT_URL": moto_endpoint, "GL_ML_TRACKING_S3_REGION": "us-east-1",
            })
            prepare_database(env)
            proc = ServerProcess(env, workers=workers, threads=4,
                                 log_path=str(tmp_path / f"gunicorn-{workers}.log")).start()
            try:
                outcomes[workers] = session_outcome(proc.tracking_uri(), tmp_path / f"w{workers}")
            finally:
                proc.stop()
        objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        bucket_sizes[workers] = sorted(o["Size"] for o in objects)

    one, four = outcomes[1], outcomes[4]
    assert len(one["runs"]) == RUNS and one["runs"][0][0] == "run-00"
    assert one["filtered"] and one["paged"] == [f"run-{i:02d}" for i in range(RUNS)]
    assert all(len(h) == 25 for h in one["histories"].values())
    assert {sha for _listed, sha in one["artifacts"].values()} == {hashlib.sha256(ARTIFACT).hexdigest()}
    assert bucket_sizes[1] == [len(ARTIFACT)] * (RUNS // 4)
    assert four == one
    assert bucket_sizes[4] == bucket_sizes[1]
