"""The backup and restore steps of docs/OPERATIONS.md, run as an operator runs them
(``pg_dump``/``pg_restore``, ``rsync``, ``aws s3 sync``, SQLite's backup API), and a reader
that takes everything a project holds back out through the MLflow client, so a restored
server can be compared with the one backed up.

Where a command is missing (``rsync``, the ``aws`` CLI are not project dependencies) the
same step is done in Python the way the command does it: copy what the destination lacks,
never delete from it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from typing import Any

import requests


def _run(cmd: list[str], env: dict | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def libpq_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def pg_dump(url: str, path: str) -> None:
    """``pg_dump -Fc`` of the whole database (the forge's tables and the glml_* ones)."""
    _run(["pg_dump", "-Fc", "-f", path, "-d", libpq_dsn(url)])


def pg_restore(path: str, url: str) -> None:
    """Into a fresh, empty database; ``--no-owner``: the restoring role owns the objects."""
    _run(["pg_restore", "--no-owner", "--exit-on-error", "-d", libpq_dsn(url), path])


def sqlite_backup(db_path: str, backup_path: str) -> None:
    """SQLite's online backup API (``sqlite3 forge.db ".backup backup.db"``): a consistent
    copy while the server writes (a plain ``cp`` of a WAL database can miss the -wal file)."""
    source = sqlite3.connect(db_path)
    target = sqlite3.connect(backup_path)
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()


def sync_dir(source: str, target: str) -> None:
    """``rsync -a source/ target/``: add what ``target`` lacks, delete nothing from it."""
    os.makedirs(target, exist_ok=True)
    if shutil.which("rsync"):
        _run(["rsync", "-a", source.rstrip("/") + "/", target.rstrip("/") + "/"])
    else:
        shutil.copytree(source, target, dirs_exist_ok=True)


def sync_bucket(s3, source: str, target: str, endpoint: str, env: dict) -> None:
    """``aws s3 sync s3://source s3://target`` (no ``--delete``)."""
    if shutil.which("aws"):
        _run(["aws", "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors",
              f"s3://{source}", f"s3://{target}"], env=env)
        return
    there = set(object_keys(s3, target))
    for key in object_keys(s3, source):
        if key not in there:  # keys are never rewritten in place: present means same bytes
            s3.copy_object(Bucket=target, Key=key, CopySource={"Bucket": source, "Key": key})


def object_keys(s3, bucket: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return sorted(keys)


def file_keys(root: str) -> list[str]:
    """The objects of a local storage directory (its upload scratch areas left out)."""
    found = [os.path.relpath(os.path.join(d, f), root) for d, _dirs, files in os.walk(root) for f in files]
    return sorted(k for k in found if not k.startswith((".tmp", ".multipart")))


def _sha(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _files(client, run_id: str, dest: str, path: str | None = None) -> dict[str, str]:
    found = {}
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            found.update(_files(client, run_id, dest, item.path))
        else:
            found[item.path] = _sha(client.download_artifacts(run_id, item.path, dest))
    return found


def read_back(base_url: str, tracking_uri: str, token: str, experiment: str, model: str, dest: str) -> dict[str, Any]:
    """Everything of ``experiment`` and registered ``model`` through the MLflow client
    (and the version's files through the packages API): names, values, histories, and
    every file's sha256."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    found: dict[str, Any] = {"experiment": (exp.name, exp.lifecycle_stage, exp.tags)}
    for run in client.search_runs([exp.experiment_id], order_by=["attributes.run_name ASC"]):
        rid, data = run.info.run_id, run.data
        found[rid] = {
            "info": (run.info.run_name, run.info.status, run.info.start_time, run.info.end_time),
            "params": data.params, "tags": data.tags, "metrics": data.metrics,
            "histories": {key: sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(rid, key))
                          for key in data.metrics},
            "files": _files(client, rid, os.path.join(dest, rid)),
        }
    registered = client.get_registered_model(model)
    versions = sorted(client.search_model_versions(f"name = '{model}'"), key=lambda v: int(v.version))
    found["model"] = (registered.description, registered.tags, registered.aliases,
                      [(v.version, v.source, v.run_id, v.status, v.tags) for v in versions])
    project = tracking_uri.split("/projects/", 1)[1].split("/", 1)[0]
    for v in versions:
        answer = requests.get(f"{base_url}/api/v4/projects/{project}/packages/ml_models/{model}/{v.version}/MLmodel",
                              headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert answer.status_code == 200, answer.text
        found[f"model files {v.version}"] = hashlib.sha256(answer.content).hexdigest()
    return found
