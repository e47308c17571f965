"""CI in the example forge: which jobs belong to a pipeline, a merge request
or a branch (the extension's ``ci_jobs_for`` hook), and ``flask forge ci-job``,
which plays one CI job end to end without a CI system:

    flask --app examples.host_app forge ci-job --project demo/mnist -- python examples/train.py
    flask --app examples.host_app forge ci-job --project demo/mnist --merge-request -- python examples/train.py

It creates a pipeline (and, with ``--merge-request``, a merge request) and a
running job with a fresh job token, runs the command with the variables a
GitLab runner sets (``CI_JOB_ID``, ``CI_JOB_TOKEN``, ``GITLAB_CI``...) plus
``MLFLOW_TRACKING_URI`` and ``MLFLOW_TRACKING_TOKEN=<job token>``, then marks
the job success or failed by the command's exit code, which ends the token.
The forge must be serving (``make run``) for the command to log anything.
"""
from __future__ import annotations

import os
import secrets
import subprocess
from typing import Any, Optional, Sequence

import click
from sqlalchemy import func, select

from . import auth, permissions, urls
from .models import Job, MergeRequest, Pipeline, Project, Role, User, db

# The newest jobs of a branch given to the extension (it looks for the latest
# finished run among them; older ones never matter).
MAX_REF_JOBS = 10_000


# -- the ci_jobs_for hook ----------------------------------------------------------------
def _as_int(value: Any) -> Optional[int]:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def job_ids_for(project: Any, pipeline_id: Any = None, merge_request_iid: Any = None,
                ref: Optional[str] = None) -> Optional[list[int]]:
    """``ci_jobs_for``: job ids of this project's pipeline, of the pipelines of
    its merge request, or of the branch pipelines on ``ref`` (newest first).
    None for a pipeline or merge request this project does not have."""
    if pipeline_id is not None:
        pipeline = db.session.get(Pipeline, _as_int(pipeline_id)) if _as_int(pipeline_id) else None
        if pipeline is None or pipeline.project_id != project.id:
            return None
        return list(db.session.scalars(select(Job.id).where(Job.pipeline_id == pipeline.id)))
    if merge_request_iid is not None:
        iid = _as_int(merge_request_iid)
        mr = db.session.scalar(select(MergeRequest).where(MergeRequest.project_id == project.id,
                                                          MergeRequest.iid == iid)) if iid else None
        if mr is None:
            return None
        return list(db.session.scalars(
            select(Job.id).join(Pipeline, Pipeline.id == Job.pipeline_id)
            .where(Pipeline.project_id == project.id, Pipeline.merge_request_id == mr.id)))
    if ref is not None:
        # Branch pipelines only: a merge request's pipelines are not the branch's history.
        return list(db.session.scalars(
            select(Job.id).join(Pipeline, Pipeline.id == Job.pipeline_id)
            .where(Pipeline.project_id == project.id, Pipeline.ref == ref, Pipeline.merge_request_id.is_(None))
            .order_by(Job.id.desc()).limit(MAX_REF_JOBS)))
    return None


# -- pipelines, jobs and merge requests ------------------------------------------------
def open_merge_request(project: Project, author: User, source_branch: str, target_branch: str = "main",
                       title: Optional[str] = None) -> MergeRequest:
    iid = (db.session.scalar(select(func.max(MergeRequest.iid)).where(MergeRequest.project_id == project.id)) or 0) + 1
    mr = MergeRequest(project=project, iid=iid, title=title or f"Try a model change on {source_branch}",
                      source_branch=source_branch, target_branch=target_branch, author=author)
    db.session.add(mr)
    db.session.flush()
    return mr


def start_job(project: Project, user: User, ref: str, merge_request: Optional[MergeRequest] = None,
              name: str = "train", sha: Optional[str] = None) -> tuple[Job, str]:
    """A new pipeline with one running job; returns the job and its token
    (shown once: only its digest is stored)."""
    pipeline = Pipeline(project=project, ref=ref, sha=sha or secrets.token_hex(20), status="running",
                        merge_request=merge_request, user=user)
    token = auth.new_token(auth.JOB_TOKEN_PREFIX)
    job = Job(project=project, pipeline=pipeline, name=name, status="running", user=user,
              token_digest=auth.token_digest(token))
    db.session.add_all([pipeline, job])
    db.session.flush()
    return job, token


def finish_job(job: Job, succeeded: bool) -> None:
    """End the job (and its one-job pipeline); its token stops working."""
    job.status = job.pipeline.status = "success" if succeeded else "failed"


def ci_environment(job: Job, token: str, base_url: str) -> dict[str, str]:
    """The variables a GitLab runner gives a job, as far as the forge has them."""
    base = base_url.rstrip("/")
    project, pipeline = job.project, job.pipeline
    mr = pipeline.merge_request
    env = {
        "GITLAB_CI": "true",
        "CI": "true",
        "CI_SERVER_URL": base,
        "CI_PROJECT_ID": str(project.id),
        "CI_PROJECT_PATH": project.full_path,
        "CI_PROJECT_URL": base + project.web_url,
        "CI_PIPELINE_ID": str(pipeline.id),
        "CI_PIPELINE_URL": base + pipeline.web_url,
        "CI_PIPELINE_SOURCE": "merge_request_event" if mr is not None else "push",
        "CI_JOB_ID": str(job.id),
        "CI_JOB_NAME": job.name,
        "CI_JOB_URL": base + job.web_url,
        "CI_JOB_TOKEN": token,
        "CI_COMMIT_REF_NAME": pipeline.ref,
        "CI_COMMIT_SHA": pipeline.sha,
        "CI_COMMIT_SHORT_SHA": pipeline.sha[:8],
        "GITLAB_USER_LOGIN": job.user.username,
        "MLFLOW_TRACKING_URI": base + urls.tracking_path(project),
        "MLFLOW_TRACKING_TOKEN": token,
    }
    if mr is not None:
        env.update({
            "CI_MERGE_REQUEST_IID": str(mr.iid),
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": mr.source_branch,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": mr.target_branch,
            "CI_MERGE_REQUEST_TITLE": mr.title,
        })
    else:
        env["CI_COMMIT_BRANCH"] = pipeline.ref
    return env


def _child_environment(ci_env: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # Basic-auth settings would win over the token in the MLflow client; a
    # leftover CI_MERGE_REQUEST_IID would claim a merge request this job is not for.
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_RUN_ID"):
        env.pop(key, None)
    for key in [k for k in env if k.startswith("CI_MERGE_REQUEST_")]:
        env.pop(key)
    env.update(ci_env)
    return env


# -- flask forge ci-job ------------------------------------------------------------------
def _find_project(ref: str) -> Project:
    ref = ref.strip().strip("/")
    project = db.session.get(Project, int(ref)) if ref.isdecimal() else db.session.scalar(
        select(Project).where(Project.full_path == ref))
    if project is None:
        raise click.ClickException(f"no project {ref!r}")
    return project


@click.command("ci-job", context_settings={"ignore_unknown_options": True})
@click.option("--project", "project_ref", required=True, help="Project full path or id, e.g. demo/mnist.")
@click.option("--ref", default=None,
              help="Branch the pipeline runs on. Default: main; with --merge-request, a new branch ml-change-<iid>.")
@click.option("--merge-request", "new_mr", is_flag=True, help="Open a merge request and run the job in its pipeline.")
@click.option("--merge-request-iid", type=click.IntRange(min=1), default=None,
              help="Run the job in a new pipeline of this existing merge request.")
@click.option("--target-branch", default="main", show_default=True, help="Target branch of a new merge request.")
@click.option("--title", default=None, help="Title of a new merge request.")
@click.option("--user", "username", default="demo", show_default=True, help="Who triggers the pipeline.")
@click.option("--job-name", default="train", show_default=True)
@click.option("--sha", default=None, help="Commit SHA of the pipeline (default: random).")
@click.option("--base-url", default=lambda: os.environ.get("FORGE_BASE_URL", "http://127.0.0.1:5000"),
              show_default="$FORGE_BASE_URL or http://127.0.0.1:5000", help="Where the forge is served.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def ci_job_command(project_ref: str, ref: Optional[str], new_mr: bool, merge_request_iid: Optional[int],
                   target_branch: str, title: Optional[str], username: str, job_name: str, sha: Optional[str],
                   base_url: str, command: Sequence[str]) -> None:
    """Play a CI job: pipeline + running job + token, run COMMAND with GitLab's
    CI variables and MLFLOW_TRACKING_URI/TOKEN, then finish the job by its
    exit code. Put the command after `--`."""
    project = _find_project(project_ref)
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    role = permissions.role_in(user.id, project.id)
    if role is None or role < Role.DEVELOPER:
        raise click.ClickException(f"{username} cannot run pipelines in {project.full_path} (needs Developer or more)")
    if new_mr and merge_request_iid:
        raise click.ClickException("give --merge-request or --merge-request-iid, not both")

    mr = None
    if merge_request_iid:
        mr = db.session.scalar(select(MergeRequest).where(MergeRequest.project_id == project.id,
                                                          MergeRequest.iid == merge_request_iid))
        if mr is None:
            raise click.ClickException(f"no merge request !{merge_request_iid} in {project.full_path}")
        ref = ref or mr.source_branch
    elif new_mr:
        if ref == target_branch:
            raise click.ClickException("a merge request needs a source branch other than its target branch")
        next_iid = (db.session.scalar(select(func.max(MergeRequest.iid))
                                      .where(MergeRequest.project_id == project.id)) or 0) + 1
        ref = ref or f"ml-change-{next_iid}"
        mr = open_merge_request(project, user, ref, target_branch, title)
    ref = ref or "main"

    job, token = start_job(project, user, ref, mr, job_name, sha)
    db.session.commit()  # the server (another process) must see the job before the command calls it
    env = ci_environment(job, token, base_url)
    where = f" for merge request !{mr.iid} ({mr.source_branch} → {mr.target_branch})" if mr else ""
    click.echo(f"Pipeline #{job.pipeline.id} on {ref}{where}: job #{job.id} '{job.name}' is running.", err=True)
    click.echo(f"  {env['CI_JOB_URL']}", err=True)

    exit_code = 1
    try:
        exit_code = subprocess.run(list(command), env=_child_environment(env)).returncode
    except OSError as exc:
        click.echo(f"Could not start {command[0]!r}: {exc}", err=True)
        exit_code = 127
    finally:
        job = db.session.get(Job, job.id)
        finish_job(job, exit_code == 0)
        db.session.commit()
        click.echo(f"Job #{job.id} {job.status}.", err=True)
        if mr is not None:
            click.echo(f"  Runs and metric changes: {base_url.rstrip('/')}"
                       f"{urls.experiments_path(project).rsplit('/experiments', 1)[0]}/merge_requests/{mr.iid}",
                       err=True)
    if exit_code != 0:
        raise SystemExit(exit_code)
