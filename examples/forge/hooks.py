"""Wire the tracking extension's hooks to the forge's tables."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from flask import has_request_context, request
from sqlalchemy import and_, bindparam, select

from gl_ml_tracking.hooks import CiJob, CiMergeRequest, CiPipeline, UserRef

from . import auth, ci, permissions
from .models import Job, Membership, Project, User, db, web_path

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


_PROJECT_COLUMNS = (Project.id, Project.full_path, Project.name, Project.visibility, Project.description)
# With the caller's role in the same query: the permission checks that follow then
# need no query of their own (one round trip less on every API call).
_PROJECT_AND_ROLE = select(*_PROJECT_COLUMNS, Membership.role).outerjoin(
    Membership, and_(Membership.project_id == Project.id, Membership.user_id == bindparam("user_id"))
)
_PROJECT_BY_ID = _PROJECT_AND_ROLE.where(Project.id == bindparam("ref"))
_PROJECT_BY_PATH = _PROJECT_AND_ROLE.where(Project.full_path == bindparam("ref"))
_MAX_ID = 2**31 - 1  # Project.id is an INTEGER column
_API_IDENTITY = "forge.api_identity"  # request.environ key: who the extension was told is calling


def api_identity(request) -> Optional[auth.Identity]:
    """``user_loader``: the request's identity, remembered for ``find_project``."""
    identity = auth.identity_from_request(request)
    request.environ[_API_IDENTITY] = identity
    return identity


def find_project(ref: Any) -> Optional[ProjectRef]:
    """``project_loader``: a numeric id or a full path such as ``group/sub/project``
    (the extension has already URL-decoded it)."""
    ref = str(ref).strip()
    if not ref or len(ref) > MAX_REF_LENGTH:
        return None
    if ref.isdecimal():  # not isdigit: int("²") fails
        if int(ref) > _MAX_ID:
            return None
        stmt, value = _PROJECT_BY_ID, int(ref)
    else:
        stmt, value = _PROJECT_BY_PATH, ref.strip("/")
    caller = request.environ.get(_API_IDENTITY) if has_request_context() else None
    user_id = caller.id if caller is not None else None
    row = db.session.connection().execute(stmt, {"ref": value, "user_id": user_id}).first()
    if row is None:
        return None
    if user_id is not None:
        permissions.remember_role(user_id, row.id, row.role)
    return ProjectRef(*row[:-1])


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
    ml.project_loader(find_project)
    ml.user_loader(api_identity)
    ml.permission_checker(permissions.is_allowed)
    ml.ci_job_loader(load_ci_job)
    ml.ci_jobs_loader(ci.job_ids_for)
    ml.user_presenter(present_user)
