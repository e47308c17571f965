"""Who is calling, which project, and what they may do: the hooks, resolved
once per request and cached on ``flask.g``."""
from __future__ import annotations

from typing import Any, Optional

from flask import request

from . import hooks
from .errors import PermissionDenied, ProjectNotFound, Unauthenticated
from .state import get_state

def _request_cache() -> dict:
    # Per request, not per app context: a test (or a host) may keep one app
    # context open across many requests, and ``g`` would then leak the caller.
    return request.environ.setdefault("gl_ml_tracking.cache", {})


def current_user() -> Optional[Any]:
    cache = _request_cache()
    if "user" not in cache:
        cache["user"] = get_state().hook("user_loader")(request)
    return cache["user"]


def load_project(ref: str) -> Any:
    """The project named by ``ref`` if the caller may read anything of it;
    otherwise ``ProjectNotFound`` (the same answer as a missing project)."""
    # Identify the caller first, always: otherwise only an existing project would touch the
    # session, and its ``Vary: Cookie`` header would tell a private project from a missing one.
    current_user()
    cache = _request_cache().setdefault("projects", {})
    if ref not in cache:
        cache[ref] = get_state().hook("project_loader")(ref)
    project = cache[ref]
    if project is None:
        raise ProjectNotFound()
    return project


def can(project: Any, permission: str) -> bool:
    cache = _request_cache().setdefault("perms", {})
    key = (str(project.id), permission)
    if key not in cache:
        cache[key] = bool(get_state().hook("permission_checker")(current_user(), project, permission))
    return cache[key]


def require_read(project: Any, permission: str = hooks.READ_MODEL_EXPERIMENTS) -> None:
    if not can(project, permission):
        raise ProjectNotFound()


def require_write(project: Any, permission: str, read_permission: str) -> None:
    """Unreadable is 404 (existence not leaked); readable but not writable is 403."""
    require_read(project, read_permission)
    if not can(project, permission):
        raise PermissionDenied(f"The caller lacks the '{permission}' permission on this project.")


def require_user() -> Any:
    user = current_user()
    if user is None:
        raise Unauthenticated("Authentication is required: send a valid token (Authorization: Bearer <token>).")
    return user


def project_key(project: Any) -> str:
    """How a project is stored in our tables."""
    return str(project.id)
