"""Link runs to the CI job that made them, through the host's ``ci_job_loader``.

Two ways, as GitLab plus one: the ``gitlab.CI_JOB_ID`` tag (at creation, by
set-tag or in a batch), and automatically when the request was authenticated
with a CI job token (the identity carries ``ci_job_id``). A job the host does
not know, or one of another project, leaves the run unlinked: logging never
fails because of CI metadata.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from ..state import get_state
from ..models import Run
from .constants import CI_JOB_TAG

log = logging.getLogger("gl_ml_tracking.ci")


def _job_id(value: Any) -> Optional[int]:
    try:
        job_id = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return job_id if 0 < job_id < 2**63 else None


def resolve_job(project: Any, job_id: Any) -> Any:
    """The host's job if it exists and belongs to ``project``; else None."""
    job_id = _job_id(job_id)
    if job_id is None:
        return None
    try:
        job = _call_loader(project, job_id)
    except Exception:  # a host bug must not break logging
        log.exception("ci_job_loader failed for job %s", job_id)
        return None
    if job is None or str(getattr(job, "project_id", None)) != str(project.id):
        return None
    return job


def _call_loader(project: Any, job_id: int) -> Any:
    """The host's hook, inside a savepoint on PostgreSQL: a failed statement of the
    host's (a job id beyond its column's range, say) aborts the whole transaction
    there, and the run's own writes of this request would then be lost while the
    client got a 200. SQLite keeps the transaction usable, so it pays nothing."""
    loader = get_state().hook("ci_job_loader")
    session = get_state().session
    if session.get_bind().dialect.name != "postgresql":
        return loader(project, job_id)
    with session.begin_nested():
        return loader(project, job_id)


def ci_job_of_new_run(project: Any, tags: dict, caller: Any) -> Optional[int]:
    """The job a run being created belongs to: the one its ``gitlab.CI_JOB_ID`` tag
    names, else the caller's own when it authenticated with a CI job token."""
    for job_id in (tags.get(CI_JOB_TAG), getattr(caller, "ci_job_id", None)):
        job = resolve_job(project, job_id) if job_id else None
        if job is not None:
            return int(job.id)
    return None


def link_run_to_tagged_job(project: Any, run: Run, tags: dict) -> None:
    """A ``gitlab.CI_JOB_ID`` tag set on an existing run links it to that job; a job
    that does not count leaves the run's link as it was."""
    if CI_JOB_TAG in tags:
        job = resolve_job(project, tags[CI_JOB_TAG])
        if job is not None:
            run.ci_job_id = int(job.id)
