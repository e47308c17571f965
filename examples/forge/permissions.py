"""What a caller may do in a project, GitLab style: a minimum role per
permission, public projects readable by anyone, writes only with the ``api``
scope, and CI job tokens confined to their own project."""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import bindparam, select

from gl_ml_tracking import hooks as perms

from . import prefetch
from .models import Membership, Role, db

# The forge's own pages use this one: seeing the project at all.
READ_PROJECT = "read_project"

READS = {
    READ_PROJECT: Role.GUEST,
    perms.READ_MODEL_EXPERIMENTS: Role.GUEST,
    perms.READ_PACKAGE: Role.GUEST,
    perms.READ_MODEL_REGISTRY: Role.GUEST,
    perms.READ_BUILD: Role.REPORTER,
}
WRITES = {
    perms.WRITE_MODEL_EXPERIMENTS: Role.DEVELOPER,
    perms.WRITE_PACKAGE: Role.DEVELOPER,
    perms.WRITE_MODEL_REGISTRY: Role.DEVELOPER,
    perms.ADMIN_MODEL_REGISTRY: Role.MAINTAINER,  # webhooks (issue 16)
}
READ_SCOPES = frozenset({"api", "read_api"})
WRITE_SCOPES = frozenset({"api"})


# Built once: permission checks run it (unless the project query read the role already).
_ROLE = select(Membership.role).where(Membership.user_id == bindparam("user_id"),
                                     Membership.project_id == bindparam("project_id"))


@prefetch.per_request  # an optimisation (prefetch.py): a role read once in a request is not read again
def role_in(user_id: Any, project_id: Any) -> Optional[int]:
    """The user's role in the project; ``None`` when not a member."""
    # A column-only select: run on the session's connection, without the ORM's
    # statement and row handling.
    return db.session.connection().execute(_ROLE, {"user_id": user_id, "project_id": project_id}).scalar()


def is_allowed(user: Optional[Any], project: Any, permission: str) -> bool:
    """The ``permission_checker`` hook. Unknown permissions are refused."""
    if user is not None:
        job_project = getattr(user, "ci_project_id", None)
        if job_project is not None and job_project != project.id:
            return False  # a job token reaches its own project and nothing else
        scopes = set(getattr(user, "scopes", ()))
    if permission in WRITES:
        if user is None or not scopes & WRITE_SCOPES:
            return False
        role = role_in(user.id, project.id)
        return role is not None and role >= WRITES[permission]
    if permission in READS:
        if user is not None and not scopes & READ_SCOPES:
            return False
        if getattr(project, "visibility", None) == "public":
            return True
        if user is None:
            return False
        role = role_in(user.id, project.id)
        return role is not None and role >= READS[permission]
    return False
