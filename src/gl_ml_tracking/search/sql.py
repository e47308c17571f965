"""A parsed filter as one SQLAlchemy condition, the same on SQLite and PostgreSQL.

Each search supplies a *leaf* function that turns one :class:`~.grammar.Comparison`
into a condition on its tables; :func:`compile_filter` combines the leaves along the
AND/OR tree. :class:`Dialect` hides what differs between the databases:

* ``LIKE`` is case-sensitive on every database (on SQLite it is compiled to ``GLOB``),
  ``ILIKE`` is not; ``%`` and ``_`` are the only wildcards and there is no escape
  character, as on MLflow's SQLite store;
* strings sort by code point on every database (``COLLATE "C"`` on PostgreSQL), as
  MLflow's SQLite store does;
* ``RLIKE`` is a regular-expression search: PostgreSQL's ``~``, and on SQLite the
  ``REGEXP`` operator backed by :func:`sqlite_regexp` (Python's ``re``), which the
  extension registers on every SQLite connection. A pattern the database cannot
  compile is refused with INVALID_PARAMETER_VALUE before the query runs.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Optional

from sqlalchemy import and_, func, or_, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..errors import InvalidParameter
from .grammar import And, Comparison, Node

__all__ = ["Dialect", "Leaf", "compile_filter", "numeric_condition", "like_to_glob", "sqlite_regexp"]


class Dialect:
    """The database behind ``mapper``'s table, and SQL that compares alike on each."""

    def __init__(self, session: Session, mapper: Any):
        bind = session.get_bind(mapper=mapper)
        self.name = bind.dialect.name
        self.session = session

    def sort_string(self, expr: ColumnElement) -> ColumnElement:
        """Code-point order on every database, as MLflow's SQLite store sorts."""
        if self.name == "postgresql":
            return expr.collate("C")
        return expr

    def like(self, expr: ColumnElement, pattern: str, insensitive: bool) -> ColumnElement:
        if self.name == "sqlite":
            if insensitive:
                return func.lower(expr).like(func.lower(pattern))
            return expr.op("GLOB", is_comparison=True)(like_to_glob(pattern))
        if self.name == "postgresql":
            # PostgreSQL's LIKE has '\' as its default escape; MLflow's SQLite has none.
            pattern = pattern.replace("\\", "\\\\")
        return expr.ilike(pattern) if insensitive else expr.like(pattern)

    def regexp(self, expr: ColumnElement, pattern: str) -> ColumnElement:
        """``expr`` contains a match of the regular expression ``pattern`` (RLIKE)."""
        self.check_regexp(pattern)
        if self.name == "postgresql":
            return expr.op("~", is_comparison=True)(pattern)
        return expr.op("REGEXP", is_comparison=True)(pattern)

    def check_regexp(self, pattern: str) -> None:
        """Refuse a pattern the database would fail on (a 400, not the query's 500)."""
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidParameter(f"Invalid regular expression {pattern!r} for RLIKE: {exc}.") from None
        if self.name == "postgresql":
            try:
                with self.session.begin_nested():
                    self.session.execute(text("SELECT '' ~ :p"), {"p": pattern})
            except DBAPIError as exc:
                raise InvalidParameter(f"Invalid regular expression {pattern!r} for RLIKE: "
                                       f"{str(exc.orig).splitlines()[0]}.") from None

    def compare_string(self, expr: ColumnElement, op: str, value: Any) -> ColumnElement:
        if op == "RLIKE":
            return self.regexp(expr, value)
        if op == "=":
            return expr == value
        if op == "!=":
            return expr != value
        if op == "LIKE":
            return self.like(expr, value, insensitive=False)
        if op == "ILIKE":
            return self.like(expr, value, insensitive=True)
        if op == "IN":
            return expr.in_(list(value))
        if op == "NOT IN":
            return expr.not_in(list(value))
        raise InvalidParameter(f"Invalid comparator {op!r} for a string value.")  # pragma: no cover - parser rejects


def like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, no escape) as the equivalent case-sensitive GLOB pattern."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def sqlite_regexp(pattern: Optional[str], value: Optional[str]) -> bool:
    """SQLite's ``value REGEXP pattern`` (registered as ``regexp``): a search, as MLflow's."""
    if pattern is None or value is None:
        return False
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def numeric_condition(expr: ColumnElement, op: str, value: Any) -> ColumnElement:
    """``expr <op> value`` for a numeric comparator (= != < <= > >=)."""
    return {
        "=": lambda: expr == value,
        "!=": lambda: expr != value,
        "<": lambda: expr < value,
        "<=": lambda: expr <= value,
        ">": lambda: expr > value,
        ">=": lambda: expr >= value,
    }[op]()


Leaf = Callable[[Comparison, Dialect], ColumnElement]


def compile_filter(node: Node, d: Dialect, leaf: Leaf) -> ColumnElement:
    """The condition of a filter tree: ``leaf`` for each comparison, AND/OR between."""
    if isinstance(node, Comparison):
        return leaf(node, d)
    parts = [compile_filter(item, d, leaf) for item in node.items]
    return and_(*parts) if isinstance(node, And) else or_(*parts)
