"""The write statements of the logging calls, built once per dialect: building a
statement (and its cache key) cost more than running it. The statements are Core ones
on the tables (not the ORM entities): no ORM bulk machinery per call."""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy.orm import Session

from .common import dialect_insert

_STATEMENTS: dict[tuple[str, str], Any] = {}


def cached_statement(session: Session, name: str, build: Callable[[Any], Any]) -> Any:
    """The statement ``name`` for the session's dialect; ``build(insert)`` makes it the
    first time, given the dialect's INSERT (the one with ``on_conflict_do_*``)."""
    dialect = session.get_bind().dialect.name
    stmt = _STATEMENTS.get((name, dialect))
    if stmt is None:
        stmt = _STATEMENTS[(name, dialect)] = build(dialect_insert(session))
    return stmt
