"""Data for the UI tests, logged the way users log it: with the real MLflow
client against the live forge (plus a CI job made in the forge's tables).

``seed_ui_data(forge)`` returns a ``Seeded`` with the experiment IIDs, run
IIDs and run ids the tests look for. Everything hostile (HTML in names,
params, tags, notes and artifact names) is in ``XSS``.
"""
from __future__ import annotations

import json
import os
import struct
import uuid
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support import environ_set

XSS = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(2)</script>"
XSS_NOTE = (
    "# Results\n\nThe **best** run so far. See [docs](https://example.com/docs) and "
    "[bad](javascript:alert(3)).\n\n<img src=x onerror=alert(4)>\n\n- one\n- two <b>bold?</b>\n\n"
    "```\n<script>alert(5)</script>\n```\n"
)
XSS_ARTIFACT = "<img src=x onerror=alert(6)>.txt"
PASSWORD = "demo-password"  # liveserver.migrate_and_seed sets DEMO_PASSWORD to this


@dataclass
class Seeded:
    experiment_iid: int = 0
    experiment_name: str = ""
    empty_experiment_iid: int = 0
    xss_experiment_iid: int = 0
    runs: dict = field(default_factory=dict)  # name -> (iid, run_id)
    long_metric_points: int = 0
    ci_job_id: int = 0


@contextmanager
def mlflow_env(forge: Any, project_ref: Any = 1):
    import mlflow
    from mlflow.tracking import MlflowClient

    with environ_set(MLFLOW_TRACKING_URI=forge.tracking_uri(project_ref), MLFLOW_TRACKING_TOKEN=forge.owner_token):
        mlflow.set_tracking_uri(forge.tracking_uri(project_ref))
        yield MlflowClient()


def tiny_png(width: int = 64, height: int = 48) -> bytes:
    """A valid PNG of a blue square, made without any imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x1f\x75\xcb" * width
    raw = row * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_ci_job(forge: Any, project_id: int = 1) -> int:
    """A finished CI job of project ``project_id`` in a pipeline of a merge request."""
    from examples.forge.models import Job, MergeRequest, Pipeline, User, db
    from sqlalchemy import func, select

    with forge.app.app_context():
        demo = db.session.scalar(select(User).where(User.username == "demo"))
        next_iid = (db.session.scalar(select(func.max(MergeRequest.iid)).where(MergeRequest.project_id == project_id))
                    or 0) + 1
        mr = MergeRequest(project_id=project_id, iid=next_iid, title="Tune the learning rate", source_branch="tune-lr",
                          target_branch="main", author_id=demo.id)
        pipeline = Pipeline(project_id=project_id, ref="tune-lr", sha="0123456789abcdef0123", status="success",
                            merge_request=mr, user_id=demo.id)
        job = Job(project_id=project_id, pipeline=pipeline, name="train-model", status="success", user_id=demo.id)
        db.session.add_all([mr, pipeline, job])
        db.session.commit()
        return job.id


def seed_ui_data(forge: Any, long_points: int = 3000) -> Seeded:
    from mlflow.entities import Metric, Param, RunTag

    seeded = Seeded()
    seeded.ci_job_id = make_ci_job(forge)
    suffix = uuid.uuid4().hex[:6]
    with mlflow_env(forge) as client:
        name = f"mnist-cnn-{suffix}"
        exp = client.create_experiment(name, tags={"team": "vision", "mlflow.note.content": "Digit classifiers."})
        seeded.experiment_iid, seeded.experiment_name = int(exp), name
        seeded.empty_experiment_iid = int(client.create_experiment(f"empty-{suffix}"))

        def run(run_name: str, lr: str, optimizer: str, acc: float, loss_end: float, status: str = "FINISHED",
                parent: str | None = None, tags: dict | None = None, steps: int = 20) -> str:
            all_tags = dict(tags or {})
            if parent:
                all_tags["mlflow.parentRunId"] = parent
            r = client.create_run(exp, run_name=run_name, tags=all_tags)
            rid = r.info.run_id
            ts = r.info.start_time
            last = steps - 1  # the final values are exactly the given ones
            metrics = [Metric("loss", loss_end if i == last else 1.0 - (1.0 - loss_end) * i / last, ts + i * 1000, i)
                       for i in range(steps)]
            metrics += [Metric("accuracy", acc if i == last else acc * (i + 1) / steps, ts + i * 1000, i)
                        for i in range(steps)]
            client.log_batch(rid, metrics=metrics,
                             params=[Param("lr", lr), Param("optimizer", optimizer), Param("batch_size", "64")])
            if status != "RUNNING":
                client.set_terminated(rid, status=status, end_time=ts + steps * 1000 + 500)
            seeded.runs[run_name] = (0, rid)
            return rid

        base = run("baseline", "0.1", "sgd", 0.91, 0.30)
        run("adam-small", "0.001", "adam", 0.97, 0.08, tags={"team": "vision"})
        run("adam-big", "0.01", "adam", 0.95, 0.12, status="FAILED")
        run("rmsprop", "0.005", "rmsprop", 0.93, 0.2, status="KILLED")
        run("still-running", "0.02", "sgd", 0.5, 0.6, status="RUNNING")
        parent = run("sweep", "0.05", "sgd", 0.94, 0.15)
        run("sweep-child-1", "0.05", "sgd", 0.92, 0.2, parent=parent)
        run("sweep-child-2", "0.06", "sgd", 0.93, 0.18, parent=parent)
        run("ci-run", "0.003", "adam", 0.96, 0.1, tags={"gitlab.CI_JOB_ID": str(seeded.ci_job_id)})

        # A long history for the downsampled charts.
        long_id = run("long-history", "0.01", "adam", 0.9, 0.2)
        start = client.get_run(long_id).info.start_time
        batch = []
        for i in range(long_points):
            batch.append(Metric("train_loss", 1.0 / (1 + i) + (0.5 if i == long_points // 2 else 0.0),
                                start + i * 10, i))
            if len(batch) == 1000:
                client.log_batch(long_id, metrics=batch)
                batch = []
        if batch:
            client.log_batch(long_id, metrics=batch)
        seeded.long_metric_points = long_points

        # Notes, artifacts (text, JSON, CSV, markdown, image, a directory) on the baseline.
        client.set_tag(base, "mlflow.note.content", XSS_NOTE)
        with _tmpdir() as d:
            files = {
                "README.md": "# Model card\n\nAccuracy **0.91** <script>alert(7)</script>\n",
                "metrics.json": json.dumps({"accuracy": 0.91, "loss": 0.3}),
                "predictions.csv": "id,label,score\n1,7,0.98\n2,<b>3</b>,0.51\n",
                "notes.txt": "plain text\n<img src=x onerror=alert(8)>\n",
                XSS_ARTIFACT: "an artifact with a hostile name\n",
            }
            for file_name, text in files.items():
                with open(os.path.join(d, file_name), "w") as fh:
                    fh.write(text)
            with open(os.path.join(d, "confusion.png"), "wb") as fh:
                fh.write(tiny_png())
            os.makedirs(os.path.join(d, "model", "data"))
            with open(os.path.join(d, "model", "MLmodel"), "w") as fh:
                fh.write("flavors:\n  sklearn: {}\n")
            with open(os.path.join(d, "model", "data", "weights.bin"), "wb") as fh:
                fh.write(os.urandom(2048))
            client.log_artifacts(base, d)

        # Everything hostile, in an experiment of its own.
        xss_exp = client.create_experiment(f"xss-{suffix}-{XSS}")
        seeded.xss_experiment_iid = int(xss_exp)
        xr = client.create_run(xss_exp, run_name=XSS, tags={"owner": XSS_SCRIPT, "mlflow.note.content": XSS_NOTE})
        client.log_batch(xr.info.run_id, metrics=[Metric("acc", 0.5, xr.info.start_time, 0)],
                         params=[Param("payload", XSS), Param("script", XSS_SCRIPT)],
                         tags=[RunTag("html", "<b onmouseover=alert(9)>hover</b>")])
        with _tmpdir() as d:
            with open(os.path.join(d, XSS_ARTIFACT), "w") as fh:
                fh.write(XSS_SCRIPT)
            client.log_artifacts(xr.info.run_id, d)
        seeded.runs[XSS] = (0, xr.info.run_id)
        for run_name, (_iid, rid) in list(seeded.runs.items()):
            seeded.runs[run_name] = (run_iid(forge, rid), rid)
    return seeded


def run_iid(forge: Any, run_id: str) -> int:
    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Run
    from sqlalchemy import select

    with forge.app.app_context():
        return int(get_state(forge.app).session.scalar(select(Run.iid).where(Run.run_uuid == run_id)))


@contextmanager
def _tmpdir():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        yield d


def sign_in(client: Any, username: str = "demo", password: str = PASSWORD) -> None:
    """Sign a Flask test client in through the forge's form (with its CSRF token)."""
    import re

    page = client.get("/users/sign_in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/users/sign_in", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.status_code


def make_member(forge: Any, username: str, password: str, role_name: str = "REPORTER", project_id: int = 1) -> None:
    """A forge user with a known password and a role in ``project_id``."""
    from examples.forge import auth
    from examples.forge.models import Membership, Role, User, db
    from sqlalchemy import select

    with forge.app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, name=username.title(), email=f"{username}@example.com",
                        password_hash=auth.hash_password(password))
            db.session.add(user)
            db.session.flush()
            db.session.add(Membership(user_id=user.id, project_id=project_id, role=int(Role[role_name])))
        db.session.commit()


def make_project(forge: Any, path: str, visibility: str = "public") -> tuple[int, str]:
    """A new project in group ``demo`` owned by user demo: (id, full path)."""
    from examples.forge.models import Membership, Namespace, Project, Role, User, db
    from sqlalchemy import select

    with forge.app.app_context():
        group = db.session.scalar(select(Namespace).where(Namespace.full_path == "demo"))
        demo = db.session.scalar(select(User).where(User.username == "demo"))
        project = Project.build(group, path, path.title(), visibility, "made by the UI tests")
        db.session.add(project)
        db.session.flush()
        db.session.add(Membership(user_id=demo.id, project_id=project.id, role=int(Role.OWNER)))
        db.session.commit()
        return project.id, project.full_path
