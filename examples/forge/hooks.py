"""Wire the tracking extension's hooks to the forge's tables.

Access control takes three hooks, each a plain lookup:

* ``user_loader``: :func:`.auth.identity_from_request`, the user behind the request's token
  (or session);
* ``project_loader``: :func:`find_project`, the project by id or full path;
* ``permission_checker``: :func:`.permissions.is_allowed`, the caller's role in the project
  (:func:`.permissions.role_in`) against the least role the permission needs.

:func:`register_hooks` registers them with one optimisation, kept apart at the end of this
module and in :mod:`.prefetch`: the project query also reads the caller's role, so that the
permission check needs no query of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import bindparam, select

from gl_ml_tracking.hooks import CiJob, CiMergeRequest, CiPipeline, UserRef

from . import auth, ci, permissions, prefetch
from .models import Job, Project, User, db, web_path

MAX_REF_LENGTH = 1024


@dataclass(frozen=True)
class ProjectRef:
    """What the extension is handed for a project: plain columns, no ORM object
    (every API request resolves its project, and ``Session.get`` cost more than
    the query itself)."""

    id: int
    full_path: str
    name: str
    visibility: str
    description: Optional[str]

    @property
    def web_url(self) -> str:
        return web_path(self.full_path)


# Built once: every API call runs one of them.
_PROJECT = select(Project.id, Project.full_path, Project.name, Project.visibility, Project.description)
_PROJECT_BY = {
    "id": _PROJECT.where(Project.id == bindparam("ref")),
    "path": _PROJECT.where(Project.full_path == bindparam("ref")),
}
_MAX_ID = 2**31 - 1  # Project.id is an INTEGER column


def project_key(ref: Any) -> Optional[tuple[str, Any]]:
    """What ``ref`` names: ``("id", 42)`` or ``("path", "group/sub/project")``; ``None``
    when it can name no project."""
    ref = str(ref).strip()
    if not ref or len(ref) > MAX_REF_LENGTH:
        return None
    if ref.isdecimal():  # not isdigit: int("²") fails
        return ("id", int(ref)) if int(ref) <= _MAX_ID else None
    return "path", ref.strip("/")


def find_project(ref: Any) -> Optional[ProjectRef]:
    """``project_loader``: a numeric id or a full path such as ``group/sub/project``
    (the extension has already URL-decoded it)."""
    key = project_key(ref)
    if key is None:
        return None
    by, value = key
    # Columns only: the session's connection, without the ORM's statement and row handling.
    row = db.session.connection().execute(_PROJECT_BY[by], {"ref": value}).first()
    return ProjectRef(*row) if row is not None else None


def present_user(user_id: Any) -> Optional[UserRef]:
    """``user_presenter``: how the extension shows a user (run author, CI user)."""
    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    return user_ref(user) if user is not None else None


def user_ref(user: User) -> UserRef:
    return UserRef(id=user.id, username=user.username, name=user.name, url=user.web_url,
                   avatar_url=user.avatar_url or None)


def load_ci_job(project: Any, job_id: Any) -> Optional[CiJob]:
    """``ci_job_loader``: the job with its pipeline, merge request and user, or
    ``None`` when there is no such job in *this* project."""
    try:
        job = db.session.get(Job, int(str(job_id)))
    except (TypeError, ValueError):
        return None
    if job is None or job.project_id != project.id:
        return None
    pipeline = job.pipeline
    mr = pipeline.merge_request if pipeline is not None else None
    return CiJob(
        id=job.id,
        project_id=job.project_id,
        name=job.name,
        status=job.status,
        url=job.web_url,
        pipeline=CiPipeline(id=pipeline.id, ref=pipeline.ref, sha=pipeline.sha, url=pipeline.web_url)
        if pipeline is not None else None,
        merge_request=CiMergeRequest(iid=mr.iid, title=mr.title, url=mr.web_url, target_branch=mr.target_branch,
                                     source_branch=mr.source_branch) if mr is not None else None,
        user=user_ref(job.user),
    )


def register_hooks(ml) -> None:
    # Plainly: ml.user_loader(auth.identity_from_request) and ml.project_loader(find_project).
    ml.user_loader(prefetch.remember_caller(auth.identity_from_request))
    ml.project_loader(find_project_and_role)
    ml.permission_checker(permissions.is_allowed)
    ml.ci_job_loader(load_ci_job)
    ml.ci_jobs_loader(ci.job_ids_for)
    ml.user_presenter(present_user)


# -- optimisation: the caller's role read with the project ---------------------------------
# One round trip less per checked API call (5 instead of 6 for a log_metric on PostgreSQL);
# what it does and why it stops at the request: prefetch.py.
_PROJECT_AND_ROLE_BY = {by: prefetch.with_callers_role(stmt) for by, stmt in _PROJECT_BY.items()}


def find_project_and_role(ref: Any) -> Optional[ProjectRef]:
    """``project_loader`` as registered: :func:`find_project`, and when the ``user_loader``
    found a caller, the caller's role in the project from the same query, remembered for
    :func:`.permissions.role_in`."""
    user_id = prefetch.caller_id()
    if user_id is None:
        return find_project(ref)
    key = project_key(ref)
    if key is None:
        return None
    by, value = key
    row = db.session.connection().execute(_PROJECT_AND_ROLE_BY[by], {"ref": value, "user_id": user_id}).first()
    if row is None:
        return None
    prefetch.remember_role(user_id, row.id, row.role)
    return ProjectRef(*row[:-1])
