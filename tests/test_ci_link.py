"""Runs linked to CI jobs, against the live forge on SQLite and PostgreSQL with
the unmodified MLflow client: the ``gitlab.CI_JOB_ID`` tag, job tokens, jobs
that do not count, CI info only for viewers with ``read_build``, runs by
pipeline and merge request, the merge-request view's metric deltas, and the
example forge's ``ci-job`` command running ``examples/train.py``."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from examples.forge import auth
from examples.forge import ci as forge_ci
from examples.forge.models import Job, Membership, MergeRequest, Project, Role, User, db
from tests.support import ROOT, child_env

PUBLIC, PRIVATE = 1, 2  # demo/mnist, demo/secret
CI_TAG = "gitlab.CI_JOB_ID"


def _name(prefix: str = "ci") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- forge-side helpers (the test plays the CI system) --------------------------------
def start_job(forge, project_id: int = PUBLIC, ref: str = "main", mr_iid: int | None = None,
              new_mr: dict | None = None, name: str = "train") -> dict:
    """A running job in a new pipeline; ``new_mr`` opens a merge request for it."""
    with forge.app.app_context():
        project = db.session.get(Project, project_id)
        demo = db.session.scalar(db.select(User).where(User.username == "demo"))
        mr = None
        if new_mr is not None:
            mr = forge_ci.open_merge_request(project, demo, new_mr.get("source", ref), new_mr.get("target", "main"),
                                             new_mr.get("title"))
        elif mr_iid is not None:
            mr = db.session.scalar(db.select(MergeRequest).where(MergeRequest.project_id == project_id,
                                                                 MergeRequest.iid == mr_iid))
        job, token = forge_ci.start_job(project, demo, ref, mr, name)
        db.session.commit()
        return {"id": job.id, "pipeline_id": job.pipeline_id, "token": token, "mr_iid": mr.iid if mr else None,
                "sha": job.pipeline.sha, "ref": ref}


def finish_job(forge, job_id: int, succeeded: bool = True) -> None:
    with forge.app.app_context():
        forge_ci.finish_job(db.session.get(Job, job_id), succeeded)
        db.session.commit()


def run_row(forge, run_id: str):
    from gl_ml_tracking.models import Run

    with forge.app.app_context():
        run = db.session.scalar(db.select(Run).where(Run.run_uuid == run_id))
        return run.iid, run.ci_job_id


def member_token(forge, project_id: int, role: Role) -> str:
    """A new user with ``role`` in the project and a personal token."""
    with forge.app.app_context():
        username = _name("member")
        user = User(username=username, name=username.title(), email=f"{username}@example.com",
                    password_hash=auth.hash_password("x"))
        db.session.add(user)
        db.session.add(Membership(user=user, project_id=project_id, role=int(role)))
        _row, token = auth.create_personal_access_token(user, "t", ("api",))
        db.session.commit()
        return token


def project_path(forge, project_id: int) -> str:
    with forge.app.app_context():
        return db.session.get(Project, project_id).full_path


def ui_get(forge, project_id: int, suffix: str, token: str | None = None, **params) -> requests.Response:
    headers = {"PRIVATE-TOKEN": token} if token else {}
    return requests.get(f"{forge.base_url}/{project_path(forge, project_id)}/-{suffix}", headers=headers,
                        params=params, timeout=30)


def client_for(forge, project_id: int, token: str, monkeypatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", forge.tracking_uri(project_id))
    return MlflowClient(tracking_uri=forge.tracking_uri(project_id))


# -- linking ----------------------------------------------------------------------------
def test_tag_at_creation_links_the_run_and_is_kept_as_a_tag(forge, mlflow_client):
    job = start_job(forge)
    exp = mlflow_client.create_experiment(_name())
    run = mlflow_client.create_run(exp, tags={CI_TAG: str(job["id"])})
    assert run.data.tags[CI_TAG] == str(job["id"])
    iid, linked = run_row(forge, run.info.run_id)
    assert linked == job["id"]

    body = ui_get(forge, PUBLIC, f"/ml/candidates/{iid}/ci.json", forge.owner_token).json()
    assert body["can_read_build"] is True
    ci = body["ci"]
    assert ci["job"] == {"id": job["id"], "name": "train", "status": "running",
                         "url": f"/demo/mnist/-/jobs/{job['id']}"}
    assert ci["pipeline"]["id"] == job["pipeline_id"] and ci["pipeline"]["ref"] == "main"
    assert ci["pipeline"]["sha"] == job["sha"] and ci["pipeline"]["short_sha"] == job["sha"][:8]
    assert ci["pipeline"]["url"] == f"/demo/mnist/-/pipelines/{job['pipeline_id']}"
    assert ci["merge_request"] is None
    assert ci["user"]["username"] == "demo" and ci["user"]["url"] == "/demo"
    assert "avatar_url" in ci["user"]
    # The job page the info links to is the forge's own, and it exists.
    assert requests.get(forge.base_url + ci["job"]["url"], headers={"PRIVATE-TOKEN": forge.owner_token},
                        timeout=30).status_code == 200


def test_set_tag_and_log_batch_link_an_existing_run(forge, mlflow_client):
    job = start_job(forge, new_mr={"source": "feature-x", "title": "Tune it"}, ref="feature-x")
    exp = mlflow_client.create_experiment(_name())
    by_set_tag = mlflow_client.create_run(exp)
    assert run_row(forge, by_set_tag.info.run_id)[1] is None
    mlflow_client.set_tag(by_set_tag.info.run_id, CI_TAG, str(job["id"]))
    assert run_row(forge, by_set_tag.info.run_id)[1] == job["id"]

    from mlflow.entities import Metric, RunTag

    by_batch = mlflow_client.create_run(exp)
    mlflow_client.log_batch(by_batch.info.run_id, metrics=[Metric("loss", 1.0, 0, 0)],
                            tags=[RunTag(CI_TAG, f" {job['id']} ")])
    iid, linked = run_row(forge, by_batch.info.run_id)
    assert linked == job["id"]
    ci = ui_get(forge, PUBLIC, f"/ml/candidates/{iid}/ci.json", forge.owner_token).json()["ci"]
    assert ci["merge_request"]["iid"] == job["mr_iid"] and ci["merge_request"]["title"] == "Tune it"
    assert ci["merge_request"]["url"] == f"/demo/mnist/-/merge_requests/{job['mr_iid']}"
    assert ci["merge_request"]["target_branch"] == "main"


def test_job_token_links_runs_without_any_tag(forge, monkeypatch):
    job = start_job(forge)
    client = client_for(forge, PUBLIC, job["token"], monkeypatch)
    exp = client.create_experiment(_name())
    run = client.create_run(exp)  # as the MLflow client sends it: Authorization: Bearer <job token>
    assert CI_TAG not in run.data.tags
    assert run_row(forge, run.info.run_id)[1] == job["id"]
    client.log_metric(run.info.run_id, "loss", 0.5)
    client.set_terminated(run.info.run_id)

    # The JOB-TOKEN header (what scripts using $CI_JOB_TOKEN send) works the same.
    response = requests.post(forge.tracking_uri(PUBLIC) + "/api/2.0/mlflow/runs/create",
                             headers={"JOB-TOKEN": job["token"]}, json={"experiment_id": exp}, timeout=30)
    assert response.status_code == 200, response.text
    assert run_row(forge, response.json()["run"]["info"]["run_id"])[1] == job["id"]


def test_a_job_token_reaches_only_its_own_project(forge, monkeypatch):
    job = start_job(forge, project_id=PUBLIC)
    response = requests.post(forge.tracking_uri(PRIVATE) + "/api/2.0/mlflow/experiments/create",
                             headers={"JOB-TOKEN": job["token"]}, json={"name": _name()}, timeout=30)
    assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("value", ["987654321", "not-a-number", "-3", ""])
def test_unknown_job_id_leaves_the_run_unlinked_and_the_request_succeeds(forge, mlflow_client, value):
    exp = mlflow_client.create_experiment(_name())
    run = mlflow_client.create_run(exp, tags={CI_TAG: value})
    assert run.data.tags[CI_TAG] == value
    iid, linked = run_row(forge, run.info.run_id)
    assert linked is None
    mlflow_client.set_tag(run.info.run_id, CI_TAG, value + "0")
    assert run_row(forge, run.info.run_id)[1] is None
    # Stored all the same: "9876543210" is past the forge's job id column, and on PostgreSQL
    # the hook's failed lookup used to abort the transaction and lose the tag behind a 200.
    assert mlflow_client.get_run(run.info.run_id).data.tags[CI_TAG] == value + "0"
    body = ui_get(forge, PUBLIC, f"/ml/candidates/{iid}/ci.json", forge.owner_token).json()
    assert body == {"run_id": run.info.run_id, "run_iid": iid, "can_read_build": True, "ci": None}


def test_job_of_another_project_leaves_the_run_unlinked(forge, mlflow_client):
    foreign = start_job(forge, project_id=PRIVATE)
    exp = mlflow_client.create_experiment(_name())
    run = mlflow_client.create_run(exp, tags={CI_TAG: str(foreign["id"])})
    assert run.data.tags[CI_TAG] == str(foreign["id"])
    assert run_row(forge, run.info.run_id)[1] is None
    # A valid job of this project, set later, still links.
    own = start_job(forge, project_id=PUBLIC)
    mlflow_client.set_tag(run.info.run_id, CI_TAG, str(own["id"]))
    assert run_row(forge, run.info.run_id)[1] == own["id"]


def test_finished_jobs_token_is_refused(forge, monkeypatch):
    job = start_job(forge)
    client = client_for(forge, PUBLIC, job["token"], monkeypatch)
    exp = client.create_experiment(_name())
    finish_job(forge, job["id"], succeeded=True)
    with pytest.raises(MlflowException) as refused:
        client.create_run(exp)
    assert refused.value.get_http_status_code() == 401
    assert refused.value.error_code == "UNAUTHENTICATED"
    response = requests.post(forge.tracking_uri(PUBLIC) + "/api/2.0/mlflow/runs/create",
                             headers={"JOB-TOKEN": job["token"]}, json={"experiment_id": exp}, timeout=30)
    assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"


# -- who sees CI data ------------------------------------------------------------------
def test_ci_info_only_for_viewers_with_read_build(forge, monkeypatch):
    """In the forge a Guest reads experiments but not builds (Reporter+), as in
    GitLab; so a Guest of the private project sees the run without its CI data."""
    job = start_job(forge, project_id=PRIVATE, new_mr={"source": "secret-change"}, ref="secret-change")
    owner = client_for(forge, PRIVATE, forge.owner_token, monkeypatch)
    exp = owner.create_experiment(_name())
    run = owner.create_run(exp, tags={CI_TAG: str(job["id"])})
    iid, linked = run_row(forge, run.info.run_id)
    assert linked == job["id"]
    guest = member_token(forge, PRIVATE, Role.GUEST)
    reporter = member_token(forge, PRIVATE, Role.REPORTER)

    # The guest reads the run through MLflow (the tag is an ordinary tag)...
    guest_client = client_for(forge, PRIVATE, guest, monkeypatch)
    assert guest_client.get_run(run.info.run_id).info.run_id == run.info.run_id
    # ...but gets no CI data, and no CI views.
    hidden = ui_get(forge, PRIVATE, f"/ml/candidates/{iid}/ci.json", guest)
    assert hidden.status_code == 200
    assert hidden.json() == {"run_id": run.info.run_id, "run_iid": iid, "can_read_build": False, "ci": None}
    for suffix, params in ((f"/ml/merge_requests/{job['mr_iid']}.json", {}), ("/ml/ci/runs.json",
                                                                               {"pipeline_id": job["pipeline_id"]})):
        response = ui_get(forge, PRIVATE, suffix, guest, **params)
        assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert ui_get(forge, PRIVATE, f"/ml/merge_requests/{job['mr_iid']}", guest).status_code == 404

    for token in (reporter, forge.owner_token):
        shown = ui_get(forge, PRIVATE, f"/ml/candidates/{iid}/ci.json", token).json()
        assert shown["can_read_build"] is True and shown["ci"]["job"]["id"] == job["id"]
        assert shown["ci"]["merge_request"]["iid"] == job["mr_iid"]

    # Someone who cannot read the project at all learns nothing: 404, as for a missing project.
    for token in (forge.outsider_token, None):
        response = ui_get(forge, PRIVATE, f"/ml/candidates/{iid}/ci.json", token)
        assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_public_project_shows_ci_to_everyone_by_the_forges_rule(forge, mlflow_client):
    """The forge grants every read of a public project, read_build included
    (GitLab's "public pipelines" default), so the outsider and anonymous see CI."""
    job = start_job(forge)
    run = mlflow_client.create_run(mlflow_client.create_experiment(_name()), tags={CI_TAG: str(job["id"])})
    iid, _ = run_row(forge, run.info.run_id)
    for token in (forge.outsider_token, None):
        body = ui_get(forge, PUBLIC, f"/ml/candidates/{iid}/ci.json", token).json()
        assert body["can_read_build"] is True and body["ci"]["job"]["id"] == job["id"]


# -- runs by pipeline and merge request -------------------------------------------------
def test_runs_filtered_by_pipeline_and_by_merge_request(forge, mlflow_client):
    exp = mlflow_client.create_experiment(_name())
    other_exp = mlflow_client.create_experiment(_name())
    on_main = start_job(forge)
    mr_first = start_job(forge, new_mr={"source": "feat-filter"}, ref="feat-filter")
    mr_second = start_job(forge, mr_iid=mr_first["mr_iid"], ref="feat-filter")  # a second pipeline of the MR

    def linked_run(job, experiment=exp):
        return mlflow_client.create_run(experiment, tags={CI_TAG: str(job["id"])}).info.run_id

    main_runs = {linked_run(on_main), linked_run(on_main)}
    first = linked_run(mr_first)
    second_same, second_other = linked_run(mr_second), linked_run(mr_second, other_exp)
    second = {second_same, second_other}
    deleted = linked_run(mr_second)
    mlflow_client.delete_run(deleted)
    mlflow_client.create_run(exp)  # not linked: never in a CI filter

    def ids(**params):
        response = ui_get(forge, PUBLIC, "/ml/ci/runs.json", forge.owner_token, **params)
        assert response.status_code == 200, response.text
        return {r["run_id"] for r in response.json()["runs"]}

    assert ids(pipeline_id=on_main["pipeline_id"]) == main_runs
    assert ids(pipeline_id=mr_second["pipeline_id"]) == second
    assert ids(merge_request_iid=mr_first["mr_iid"]) == {first} | second
    assert ids(merge_request_iid=mr_first["mr_iid"], experiment_id=exp) == {first, second_same}
    assert ids(merge_request_iid=mr_first["mr_iid"], experiment_id=other_exp) == {second_other}
    assert ids(merge_request_iid=mr_first["mr_iid"], pipeline_id=mr_first["pipeline_id"]) == {first}
    assert ids(merge_request_iid=mr_first["mr_iid"], pipeline_id=on_main["pipeline_id"]) == set()
    assert ids(pipeline_id=987654) == set()  # a pipeline the host does not know
    assert ids(merge_request_iid=987654) == set()

    # Keyset pages: newest first, each run once.
    page1 = ui_get(forge, PUBLIC, "/ml/ci/runs.json", forge.owner_token, merge_request_iid=mr_first["mr_iid"],
                   max_results=2).json()
    assert len(page1["runs"]) == 2 and page1["next_page_token"]
    page2 = ui_get(forge, PUBLIC, "/ml/ci/runs.json", forge.owner_token, merge_request_iid=mr_first["mr_iid"],
                   max_results=2, page_token=page1["next_page_token"]).json()
    assert "next_page_token" not in page2
    assert {r["run_id"] for r in page1["runs"] + page2["runs"]} == {first} | second
    assert page1["runs"][0]["ci"]["pipeline"]["id"] == mr_second["pipeline_id"]
    assert page1["runs"][0]["url"].startswith("/demo/mnist/-/ml/candidates/")

    # Page tokens are signed and bound to their filter: a forged one is refused, MLflow-shaped.
    token = page1["next_page_token"]
    signed, _, signature = token.rpartition(".")
    same_filter = {"merge_request_iid": mr_first["mr_iid"], "max_results": 2}
    forged = ({**same_filter, "page_token": f"{signed}.{signature[::-1]}"},  # signature edited
              {**same_filter, "page_token": str(page1["runs"][-1]["run_iid"])},  # unsigned, the old form
              {**same_filter, "page_token": "not-a-token!"},
              {"pipeline_id": mr_second["pipeline_id"], "page_token": token})  # another filter's token
    for params in ({}, {"pipeline_id": "x"}, {"merge_request_iid": "0"}, {"pipeline_id": 1, "max_results": 0},
                   *forged):
        bad = ui_get(forge, PUBLIC, "/ml/ci/runs.json", forge.owner_token, **params)
        assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


# -- the merge-request view -------------------------------------------------------------
def _logged_run(client, experiment_id, job, metrics, status="FINISHED", end_time=None):
    run = client.create_run(experiment_id, tags={CI_TAG: str(job["id"])})
    for key, values in metrics.items():
        for step, value in enumerate(values if isinstance(values, list) else [values]):
            client.log_metric(run.info.run_id, key, value, step=step)
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status=status, end_time=end_time)
    return run.info.run_id


def test_merge_request_view_deltas_against_the_target_branch(forge, mlflow_client):
    exp = mlflow_client.create_experiment(_name("mr"))
    no_base_exp = mlflow_client.create_experiment(_name("mr-new"))
    older_main = start_job(forge)
    newer_main = start_job(forge)
    failed_main = start_job(forge)
    # Target-branch runs: the baseline is the FINISHED one that ended last,
    # not the failed or still running ones, whatever their times.
    _logged_run(mlflow_client, exp, older_main, {"val_loss": 9.0, "val_accuracy": 0.1}, end_time=1_000)
    baseline = _logged_run(mlflow_client, exp, newer_main,
                           {"val_loss": [1.0, 0.5], "val_accuracy": 0.75, "only_on_main": 1.0, "throughput": 10.0},
                           end_time=2_000)
    _logged_run(mlflow_client, exp, failed_main, {"val_loss": 0.01}, status="FAILED", end_time=3_000)
    _logged_run(mlflow_client, exp, failed_main, {"val_loss": 0.02}, status="RUNNING")

    title = "<img src=x onerror=alert(1)> better model"
    mr_job = start_job(forge, new_mr={"source": "better-model", "title": title}, ref="better-model")
    # The summary value is the one at the highest step: 0.375, not 0.25.
    mr_run = _logged_run(mlflow_client, exp, mr_job,
                         {"val_loss": [0.25, 0.375], "val_accuracy": 0.875, "throughput": 12.5, "new_metric": 2.0},
                         end_time=5_000)
    lone = _logged_run(mlflow_client, no_base_exp, mr_job, {"val_loss": 0.3})

    response = ui_get(forge, PUBLIC, f"/ml/merge_requests/{mr_job['mr_iid']}.json", forge.owner_token)
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["merge_request"]["title"] == title and view["target_branch"] == "main"
    assert view["merge_request"]["source_branch"] == "better-model"
    assert view["run_count"] == 2 and view["truncated"] is False
    groups = {g["experiment_id"]: g for g in view["experiments"]}
    assert set(groups) == {exp, no_base_exp}

    group = groups[exp]
    assert group["baseline"]["run_id"] == baseline and group["baseline_missing_reason"] is None
    assert group["baseline"]["ci"]["pipeline"]["id"] == newer_main["pipeline_id"]
    assert group["url"] == f"/demo/mnist/-/ml/experiments/{exp}"
    (run,) = group["runs"]
    assert run["run_id"] == mr_run and run["ci"]["merge_request"]["iid"] == mr_job["mr_iid"]
    deltas = {m["key"]: m for m in run["metrics"]}
    assert set(deltas) == {"val_loss", "val_accuracy", "throughput", "new_metric", "only_on_main"}
    assert deltas["val_loss"] == {"key": "val_loss", "value": 0.375, "baseline": 0.5, "delta": -0.125,
                                  "relative_delta": -0.25, "goal": "minimize", "verdict": "better"}
    assert deltas["val_accuracy"] == {"key": "val_accuracy", "value": 0.875, "baseline": 0.75, "delta": 0.125,
                                      "relative_delta": 0.125 / 0.75, "goal": "maximize", "verdict": "better"}
    assert deltas["throughput"] == {"key": "throughput", "value": 12.5, "baseline": 10.0, "delta": 2.5,
                                    "relative_delta": 0.25, "goal": None, "verdict": "unknown"}
    assert deltas["new_metric"] == {"key": "new_metric", "value": 2.0, "baseline": None, "delta": None,
                                    "relative_delta": None, "goal": None, "verdict": "unknown"}
    assert deltas["only_on_main"]["value"] is None and deltas["only_on_main"]["baseline"] == 1.0
    assert deltas["only_on_main"]["delta"] is None

    lone_group = groups[no_base_exp]
    assert lone_group["baseline"] is None
    assert lone_group["baseline_missing_reason"] == "no_finished_run_on_target_branch"
    assert lone_group["runs"][0]["run_id"] == lone
    assert lone_group["runs"][0]["metrics"] == [{"key": "val_loss", "value": 0.3, "baseline": None, "delta": None,
                                                 "relative_delta": None, "goal": "minimize", "verdict": "unknown"}]

    # A worse MR run in a second pipeline of the same MR.
    again = start_job(forge, mr_iid=mr_job["mr_iid"], ref="better-model")
    worse = _logged_run(mlflow_client, exp, again, {"val_loss": 0.75, "val_accuracy": 0.5}, end_time=6_000)
    view = ui_get(forge, PUBLIC, f"/ml/merge_requests/{mr_job['mr_iid']}.json", forge.owner_token).json()
    runs = {r["run_id"]: r for g in view["experiments"] for r in g["runs"]}
    verdicts = {m["key"]: (m["delta"], m["verdict"]) for m in runs[worse]["metrics"]}
    assert verdicts["val_loss"] == (0.25, "worse") and verdicts["val_accuracy"] == (-0.25, "worse")

    # The page: the host's layout, the values, the deltas, the title escaped.
    page = ui_get(forge, PUBLIC, f"/ml/merge_requests/{mr_job['mr_iid']}", forge.owner_token)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt; better model" in html
    assert f'data-run-id="{mr_run}"' in html and f'data-run-id="{baseline}"' in html
    assert "-0.125 (-25.0%)" in html and 'data-verdict="better"' in html and 'data-verdict="worse"' in html
    assert "No finished run of this experiment was logged by a CI job on the target branch." in html


def test_merge_request_view_edge_cases(forge, mlflow_client):
    # A target branch with no jobs at all.
    job = start_job(forge, new_mr={"source": "to-release", "target": "release-9"}, ref="to-release")
    exp = mlflow_client.create_experiment(_name())
    _logged_run(mlflow_client, exp, job, {"loss": 1.0})
    view = ui_get(forge, PUBLIC, f"/ml/merge_requests/{job['mr_iid']}.json", forge.owner_token).json()
    (group,) = view["experiments"]
    assert view["target_branch"] == "release-9" and group["baseline_missing_reason"] == "no_target_branch_jobs"

    # A merge request whose pipelines logged nothing: an empty view, not an error.
    empty = start_job(forge, new_mr={"source": "nothing-yet"}, ref="nothing-yet")
    view = ui_get(forge, PUBLIC, f"/ml/merge_requests/{empty['mr_iid']}.json", forge.owner_token).json()
    assert view["experiments"] == [] and view["run_count"] == 0 and view["merge_request"]["iid"] == empty["mr_iid"]
    page = ui_get(forge, PUBLIC, f"/ml/merge_requests/{empty['mr_iid']}", forge.owner_token)
    assert page.status_code == 200 and 'data-testid="mr-empty"' in page.text

    # An MR the host does not know; the private project's MR seen from the public one.
    private = start_job(forge, project_id=PRIVATE, new_mr={"source": "p"}, ref="p")
    for iid in (987654, private["mr_iid"] + 1000):
        missing = ui_get(forge, PUBLIC, f"/ml/merge_requests/{iid}.json", forge.owner_token)
        assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert ui_get(forge, PUBLIC, f"/ml/merge_requests/{iid}", forge.owner_token).status_code == 404
    # Unreadable project: 404 whoever asks.
    hidden = ui_get(forge, PRIVATE, f"/ml/merge_requests/{private['mr_iid']}.json", forge.outsider_token)
    assert hidden.status_code == 404 and hidden.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # Non-finite metrics travel as MLflow writes them, with no delta.
    nan_job = start_job(forge, mr_iid=job["mr_iid"], ref="to-release")
    odd = _logged_run(mlflow_client, exp, nan_job, {"loss": float("nan"), "gain": float("inf")})
    view = ui_get(forge, PUBLIC, f"/ml/merge_requests/{job['mr_iid']}.json", forge.owner_token).json()
    (odd_run,) = [r for r in view["experiments"][0]["runs"] if r["run_id"] == odd]
    metrics = {m["key"]: m for m in odd_run["metrics"]}
    assert metrics["loss"]["value"] == "NaN" and metrics["gain"]["value"] == "Infinity"
    assert metrics["loss"]["delta"] is None and metrics["gain"]["delta"] is None


# -- flask forge ci-job, end to end -----------------------------------------------------
def _ci_job(forge, database_url, tmp_path, *args, env_extra=None):
    env = child_env(
        DATABASE_URL=database_url,
        SECRET_KEY="test-secret",
        FORGE_BASE_URL=forge.base_url,
        GL_ML_TRACKING_STORAGE_PATH=str(tmp_path / "storage"),
    )
    env.update(env_extra or {})
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "GITLAB_CI", "CI_JOB_ID"):
        env.pop(key, None)
    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    return subprocess.run([flask, "--app", "examples.host_app", "forge", "ci-job", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_forge_ci_job_command_runs_train_py_end_to_end(forge, database_url, tmp_path, mlflow_client):
    experiment = _name("digits")
    train = [sys.executable, os.path.join(ROOT, "examples", "train.py")]
    env = {"TRAIN_EPOCHS": "2", "MLFLOW_EXPERIMENT_NAME": experiment}

    on_main = _ci_job(forge, database_url, tmp_path, "--project", "demo/mnist", "--ref", "main", "--", *train,
                      env_extra=env)
    assert on_main.returncode == 0, on_main.stderr
    in_mr = _ci_job(forge, database_url, tmp_path, "--project", "demo/mnist", "--merge-request", "--", *train,
                    env_extra={**env, "TRAIN_LEARNING_RATE": "0.05"})
    assert in_mr.returncode == 0, in_mr.stderr
    assert "/demo/mnist/-/ml/merge_requests/" in in_mr.stderr

    exp = mlflow_client.get_experiment_by_name(experiment)
    runs = mlflow_client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    main_run, mr_run = runs
    assert main_run.data.params["epochs"] == "2" and mr_run.data.params["learning_rate"] == "0.05"
    assert set(mr_run.data.metrics) == {"train_loss", "val_loss", "val_accuracy", "val_f1"}
    history = mlflow_client.get_metric_history(mr_run.info.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1]

    with forge.app.app_context():
        jobs = {}
        for run in runs:
            _iid, job_id = run_row(forge, run.info.run_id)
            job = db.session.get(Job, job_id)
            # The tag the script set (GITLAB_CI) and the job token agree.
            assert run.data.tags[CI_TAG] == str(job_id)
            jobs[run.info.run_id] = (job.status, job.pipeline.ref, job.pipeline.merge_request)
        assert jobs[main_run.info.run_id][:2] == ("success", "main")
        mr = jobs[mr_run.info.run_id][2]
        assert jobs[mr_run.info.run_id][0] == "success" and mr is not None and mr.target_branch == "main"
        mr_iid = mr.iid

    view = ui_get(forge, PUBLIC, f"/ml/merge_requests/{mr_iid}.json", forge.owner_token).json()
    (group,) = view["experiments"]
    assert group["baseline"]["run_id"] == main_run.info.run_id
    (run,) = group["runs"]
    assert run["run_id"] == mr_run.info.run_id
    for metric in run["metrics"]:
        key = metric["key"]
        assert metric["value"] == mr_run.data.metrics[key] and metric["baseline"] == main_run.data.metrics[key]
        assert metric["delta"] == mr_run.data.metrics[key] - main_run.data.metrics[key]

    # A failing command fails the job, and its exit code comes back.
    failing = _ci_job(forge, database_url, tmp_path, "--project", "demo/mnist", "--",
                      sys.executable, "-c", "import os, sys; print(os.environ['CI_JOB_ID']); sys.exit(3)")
    assert failing.returncode == 3, failing.stderr
    failed_job_id = int(failing.stdout.strip())
    with forge.app.app_context():
        assert db.session.get(Job, failed_job_id).status == "failed"


def test_ci_job_command_gives_the_job_gitlabs_variables(forge, database_url, tmp_path):
    probe = ("import json, os; print(json.dumps({k: v for k, v in os.environ.items()"
             " if k.startswith(('CI', 'GITLAB', 'MLFLOW_TRACKING'))}))")
    result = _ci_job(forge, database_url, tmp_path, "--project", "demo/mnist", "--merge-request", "--ref", "probe-vars",
                     "--", sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    import json

    env = json.loads(result.stdout.strip().splitlines()[-1])
    job_id = env["CI_JOB_ID"]
    assert env["GITLAB_CI"] == env["CI"] == "true"
    assert env["CI_PROJECT_ID"] == "1" and env["CI_PROJECT_PATH"] == "demo/mnist"
    assert env["CI_COMMIT_REF_NAME"] == "probe-vars" and len(env["CI_COMMIT_SHA"]) == 40
    assert env["CI_SERVER_URL"] == forge.base_url
    assert env["CI_JOB_URL"] == f"{forge.base_url}/demo/mnist/-/jobs/{job_id}"
    assert env["CI_PIPELINE_URL"] == f"{forge.base_url}/demo/mnist/-/pipelines/{env['CI_PIPELINE_ID']}"
    assert env["MLFLOW_TRACKING_URI"] == forge.tracking_uri(1)
    assert env["MLFLOW_TRACKING_TOKEN"] == env["CI_JOB_TOKEN"] and env["CI_JOB_TOKEN"].startswith("glcbt-")
    assert env["CI_MERGE_REQUEST_IID"].isdigit() and env["CI_MERGE_REQUEST_TARGET_BRANCH_NAME"] == "main"
    # The job is over, so its token no longer works.
    response = requests.post(forge.tracking_uri(1) + "/api/2.0/mlflow/experiments/search",
                             headers={"Authorization": f"Bearer {env['CI_JOB_TOKEN']}"}, json={}, timeout=30)
    assert response.status_code == 401

    refused = _ci_job(forge, database_url, tmp_path, "--project", "demo/mnist", "--user", "outsider", "--", "true")
    assert refused.returncode != 0 and "cannot run pipelines" in refused.stderr


def test_without_a_ci_jobs_hook_filters_match_nothing_and_the_mr_view_is_404(forge, mlflow_client):
    """The hook's safe default (and a host hook that raises) never breaks a page."""
    from gl_ml_tracking import get_state

    job = start_job(forge, new_mr={"source": "no-hook"}, ref="no-hook")
    mlflow_client.create_run(mlflow_client.create_experiment(_name()), tags={CI_TAG: str(job["id"])})
    hooks = get_state(forge.app).extension._hooks
    real = hooks.pop("ci_jobs_for")

    def broken(*_args, **_kwargs):
        raise RuntimeError("host bug")

    try:
        for replacement in (None, broken):
            if replacement is not None:
                hooks["ci_jobs_for"] = replacement
            runs = ui_get(forge, PUBLIC, "/ml/ci/runs.json", forge.owner_token, pipeline_id=job["pipeline_id"])
            assert runs.status_code == 200 and runs.json() == {"runs": []}
            view = ui_get(forge, PUBLIC, f"/ml/merge_requests/{job['mr_iid']}.json", forge.owner_token)
            assert view.status_code == 404 and view.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    finally:
        hooks["ci_jobs_for"] = real
    assert ui_get(forge, PUBLIC, f"/ml/merge_requests/{job['mr_iid']}.json", forge.owner_token).status_code == 200
