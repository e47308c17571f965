"""An optimisation of the hooks, kept apart from them: the caller's role is read in the
same query as the project, and remembered for the rest of the request.

Plainly (:mod:`.hooks`), an API call costs one query per hook: the token
(``user_loader``), the project (``project_loader``), then the caller's role in that
project (``permission_checker``, through :func:`.permissions.role_in`). With this module:

* the registered ``user_loader`` notes who is calling in the request's WSGI environ
  (:func:`remember_caller`);
* the registered ``project_loader`` outer-joins that caller's membership onto the project
  query (:func:`with_callers_role`) and records the role it read (:func:`remember_role`);
* :func:`.permissions.role_in` is memoised for the request (:func:`per_request`): the
  permission check finds the role already read, and a page that asks twice asks once.

What it saves: one round trip on every API call that checks a permission. A
``log_metric`` on PostgreSQL takes 5 round trips (BEGIN, token, project + role, the write,
COMMIT), 6 without this module; of the 8 → 5 measured for it in benchmarks/RESULTS.md, this
is one and the one-statement write the other two.

Nothing outlives the request: a role may change between requests, and a member who is
removed loses access on the next one.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

from flask import has_request_context, request
from sqlalchemy import Select, and_, bindparam

from .models import Membership, Project

_CALLER = "forge.api_identity"  # request.environ key: whom the user_loader found
_ROLES = "forge.known_roles"  # request.environ key: {(user_id, project_id): role or None}

RoleLookup = Callable[[Any, Any], Optional[int]]


def remember_caller(user_loader: Callable) -> Callable:
    """``user_loader``, also noting its answer in the request for :func:`caller_id`."""

    @functools.wraps(user_loader)
    def load_and_remember(request):
        identity = user_loader(request)
        request.environ[_CALLER] = identity
        return identity

    return load_and_remember


def caller_id() -> Optional[int]:
    """The id of the user the ``user_loader`` found for this request; ``None`` when
    anonymous or outside a request."""
    caller = request.environ.get(_CALLER) if has_request_context() else None
    return caller.id if caller is not None else None


def with_callers_role(stmt: Select) -> Select:
    """``stmt``, a select of projects, with one more column: the role of the user
    ``:user_id`` in the project (NULL when not a member)."""
    return stmt.add_columns(Membership.role).outerjoin(
        Membership, and_(Membership.project_id == Project.id, Membership.user_id == bindparam("user_id"))
    )


def _known_roles() -> dict:
    # Per request (its WSGI environ), never longer.
    if not has_request_context():
        return {}
    return request.environ.setdefault(_ROLES, {})


def remember_role(user_id: Any, project_id: Any, role: Optional[int]) -> None:
    """Record a role read along with something else (the project query)."""
    _known_roles()[(user_id, project_id)] = role


def per_request(role_in: RoleLookup) -> RoleLookup:
    """``role_in``, memoised for the request: a role already read is not read again."""

    @functools.wraps(role_in)
    def known_or_read(user_id: Any, project_id: Any) -> Optional[int]:
        known = _known_roles()
        key = (user_id, project_id)
        if key not in known:
            known[key] = role_in(user_id, project_id)
        return known[key]

    return known_or_read
