"""What a caller may do in a project, GitLab style: a minimum role per
permission, public projects readable by anyone, writes only with the ``api``
scope, and CI job tokens confined to their own project."""
from __future__ import annotations

from typing import Any, Optional

from flask import has_request_context, request
from sqlalchemy import bindparam, select

from gl_ml_tracking import hooks as perms

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
}
READ_SCOPES = frozenset({"api", "read_api"})
WRITE_SCOPES = frozenset({"api"})


# Built once: write checks run it on every API call.
_ROLE = select(Membership.role).where(Membership.user_id == bindparam("user_id"),
                                     Membership.project_id == bindparam("project_id"))


def _known_roles() -> dict:
    """Roles already read in this request: {(user_id, project_id): role or None}.
    Per request (its WSGI environ), never longer: a role may change between requests."""
    if not has_request_context():
        return {}
    return request.environ.setdefault("forge.known_roles", {})


def remember_role(user_id: Any, project_id: Any, role: Optional[int]) -> None:
    """Record a role read along with something else (the project lookup joins it)."""
    _known_roles()[(user_id, project_id)] = role


def role_in(user_id: Any, project_id: Any) -> Optional[int]:
    known = _known_roles()
    key = (user_id, project_id)
    if key not in known:
        # A column-only select: run on the session's connection, without the ORM's
        # statement and row handling (every API request asks this).
        known[key] = db.session.connection().execute(_ROLE, {"user_id": user_id, "project_id": project_id}).scalar()
    return known[key]


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
