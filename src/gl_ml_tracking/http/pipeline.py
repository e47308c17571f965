"""The one request pipeline: who is calling, which project, may they, run the
view, commit or roll back, and every failure as one error type.

A surface (the MLflow API, the packages API, the CI JSON, the pages) describes
itself once as a :class:`Surface` (how it renders an error, how it renders a
view's result) and calls :func:`serve` for each request::

    serve(surface, Access(read=(...), write=(...)), project_ref, view)

Every failure reaches ``surface.render_error`` as an :class:`~gl_ml_tracking.errors.MlflowError`:
errors of our own as raised, database errors as :class:`DataConflict` (a violated
constraint), :class:`TemporarilyUnavailable` (503 with ``Retry-After``: clients retry;
also for a file storage that cannot be reached),
:class:`DataRejected`, and anything else as a logged :class:`InternalError`, so a
stack trace never reaches the client.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from flask import request
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from .. import access, signals
from ..errors import (
    DataConflict,
    DataRejected,
    InternalError,
    MlflowError,
    PermissionDenied,
    TemporarilyUnavailable,
)
from ..registry.storage.unavailable import StorageUnavailable
from ..state import get_state
from .retry_after import with_retry_after


@dataclass(frozen=True)
class Access:
    """Permissions an endpoint needs: all of ``read`` (else 404, as a missing
    project), then all of ``write`` (else 403). Classified by meaning, not by
    HTTP method."""

    read: tuple[str, ...]
    write: tuple[str, ...] = ()
    # False: no user is required. Pages and CI JSON browse as anonymous; the MLflow
    # multipart part URLs carry a signed credential of their own instead of a token.
    authenticate: bool = True


@dataclass(frozen=True)
class Caller:
    """The caller and the project of a request that passed the read checks."""

    project: Any
    project_id: str  # how the project is stored in our tables
    user: Any


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Surface:
    """How one HTTP surface answers."""

    render_error: Callable[[MlflowError], Any]
    render_result: Callable[[Any], Any] = _same
    # Called once the project is readable, before the write permissions are checked;
    # what it returns is what the view gets (default: the Caller). The pages set up
    # their context here, so that even a refused write renders inside the project.
    enter: Optional[Callable[[Caller], Any]] = None
    # Exceptions that are not failures of the request but answers of their own
    # (the pages' redirects and aborts): rolled back and re-raised untouched.
    passthrough: tuple[type[BaseException], ...] = ()
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("gl_ml_tracking.http"))


def serve(surface: Surface, needed: Access, project_ref: str, view: Callable[[Any], Any], *,
          read_only: bool = False) -> Any:
    """Run ``view`` for the project named ``project_ref`` in one transaction:
    committed when the view returns, then the signals it queued are sent; rolled
    back when it raises, and its signals dropped. A ``read_only``
    view has nothing to commit: its transaction is left to end with the app
    context, so that a streamed answer (a CSV export) still reads through it."""
    session = get_state().session
    try:
        user = access.require_user() if needed.authenticate else access.current_user()
        project = access.load_project(project_ref)
        for permission in needed.read:
            access.require_read(project, permission)
        caller = Caller(project=project, project_id=access.project_key(project), user=user)
        context = surface.enter(caller) if surface.enter else caller
        for permission in needed.write:
            if not access.can(project, permission):
                raise PermissionDenied(f"The caller lacks the '{permission}' permission on this project.")
        result = view(context)
        if not read_only:
            session.commit()
            signals.send_pending(session)  # only now is the change there for every reader
    except surface.passthrough:
        _roll_back(session)
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes an error answer
        _roll_back(session)
        error = as_error(exc, surface.log)
        return with_retry_after(surface.render_error(error), error)
    return surface.render_result(result)


def _roll_back(session: Any) -> None:
    signals.discard_pending(session)  # nothing happened: no subscriber hears of it
    try:
        session.rollback()
    except DBAPIError:
        # The connection died under the request (PostgreSQL restarted, the backend was
        # terminated): the rollback cannot reach the server, whose transaction is gone with
        # the connection. Drop the connection; the request's own error still answers (503).
        session.close()


def as_error(exc: Exception, log: logging.Logger) -> MlflowError:
    """``exc`` as the error the client is told about."""
    if isinstance(exc, MlflowError):
        return exc
    if isinstance(exc, IntegrityError):
        log.info("integrity error: %s", exc)
        return DataConflict("The request conflicts with existing data (a constraint was violated).")
    if isinstance(exc, OperationalError):
        # A locked SQLite, a dropped connection: the MLflow client retries a 503 with backoff.
        log.warning("database unavailable: %s", exc)
        return TemporarilyUnavailable("The database is busy or unavailable; retry.")
    if isinstance(exc, StorageUnavailable):
        # S3 refusing connections, timing out or throttling: nothing was stored (the
        # transaction is rolled back, a half upload never becomes an object).
        log.warning("storage unavailable: %s", exc)
        return TemporarilyUnavailable("The file storage is unavailable; retry.")
    if isinstance(exc, UnicodeEncodeError):
        # JSON can carry a lone surrogate (\ud800) that no database can store: the
        # client's input, not our bug.
        return DataRejected("A string of the request is not valid Unicode (it holds a lone surrogate).")
    if isinstance(exc, DBAPIError):
        log.info("database rejected input: %s", exc)
        return DataRejected("The database rejected a value of the request (out of range or malformed).")
    log.exception("unexpected error in %s %s", request.method, request.url_rule)
    return InternalError("An internal error occurred.")
