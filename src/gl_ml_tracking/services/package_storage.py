"""The storage objects behind package files: which storage, how big a file may be,
fresh keys, and deletions that wait for the transaction's outcome.

Bytes live in the configured storage under a key of their own, never derived from user
input (so a path can never escape the store), and *new for every upload*. An object a
transaction stops using is deleted only after that transaction commits (see
:func:`delete_after_commit`); one a failed or rolled-back upload stored is deleted then
(:func:`delete_if_rolled_back`).
"""
from __future__ import annotations

import logging
import re
import uuid
from typing import Any, Iterable, Optional

from sqlalchemy import event
from sqlalchemy.orm import Session

from ..state import get_state
from ..registry.storage import Storage
from .common import now_ms

log = logging.getLogger("gl_ml_tracking.packages")


def storage_or_default(storage: Optional[Storage]) -> Storage:
    """``storage``, or the app's configured one when None."""
    return storage if storage is not None else get_state().get_storage()


def max_file_size() -> int:
    return int(get_state().config.max_file_size)


_SAFE_PROJECT_RE = re.compile(r"\A[A-Za-z0-9_\-]{1,64}\Z")


def new_storage_key(project_id: str) -> str:
    """A fresh key: grouped by project (so an operator can find a project's bytes), fanned
    out over 256 directories, never derived from a file name. The name starts with the
    creation time in milliseconds (12 hex digits) so that garbage collection can leave
    young objects alone: their rows may not be committed yet (see :func:`storage_key_time`)."""
    project_part = project_id if _SAFE_PROJECT_RE.match(project_id) else "x" + uuid.uuid5(uuid.NAMESPACE_URL, project_id).hex
    token = f"{now_ms():012x}{uuid.uuid4().hex[:20]}"
    return f"projects/{project_part}/{token[-2:]}/{token}"


_KEY_NAME_RE = re.compile(r"\A([0-9a-f]{12})[0-9a-f]{20}\Z")


def storage_key_time(key: str) -> Optional[int]:
    """Creation time (ms) of a key made by :func:`new_storage_key`, else None."""
    match = _KEY_NAME_RE.match(key.rsplit("/", 1)[-1])
    return int(match.group(1), 16) if match else None


# Deletions of storage objects wait for the transaction's outcome. Keys are kept in the
# session's ``info`` with the storage they belong to.
_ON_COMMIT = "glml_delete_on_commit"
_ON_ROLLBACK = "glml_delete_on_rollback"
_HOOKED = "glml_storage_hooks"


def _delete_quietly(pending: list[tuple[Storage, str]]) -> None:
    for storage, key in pending:
        try:
            storage.delete(key)
        except Exception:  # noqa: BLE001 - an object left behind is found by `ml-tracking gc`
            log.warning("could not delete storage object %s", key, exc_info=True)


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_ON_COMMIT, [])
    session.info.pop(_ON_ROLLBACK, None)  # the new objects are now referenced
    _delete_quietly(pending)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:  # a savepoint; wait for the outer transaction
        return
    # Reached after a commit too, when both lists are already empty.
    pending = session.info.pop(_ON_ROLLBACK, [])
    session.info.pop(_ON_COMMIT, None)
    _delete_quietly(pending)


def _real_session(session: Any) -> Session:
    # Flask-SQLAlchemy hands out a scoped_session; events belong to the actual Session.
    return session() if callable(session) and not isinstance(session, Session) else session


def _hook(session: Any) -> Session:
    real = _real_session(session)
    if not real.info.get(_HOOKED):
        event.listen(real, "after_commit", _after_commit)
        event.listen(real, "after_transaction_end", _after_transaction_end)
        real.info[_HOOKED] = True
    return real


def delete_after_commit(session: Any, storage: Storage, keys: Iterable[str]) -> None:
    """Delete these storage objects once the current transaction commits (not if it rolls
    back: then the rows pointing at them are back too)."""
    real = _hook(session)
    real.info.setdefault(_ON_COMMIT, []).extend((storage, k) for k in keys)


def delete_if_rolled_back(session: Any, storage: Storage, keys: Iterable[str]) -> None:
    """Delete these freshly stored objects if the transaction does not commit."""
    real = _hook(session)
    real.info.setdefault(_ON_ROLLBACK, []).extend((storage, k) for k in keys)
