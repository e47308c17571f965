"""Backups and restore exactly as docs/OPERATIONS.md says: data logged through the MLflow
client (an experiment, runs with params, tags, metric histories and artifacts, a registered
model with a version and an alias), then the documented backup: a first storage copy, the
database dump (``pg_dump -Fc``; SQLite's backup API), a second storage copy (rsync or
``aws s3 sync``, nothing deleted from the copy), while the forge keeps working: after the
dump an artifact is overwritten (the object the dump refers to is deleted) and another is
logged. Restored into a fresh database and a fresh storage directory or bucket, migrated
with ``flask ml-tracking db upgrade`` (the restored database is first taken back to
migration 0002 here, as a dump of an older release would be), cleaned with
``flask ml-tracking gc``, and served: everything reads back through the client as it was
at the dump, every file with the same sha256.

On PostgreSQL with local storage and with S3 (a moto server process), and on SQLite."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import boto3
import pytest

from tests.support import ROOT, backups
from tests.support.livedb import fresh_database
from tests.support.liveserver import OWNER_TOKEN, another_forge, build_app
from tests.support.procserver import BIN, server_env
from tests.support.s3_server import S3_TEST_ENV, apply_s3_env

pytestmark = [pytest.mark.slow]

OLDER_RELEASE = "0002"  # the restored dump is migrated from here, as an older release's would be


def _flask(env: dict, *args: str) -> str:
    done = subprocess.run([os.path.join(BIN, "flask"), "--app", "examples.host_app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _log_everything(forge, tmp_path) -> tuple[str, str, str]:
    """An experiment, two finished runs, a registered model: (experiment, model, run id)."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(forge.tracking_uri(1))
    experiment, model = f"backup-{uuid.uuid4().hex[:6]}", f"model-{uuid.uuid4().hex[:6]}"
    exp = client.create_experiment(experiment, tags={"team": "vision"})
    client.set_experiment_tag(exp, "mlflow.note.content", "What the backup must keep.")
    run_ids = []
    for n in range(2):
        rid = client.create_run(exp, run_name=f"run-{n}", tags={"seed": str(n)}).info.run_id
        client.log_batch(rid, metrics=[Metric("loss", 1 / (i + 1 + n), 1_000 + i, i) for i in range(60)]
                         + [Metric("acc", 0.5 + i / 100, 2_000 + i, i) for i in range(10)],
                         params=[Param("lr", str(0.01 * (n + 1))), Param("layers", "4")],
                         tags=[RunTag("stage", "train")])
        client.log_text(rid, f"flavors: {{}}\nrun: {n}\n", "model/MLmodel")
        weights = tmp_path / f"weights-{n}" / "weights.bin"
        weights.parent.mkdir()
        weights.write_bytes(os.urandom(300_000 + n))
        client.log_artifact(rid, str(weights), "data")
        client.set_terminated(rid)
        run_ids.append(rid)
    client.create_registered_model(model, tags={"owner": "ml"}, description="Restored or not.")
    version = client.create_model_version(model, client.get_run(run_ids[0]).info.artifact_uri + "/model",
                                          run_id=run_ids[0])
    client.set_registered_model_alias(model, "champion", version.version)
    return experiment, model, run_ids[0]


def _work_after_the_dump(forge, run_id: str, tmp_path) -> None:
    """The forge goes on: an artifact overwritten (its old object deleted), a new one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(forge.tracking_uri(1))
    weights = tmp_path / "later" / "weights.bin"
    weights.parent.mkdir()
    weights.write_bytes(os.urandom(1234))
    client.log_artifact(run_id, str(weights), "data")
    client.log_text(run_id, "logged after the dump", "late.txt")


def _restore_and_read(kind: str, url: str, storage: str, extra: dict, env: dict, expected_orphans: int,
                      read, tmp_path) -> dict:
    """The documented restore steps on a restored database and storage, then a server on them."""
    app = build_app(url, storage, extra)
    with app.app_context():  # the dump of an older release: its schema is behind the code's
        from gl_ml_tracking import get_state, migrate

        migrate.downgrade(OLDER_RELEASE)
        get_state(app).db.engine.dispose()
    assert "database at head" in _flask(env, "ml-tracking", "db", "upgrade")
    # Objects of the storage copy that the dump does not know: uploaded after it.
    report = _flask(env, "ml-tracking", "gc", "--dry-run", "--grace-hours", "0")
    assert report.count("orphan object: ") == expected_orphans, report
    assert f"would remove 0 orphan package(s), {expected_orphans} orphan object(s)" in report, report
    _flask(env, "ml-tracking", "gc", "--grace-hours", "0", "--quiet")
    with another_forge(url, storage, extra, seed=False) as restored:
        return read(restored, str(tmp_path / f"read-{kind}"))


def _reader(experiment: str, model: str):
    def read(forge, dest: str) -> dict:
        return backups.read_back(forge.base_url, forge.tracking_uri(1), OWNER_TOKEN, experiment, model, dest)
    return read


@pytest.fixture
def client_env(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", OWNER_TOKEN)


@pytest.mark.postgres
def test_postgres_and_local_storage(client_env, tmp_path):
    storage, copy, restored_storage = (str(tmp_path / n) for n in ("storage", "copy", "restored"))
    dump = str(tmp_path / "forge.dump")
    with fresh_database("postgresql", str(tmp_path)) as url, \
            another_forge(url, storage) as forge:
        experiment, model, run_id = _log_everything(forge, tmp_path)
        read = _reader(experiment, model)
        before = read(forge, str(tmp_path / "read-before"))
        backups.sync_dir(storage, copy)  # 1. the storage
        backups.pg_dump(url, dump)  # 2. the database
        at_dump = set(backups.file_keys(storage))
        _work_after_the_dump(forge, run_id, tmp_path)
        # The overwrite deleted an object the dump refers to: a copy made only after the
        # dump would miss it; the first copy has it.
        assert at_dump - set(backups.file_keys(storage))
        backups.sync_dir(storage, copy)  # 3. the storage again, nothing deleted from the copy

    with fresh_database("postgresql", str(tmp_path)) as restored_url:
        backups.pg_restore(dump, restored_url)
        backups.sync_dir(copy, restored_storage)
        env = server_env(restored_url, restored_storage)
        after = _restore_and_read("pg", restored_url, restored_storage, {}, env, 2, read, tmp_path)
        assert backups.file_keys(restored_storage) == sorted(at_dump)  # gc left exactly the dump's files
    assert after == before


@pytest.mark.postgres
@pytest.mark.s3
def test_postgres_and_s3(client_env, moto_endpoint, tmp_path, monkeypatch):
    apply_s3_env(monkeypatch)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    live, copy, restored_bucket = (f"glml-{n}-{uuid.uuid4().hex[:8]}" for n in ("live", "copy", "restored"))
    for bucket in (live, copy, restored_bucket):
        s3.create_bucket(Bucket=bucket)

    def settings(bucket: str) -> dict:
        return {"GL_ML_TRACKING_STORAGE": "s3", "GL_ML_TRACKING_S3_BUCKET": bucket,
                "GL_ML_TRACKING_S3_ENDPOINT_URL": moto_endpoint, "GL_ML_TRACKING_S3_REGION": "us-east-1"}

    aws_env = dict(os.environ, **S3_TEST_ENV)
    dump = str(tmp_path / "forge.dump")
    with fresh_database("postgresql", str(tmp_path)) as url, \
            another_forge(url, str(tmp_path / "unused"), settings(live)) as forge:
        experiment, model, run_id = _log_everything(forge, tmp_path)
        read = _reader(experiment, model)
        before = read(forge, str(tmp_path / "read-before"))
        backups.sync_bucket(s3, live, copy, moto_endpoint, aws_env)
        backups.pg_dump(url, dump)
        at_dump = set(backups.object_keys(s3, live))
        _work_after_the_dump(forge, run_id, tmp_path)
        assert at_dump - set(backups.object_keys(s3, live))
        backups.sync_bucket(s3, live, copy, moto_endpoint, aws_env)

    with fresh_database("postgresql", str(tmp_path)) as restored_url:
        backups.pg_restore(dump, restored_url)
        backups.sync_bucket(s3, copy, restored_bucket, moto_endpoint, aws_env)
        env = server_env(restored_url, str(tmp_path / "unused"), {**S3_TEST_ENV, **settings(restored_bucket)})
        after = _restore_and_read("s3", restored_url, "unused", settings(restored_bucket), env, 2, read, tmp_path)
        assert backups.object_keys(s3, restored_bucket) == sorted(at_dump)
    assert after == before


def test_sqlite_and_local_storage(client_env, tmp_path):
    storage, copy, restored_storage = (str(tmp_path / n) for n in ("storage", "copy", "restored"))
    db, backup = str(tmp_path / "forge.db"), str(tmp_path / "forge-backup.db")
    url = f"sqlite:///{db}"
    with another_forge(url, storage) as forge:
        experiment, model, run_id = _log_everything(forge, tmp_path)
        read = _reader(experiment, model)
        before = read(forge, str(tmp_path / "read-before"))
        backups.sync_dir(storage, copy)
        backups.sqlite_backup(db, backup)  # while the server holds the database open (WAL)
        at_dump = set(backups.file_keys(storage))
        _work_after_the_dump(forge, run_id, tmp_path)
        backups.sync_dir(storage, copy)

    restored_db = str(tmp_path / "restored-db" / "forge.db")
    os.makedirs(os.path.dirname(restored_db))
    shutil.copyfile(backup, restored_db)
    backups.sync_dir(copy, restored_storage)
    restored_url = f"sqlite:///{restored_db}"
    env = server_env(restored_url, restored_storage)
    after = _restore_and_read("sqlite", restored_url, restored_storage, {}, env, 2, read, tmp_path)
    assert backups.file_keys(restored_storage) == sorted(at_dump)
    assert after == before
