"""A new user makes a project of their own in the example forge (GitLab's
``POST /api/v4/projects``, ``flask forge create-project``) and logs to it with
the MLflow client; and ``run_finished`` is sent only when a run reaches a
terminal status (not for a rename, an end time or a repeated status). Against
the live forge on SQLite and PostgreSQL."""
from __future__ import annotations

import uuid
from contextlib import contextmanager

import requests

from examples.forge import auth
from examples.forge.models import User, db
from gl_ml_tracking import signals
from sqlalchemy import select


def _post(forge, body, token=None, **kwargs):
    headers = {"PRIVATE-TOKEN": token} if token else {}
    return requests.post(f"{forge.base_url}/api/v4/projects", json=body, headers=headers, **kwargs)


def _token(forge, username: str, scopes: str) -> str:
    with forge.app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        _row, token = auth.create_personal_access_token(user, "t-" + uuid.uuid4().hex[:6], scopes)
        db.session.commit()
        return token


def test_create_a_project_through_the_api_then_log_to_it(forge, monkeypatch):
    name = "Vision " + uuid.uuid4().hex[:6]
    created = _post(forge, {"name": name, "visibility": "private", "description": "mine"}, forge.owner_token)
    assert created.status_code == 201, created.text
    project = created.json()
    assert project["name"] == name and project["path"] == name.lower().replace(" ", "-")
    assert project["path_with_namespace"] == f"demo/{project['path']}" and project["visibility"] == "private"
    assert project["web_url"].endswith("/" + project["path_with_namespace"])

    import mlflow
    from mlflow.tracking import MlflowClient

    uri = forge.tracking_uri(project["id"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", forge.owner_token)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    exp = client.create_experiment("first")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "acc", 0.5)
    assert client.get_run(run.info.run_id).data.metrics == {"acc": 0.5}
    # Private and owned by demo: the outsider cannot see it.
    seen = requests.get(f"{uri}/api/2.0/mlflow/experiments/get", params={"experiment_id": exp},
                        headers={"Authorization": f"Bearer {forge.outsider_token}"})
    assert seen.status_code == 404

    again = _post(forge, {"name": name}, forge.owner_token)
    assert again.status_code == 400 and again.json() == {"message": {"path": ["has already been taken"]}}


def test_project_api_refusals(forge):
    assert _post(forge, {"name": "x"}).status_code == 401
    assert _post(forge, {"name": "x"}, "glpat-not-a-token").status_code == 401
    assert _post(forge, {"name": "x"}, _token(forge, "demo", "read_api")).status_code == 403
    missing = _post(forge, {}, forge.owner_token)
    assert missing.status_code == 400 and "name is missing" in missing.json()["error"]
    bad_path = _post(forge, {"name": "ok", "path": "-bad/../path"}, forge.owner_token)
    assert bad_path.status_code == 400 and "path" in bad_path.json()["message"]
    bad_visibility = _post(forge, {"name": "v" + uuid.uuid4().hex[:4], "visibility": "internal"}, forge.owner_token)
    assert bad_visibility.status_code == 400 and "visibility" in bad_visibility.json()["message"]
    # A group the outsider maintains nothing in (demo's) is refused without saying it exists.
    foreign = _post(forge, {"name": "intruder", "namespace_id": 1}, forge.outsider_token)
    assert foreign.status_code == 400 and foreign.json() == {"message": {"namespace": ["is not valid"]}}
    # The outsider's own namespace is made on first use.
    own = _post(forge, {"name": "Own " + uuid.uuid4().hex[:4]}, forge.outsider_token)
    assert own.status_code == 201 and own.json()["namespace"]["full_path"] == "outsider"


def test_create_project_command(forge):
    runner = forge.app.test_cli_runner()
    path = "cli-" + uuid.uuid4().hex[:6]
    result = runner.invoke(args=["forge", "create-project", "demo", "From the CLI", "--path", path,
                                 "--visibility", "public"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"demo/{path} (id ")
    page = requests.get(f"{forge.base_url}/demo/{path}/-/ml/experiments")  # public: anyone reads it
    assert page.status_code == 200
    again = runner.invoke(args=["forge", "create-project", "demo", "From the CLI", "--path", path])
    assert again.exit_code != 0 and "already been taken" in again.output
    assert runner.invoke(args=["forge", "create-project", "nobody", "x"]).exit_code != 0


@contextmanager
def _finished(forge):
    calls: list = []

    def subscriber(app, **kwargs):
        calls.append(kwargs["run"].run_uuid)

    signals.run_finished.connect(subscriber, forge.app)
    try:
        yield calls
    finally:
        signals.run_finished.disconnect(subscriber, forge.app)


def _api(forge, method, body):
    answer = requests.post(f"{forge.tracking_uri(1)}/api/2.0/mlflow/{method}", json=body,
                           headers={"Authorization": f"Bearer {forge.owner_token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_run_finished_only_when_a_run_reaches_a_terminal_status(forge):
    exp = _api(forge, "experiments/create", {"name": "finish-" + uuid.uuid4().hex[:6]})["experiment_id"]
    run_id = _api(forge, "runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
    with _finished(forge) as calls:
        _api(forge, "runs/update", {"run_id": run_id, "run_name": "still going"})
        _api(forge, "runs/update", {"run_id": run_id, "status": "RUNNING"})
        assert calls == []
        _api(forge, "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 5})
        assert calls == [run_id]
        # Renamed after it ended, its end time corrected, FINISHED sent again: no new announcement.
        _api(forge, "runs/update", {"run_id": run_id, "run_name": "renamed later"})
        _api(forge, "runs/update", {"run_id": run_id, "end_time": 6})
        _api(forge, "runs/update", {"run_id": run_id, "status": "FINISHED"})
        assert calls == [run_id]
        _api(forge, "runs/update", {"run_id": run_id, "status": "FAILED"})
        assert calls == [run_id, run_id]
