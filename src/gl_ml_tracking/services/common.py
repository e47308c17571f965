"""Small helpers shared by the services."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from ..models import IidCounter


def now_ms() -> int:
    return int(time.time() * 1000)


def dialect_insert(session: Session):
    """The dialect's INSERT, which has ``on_conflict_do_*`` (SQLite and PostgreSQL)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - documented: SQLite and PostgreSQL are supported
        raise RuntimeError(f"gl-ml-tracking supports SQLite and PostgreSQL, not {name}")
    return insert


def next_iid(session: Session, project_id: str, scope: str) -> int:
    """Allocate the next per-project IID in one atomic statement.

    The upsert takes a row lock on PostgreSQL (and the write lock on SQLite), so
    two concurrent creators can never read the same value; a rolled-back
    transaction may leave a gap, which is fine (GitLab's IIDs have gaps too).
    """
    dialect = session.get_bind().dialect.name
    stmt = _NEXT_IID.get(dialect)
    if stmt is None:
        # Built once per dialect (every run creation calls this): building the upsert
        # cost more than running it.
        stmt = _NEXT_IID[dialect] = (
            dialect_insert(session)(IidCounter)
            .values(project_id=bindparam("project_id"), scope=bindparam("scope"), last_value=1)
            .on_conflict_do_update(
                index_elements=[IidCounter.project_id, IidCounter.scope],
                set_={"last_value": IidCounter.last_value + 1},
            )
            .returning(IidCounter.last_value)
        )
    # Column values only: the session's connection, without the ORM's bulk-insert path.
    return int(session.connection().execute(stmt, {"project_id": project_id, "scope": scope}).scalar_one())


_NEXT_IID: dict[str, Any] = {}


def ensure_iid_at_least(session: Session, project_id: str, scope: str, value: int) -> None:
    insert = dialect_insert(session)
    stmt = insert(IidCounter).values(project_id=project_id, scope=scope, last_value=value)
    stmt = stmt.on_conflict_do_nothing(index_elements=[IidCounter.project_id, IidCounter.scope])
    session.execute(stmt)


def user_key(user: Any) -> str | None:
    return None if user is None else str(getattr(user, "id", None))


def without_jit(conn) -> None:
    """PostgreSQL: no JIT compilation for the rest of this transaction. Statements
    of thousands of index seeks are estimated costly enough to be JIT-compiled
    with the server's defaults, and compiling took longer (~250 ms) than running
    them. ``SET LOCAL`` ends with the transaction; the host's own queries keep the
    server's setting."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
