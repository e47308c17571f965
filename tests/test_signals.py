"""The host's signals follow the commit, against the live forge on SQLite and
PostgreSQL: a subscriber hears of a run only once the run is in the database for
everyone, and never of one whose request failed and was rolled back."""
from __future__ import annotations

import uuid
from contextlib import contextmanager

import requests
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gl_ml_tracking import signals
from gl_ml_tracking.models import Experiment, Run


def _post(forge, method: str, body: dict) -> requests.Response:
    return requests.post(f"{forge.tracking_uri(1)}/api/2.0/mlflow/{method}", json=body,
                         headers={"Authorization": f"Bearer {forge.owner_token}"})


@contextmanager
def _subscribed(forge, signal):
    """The calls ``signal`` gets from the forge's app, each as what ``note(kwargs)``
    returned; ``note`` runs inside the subscriber, in the request (the entities are
    the request session's), and the test may replace it."""
    calls: list = []
    recorder = {"note": lambda kwargs: kwargs["project"].id}

    def subscriber(app, **kwargs):
        calls.append(recorder["note"](kwargs))

    signal.connect(subscriber, forge.app)
    try:
        yield calls, recorder
    finally:
        signal.disconnect(subscriber, forge.app)


@contextmanager
def _commit_fails_for_new_runs():
    """The commit of any transaction that queued ``run_created`` fails as when the
    database goes away at that moment: the run row is written (flushed), the request
    fails after it and is rolled back. Other sessions (the forge's, the test's)
    commit as usual."""
    def fail(session):
        if any(signal is signals.run_created for signal, _kwargs in session.info.get(signals.PENDING_KEY, ())):
            raise OperationalError("COMMIT", {}, ConnectionError("the database went away"))

    event.listen(Session, "before_commit", fail)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", fail)


def _runs_in_experiment(engine, experiment_iid: int) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            select(func.count()).select_from(Run).join(Experiment, Experiment.id == Run.experiment_id)
            .where(Experiment.project_id == "1", Experiment.iid == experiment_iid))


def test_run_created_only_after_the_commit(forge, database_url):
    engine = create_engine(database_url)  # a fresh connection sees committed rows only
    try:
        created = _post(forge, "experiments/create", {"name": f"signals-{uuid.uuid4().hex[:8]}"})
        assert created.status_code == 200, created.text
        experiment_id = created.json()["experiment_id"]

        with _subscribed(forge, signals.run_created) as (calls, recorder):
            with _commit_fails_for_new_runs():
                failed = _post(forge, "runs/create", {"experiment_id": experiment_id, "run_name": "rolled-back"})
            assert failed.status_code == 503, failed.text
            assert failed.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
            assert _runs_in_experiment(engine, int(experiment_id)) == 0
            assert calls == []  # nor is the failed request's signal sent later, with another

            def note_from_a_fresh_session(kwargs):
                with Session(engine) as fresh:
                    name = fresh.scalar(select(Run.name).where(Run.run_uuid == kwargs["run"].run_uuid))
                return kwargs["project"].id, kwargs["run"].run_uuid, name

            recorder["note"] = note_from_a_fresh_session
            good = _post(forge, "runs/create", {"experiment_id": experiment_id, "run_name": "committed"})
            assert good.status_code == 200, good.text
        # Once, and the run was committed (visible to another connection) before the subscriber ran.
        assert calls == [(1, good.json()["run"]["info"]["run_id"], "committed")]
    finally:
        engine.dispose()


def test_experiment_created_and_run_finished_after_the_commit(forge, database_url):
    engine = create_engine(database_url)
    try:
        def note_experiment(kwargs):
            with Session(engine) as fresh:
                stage = fresh.scalar(select(Experiment.lifecycle_stage).where(Experiment.id == kwargs["experiment"].id))
            return kwargs["experiment"].iid, stage

        def note_run(kwargs):
            with Session(engine) as fresh:
                status = fresh.scalar(select(Run.status).where(Run.run_uuid == kwargs["run"].run_uuid))
            return kwargs["run"].run_uuid, status

        with _subscribed(forge, signals.experiment_created) as (experiments, exp_recorder), \
                _subscribed(forge, signals.run_finished) as (finished, run_recorder):
            exp_recorder["note"], run_recorder["note"] = note_experiment, note_run
            created = _post(forge, "experiments/create", {"name": f"signals-{uuid.uuid4().hex[:8]}"})
            experiment_id = created.json()["experiment_id"]
            run_id = _post(forge, "runs/create", {"experiment_id": experiment_id}).json()["run"]["info"]["run_id"]
            assert finished == []  # a running run has not finished
            done = _post(forge, "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 1})
            assert done.status_code == 200, done.text
        assert experiments == [(int(experiment_id), "active")]
        assert finished == [(run_id, "FINISHED")]
    finally:
        engine.dispose()
