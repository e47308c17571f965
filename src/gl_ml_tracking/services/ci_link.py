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

from sqlalchemy.orm import Session

from ..state import get_state
from ..models import Run
from .runs import CI_JOB_TAG

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
        job = get_state().hook("ci_job_loader")(project, job_id)
    except Exception:  # a host bug must not break logging
        log.exception("ci_job_loader failed for job %s", job_id)
        return None
    if job is None or str(getattr(job, "project_id", None)) != str(project.id):
        return None
    return job


def link_ci_job_from_tags(session: Session, project: Any, run: Run, tags: dict, user: Any, creating: bool = False) -> None:
    if CI_JOB_TAG in tags:
        job = resolve_job(project, tags[CI_JOB_TAG])
        run.ci_job_id = int(job.id) if job is not None else run.ci_job_id
    if creating and run.ci_job_id is None and getattr(user, "ci_job_id", None):
        job = resolve_job(project, user.ci_job_id)
        if job is not None:
            run.ci_job_id = int(job.id)
