"""Keyset paging, the one pager of every paged listing.

A listing's order is a list of :class:`Atom` (a sort column, its direction, whether it
holds NULLs, which always sort last); its last atom is unique, so the page after a row
is "rows strictly after that row's sort values" (:func:`keyset_condition`), never an
offset: pages stay right however many rows are added or deleted meanwhile, and every
page costs one indexed range read.

:class:`Pager` reads one page of a select and hands out the next page's token: the
signed (:mod:`.tokens`) JSON ``{"v": 1, "f": <fingerprint>, "k": [<sort values of the
last row returned>]}``, plus ``"d": "p"`` on a token to the previous page. The
fingerprint (:func:`fingerprint`) binds the token to the arguments of the search that
made it, so a token is refused by a search with another filter or order.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from sqlalchemy import and_, false, or_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..errors import InvalidParameter
from .tokens import decode_token, encode_token, invalid_token

__all__ = ["Atom", "keyset_condition", "fingerprint", "Page", "Pager", "TOKEN_VERSION"]

TOKEN_VERSION = 1
SEARCH_ARGUMENTS = "filter, order_by, view type or experiments"


@dataclass(frozen=True)
class Atom:
    """One sort column: NULLs always last; ``kind`` (int, float, str or bool) types
    the column's values in page tokens."""

    expr: ColumnElement
    ascending: bool
    nullable: bool
    kind: type

    def order_clause(self):
        clause = self.expr.asc() if self.ascending else self.expr.desc()
        return clause.nulls_last() if self.nullable else clause

    def reversed(self) -> "Atom":
        """The same column in the opposite order, to read a page backwards. Only for
        columns without NULLs: reversing NULLs-last would need NULLs-first."""
        if self.nullable:
            raise ValueError("a nullable sort column cannot be read backwards")
        return Atom(self.expr, not self.ascending, False, self.kind)

    def _beyond(self, value: Any, strict: bool) -> Optional[ColumnElement]:
        if self.kind is bool:
            # false < true; SQLAlchemy compares booleans only with = and !=.
            if strict:
                if value == self.ascending:  # nothing after true (ASC) or false (DESC)
                    return None
                return self.expr == (not value)
            return self.expr == value if value == self.ascending else None
        if strict:
            return self.expr > value if self.ascending else self.expr < value
        return self.expr >= value if self.ascending else self.expr <= value

    def after(self, value: Any) -> Optional[ColumnElement]:
        """Rows strictly after ``value`` in this column's order (None: none can be)."""
        if value is None:
            return None  # NULLs come last; nothing sorts after a NULL but other NULLs
        cond = self._beyond(value, strict=True)
        if not self.nullable:
            return cond
        return self.expr.is_(None) if cond is None else or_(cond, self.expr.is_(None))

    def not_before(self, value: Any) -> Optional[ColumnElement]:
        """Rows at or after ``value`` (None: no restriction worth adding)."""
        if value is None:
            return self.expr.is_(None) if self.nullable else None
        cond = self._beyond(value, strict=False)
        if cond is None:
            return None
        return or_(cond, self.expr.is_(None)) if self.nullable else cond

    def equal(self, value: Any) -> ColumnElement:
        return self.expr.is_(None) if value is None else self.expr == value

    def accepts(self, value: Any) -> bool:
        """Whether a token's value can be one of this column's (a check on decoded tokens)."""
        if value is None:
            return self.nullable
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        if self.kind is float:
            return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))
        return isinstance(value, self.kind)


def keyset_condition(atoms: Sequence[Atom], values: Sequence[Any]) -> ColumnElement:
    """Lexicographic "after the cursor" over the atoms (mixed directions, NULLs last)."""
    disjuncts = []
    prefix: list[ColumnElement] = []
    for atom, value in zip(atoms, values):
        after = atom.after(value)
        if after is not None:
            disjuncts.append(and_(*prefix, after) if prefix else after)
        prefix.append(atom.equal(value))
    cond = or_(*disjuncts) if disjuncts else false()
    # A redundant range on the leading column lets the database seek an index.
    lead = atoms[0].not_before(values[0]) if atoms else None
    return and_(lead, cond) if lead is not None else cond


def fingerprint(*parts: Any) -> str:
    """16 hex digits that change with any of ``parts`` (compared by their repr)."""
    text = json.dumps([repr(p) for p in parts], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _token_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):  # pragma: no cover - NaN is stored as NULL
        return None
    return value


@dataclass
class Page:
    """One page: ``items`` (the first column of each row, in order) and the opaque
    tokens of the next and previous pages (None where there is none)."""

    items: list
    next_cursor: Optional[str] = None
    prev_cursor: Optional[str] = None


@dataclass
class Pager:
    """Pages of one listing ordered by ``atoms``, starting after ``token``.

    ``kind`` names the listing (tokens of one kind are refused by another);
    ``fingerprint`` binds tokens to the listing's arguments (``arguments`` names them
    in the error); ``what`` is the token's name in errors; ``both_ways`` also makes
    tokens to the previous page. The token is checked when the pager is made, so a bad
    one is refused even when the listing turns out to be empty.
    """

    kind: str
    atoms: Sequence[Atom]
    token: Optional[str] = None
    fingerprint: str = ""
    what: str = "page token"
    arguments: str = SEARCH_ARGUMENTS
    both_ways: bool = False
    cursor: Optional[list] = field(default=None, init=False)
    backwards: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not self.token:  # None, "" (and any other falsy value) mean the first page
            return
        payload = decode_token(self.token, self.kind, self.what)
        bad = invalid_token(self.token, self.what)
        if not isinstance(payload, dict) or payload.get("v") != TOKEN_VERSION or not isinstance(payload.get("k"), list):
            raise bad
        direction = payload.get("d", "n")
        if direction not in ("n", "p") or (direction == "p" and not self.both_ways):
            raise bad
        if payload.get("f") != self.fingerprint:
            raise InvalidParameter(
                f"Invalid {self.what}: it belongs to a search with other arguments "
                f"({self.arguments}); repeat the search without a {self.what}."
            )
        values = payload["k"]
        if len(values) != len(self.atoms) or not all(a.accepts(v) for a, v in zip(self.atoms, values)):
            raise bad
        self.cursor, self.backwards = values, direction == "p"

    def fetch(self, session: Session, stmt: Any, limit: int) -> Page:
        """One page of ``stmt`` (a select whose first column is what the page lists):
        the order, the keyset condition and ``LIMIT limit + 1`` are added here."""
        atoms = [a.reversed() for a in self.atoms] if self.backwards else list(self.atoms)
        stmt = stmt.add_columns(*[a.expr.label(f"sort_{i}") for i, a in enumerate(self.atoms)])
        if self.cursor is not None:
            stmt = stmt.where(keyset_condition(atoms, self.cursor))
        rows = session.execute(stmt.order_by(*[a.order_clause() for a in atoms]).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        if self.backwards:
            rows.reverse()
        page = Page([row[0] for row in rows])
        if rows:
            if more or self.backwards:
                page.next_cursor = self._token(rows[-1], "n")
            if self.both_ways and (more if self.backwards else self.cursor is not None):
                page.prev_cursor = self._token(rows[0], "p")
        return page

    def _token(self, row: Any, direction: str) -> str:
        values = [_token_value(v) for v in tuple(row)[-len(self.atoms):]]
        payload = {"v": TOKEN_VERSION, "f": self.fingerprint, "k": values}
        if direction == "p":
            payload["d"] = "p"
        return encode_token(payload, self.kind)
