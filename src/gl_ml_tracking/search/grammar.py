"""MLflow's search grammar: filter strings into an AST, ``order_by`` clauses into keys.

One parser serves every search (runs, experiments, logged models, registered models,
model versions) and the pages, so what a user types in the runs table is exactly what
the API accepts. A :class:`Grammar` subclass says which entities and keys a search
has and how each is typed (see :mod:`.grammars` for runs and experiments)::

    filter     := disjunct ( OR disjunct )*            -- OR: our extension
    disjunct   := primary ( AND primary )*
    primary    := '(' filter ')' | comparison            -- parentheses: our extension
    comparison := ident op value | ident [NOT] IN '(' str (',' str)* [','] ')'
                | ident IS [NOT] NULL
    ident      := [entity '.'] key
    key        := bare word with dots (mlflow.runName) | `backticked` | "quoted" | 'quoted'
                | dotted prefix with a backticked last part (attributes.`mlflow.spanType`)

Keywords (AND, OR, LIKE, ILIKE, RLIKE, IN, NOT, IS, NULL, ASC, DESC) are case-insensitive;
RLIKE (a regular-expression search) is read by the scanner for every search and
accepted only where a grammar's ``check`` allows it (the trace filters);
entity names and keys are case-sensitive, as in MLflow. AND binds tighter than OR.
A bare identifier is an attribute.

Deliberate differences from MLflow's sqlparse-based parser, all on strings MLflow
either rejects or reads by accident:

* ``OR`` and parentheses are accepted (MLflow rejects them).
* Two comparisons with nothing between them (``a = 1 b = 2``) are an error; MLflow
  silently ANDs them. Stray ``AND`` at the ends or doubled (``a = 1 AND``) is
  accepted, as MLflow does.
* ``+1`` and ``1.5e+3`` are numbers (MLflow's tokenizer rejects both).
* Empty keys (``params.`` or ``params.``````) are rejected.
* Comparators that MLflow's parser lets through and its store then refuses
  (``==``, ``<>``, ``params.x > 'a'``, ``status > 'a'``) are refused here, with
  ``INVALID_PARAMETER_VALUE`` where MLflow sometimes answers with a 500.

Quoted values keep MLflow's exact semantics: the text between the quotes is the
value, unchanged (``'it''s'`` is the 5 characters ``it''s``); use the other quote
character to put a quote in a value (``"it's"``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Union

from ..errors import InvalidParameter
from .scanner import Scanner

__all__ = [
    "Comparison",
    "And",
    "Or",
    "Node",
    "OrderBy",
    "Value",
    "Grammar",
    "METRIC",
    "PARAM",
    "TAG",
    "ATTRIBUTE",
    "DATASET",
    "NUMERIC_OPS",
    "STRING_OPS",
    "LIST_OPS",
    "NULL_OPS",
    "comparisons",
]

METRIC = "metric"
PARAM = "parameter"
TAG = "tag"
ATTRIBUTE = "attribute"
DATASET = "dataset"

NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
LIST_OPS = frozenset({"IN", "NOT IN"})
NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})

Value = Union[None, int, float, str, tuple]


@dataclass(frozen=True)
class Comparison:
    """One ``<kind>.<key> <op> <value>`` clause.

    ``kind`` is one of METRIC, PARAM, TAG, ATTRIBUTE, DATASET; ``key`` is canonical
    (aliases resolved: ``created`` -> ``start_time``, ``Run name`` -> ``run_name``);
    ``op`` is upper-case (``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE``,
    ``ILIKE``, ``IN``, ``NOT IN``, ``IS NULL``, ``IS NOT NULL``); ``value`` is a
    float for metrics, an int or float for numeric attributes, a str, a tuple of
    str for IN lists (a tuple of int for experiment ids), None for IS [NOT] NULL.
    """

    kind: str
    key: str
    op: str
    value: Value


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


Node = Union[Comparison, And, Or]


@dataclass(frozen=True)
class OrderBy:
    kind: str
    key: str
    ascending: bool = True


def comparisons(node: Optional[Node]) -> Iterator[Comparison]:
    """Every comparison in the tree, left to right."""
    if node is None:
        return
    if isinstance(node, Comparison):
        yield node
    else:
        for item in node.items:
            yield from comparisons(item)


# --------------------------------------------------------------------------- grammar
class Grammar:
    """What differs between searches: the entities and keys, and how each is typed.

    Subclasses set ``what`` (names the input in errors) and ``entities`` (entity
    prefix -> kind), and implement :meth:`resolve` and :meth:`check`."""

    what = "filter"
    entities: dict = {}

    def resolve(
        self, sc: Scanner, kind: Optional[str], key: str, start: int, *, for_order: bool = False
    ) -> tuple[str, str]:
        """(kind, canonical key) of an identifier, or ``sc.error`` for an unknown one."""
        raise NotImplementedError

    def check(
        self, sc: Scanner, kind: str, key: str, op: str, vkind: str, raw: object, start: int, vstart: int
    ) -> Value:
        """The typed value of ``<kind>.<key> <op> <raw>``, or ``sc.error`` if the
        comparator or the value does not fit the key (``vkind``: see ``Scanner.value``)."""
        raise NotImplementedError

    # Checks that every grammar's ``check`` shares (same rules, same messages).
    @staticmethod
    def string_value(
        sc: Scanner, op: str, name: str, vkind: str, raw: object, start: int, vstart: int,
        comparators: str = "= != LIKE ILIKE",
    ) -> object:
        """The value of a string comparison (``op`` in STRING_OPS, a quoted value);
        ``comparators`` lists in the error what ``name`` takes."""
        if op not in STRING_OPS:
            raise sc.error(f"invalid comparator {op!r} for {name!r}; use one of {comparators}", start)
        if vkind != "string":
            raise sc.error(f"expected a quoted string for {name!r}, found {sc.token_at(vstart)}", vstart)
        return raw

    def tag_value(self, sc: Scanner, op: str, name: str, vkind: str, raw: object, start: int, vstart: int) -> object:
        """The value of a comparison on a tag or param: a quoted string, or None for IS [NOT] NULL."""
        if op in NULL_OPS:
            return None
        return self.string_value(sc, op, name, vkind, raw, start, vstart, "= != LIKE ILIKE IS NULL IS NOT NULL")

    @staticmethod
    def number_value(
        sc: Scanner, op: str, what: str, vkind: str, raw: object, start: int, vstart: int,
        *, expected: str = "a number", integer_for: Optional[str] = None,
    ) -> Union[int, float]:
        """The value of a numeric comparison; ``what`` names the key in errors (e.g.
        ``metric 'metrics.acc'``). With ``integer_for`` (the key's name), only an integer."""
        if op not in NUMERIC_OPS:
            raise sc.error(f"invalid comparator {op!r} for {what}; use one of = != < <= > >=", start)
        if vkind != "number":
            raise sc.error(f"expected {expected} for {what}, found {sc.token_at(vstart)}", vstart)
        value, is_int = sc.number(raw, vstart)
        if integer_for is not None and not is_int:
            raise sc.error(f"expected an integer for {integer_for!r}, found {sc.token_at(vstart)}", vstart)
        return value

    @staticmethod
    def list_value(sc: Scanner, op: str, vkind: str, raw: object, vstart: int) -> object:
        """The ('list', 'of', 'strings') after IN / NOT IN."""
        if vkind != "list":
            raise sc.error(f"expected a ('list', 'of', 'strings') after {op}, found {sc.token_at(vstart)}", vstart)
        return raw

    def parse_filter(self, text: Optional[str]) -> Optional[Node]:
        """The AST of a filter string; None for an empty (or None) filter."""
        if text is None:
            return None
        if not isinstance(text, str):
            raise InvalidParameter(f"Invalid {self.what}: expected a string, got {type(text).__name__}.")
        sc = Scanner(text, self.what)
        if sc.at_end():
            return None
        node = _parse_or(sc, self, depth=0)
        if not sc.at_end():
            if sc.peek_char() == ")":
                raise sc.error("unbalanced ')'")
            raise sc.error(f"expected AND or OR, found {sc.token_at()}")
        return node

    def parse_order_by(self, order_by: Optional[Iterable[str]]) -> list[OrderBy]:
        """``order_by`` clauses (``<key> [ASC|DESC]``, one key each, none twice)."""
        return _parse_order(order_by, self)


# --------------------------------------------------------------------------- filter
_MAX_DEPTH = 32


def _parse_or(sc: Scanner, g: Grammar, depth: int) -> Node:
    items = [_parse_and(sc, g, depth)]
    while sc.peek_keyword() == "OR":
        or_pos = sc.pos
        sc.take_keyword("OR")
        if sc.at_end() or sc.peek_char() == ")":
            raise sc.error("OR must be followed by a condition", or_pos)
        items.append(_parse_and(sc, g, depth))
    return items[0] if len(items) == 1 else Or(tuple(items))


def _parse_and(sc: Scanner, g: Grammar, depth: int) -> Node:
    items: list[Node] = []
    while True:
        # Stray ANDs are tolerated where MLflow tolerates them: doubled, leading,
        # and trailing at the very end of the filter.
        and_pos = None
        while sc.take_keyword("AND"):
            and_pos = sc.pos
        if sc.at_end() and items:
            break
        if sc.at_end() or sc.peek_char() == ")" or sc.peek_keyword() == "OR":
            where = "AND must be followed by a condition" if and_pos is not None else "expected a condition"
            raise sc.error(f"{where}, found {sc.token_at()}")
        items.append(_parse_primary(sc, g, depth))
        if sc.peek_keyword() == "AND":
            continue
        if sc.at_end() or sc.peek_char() == ")" or sc.peek_keyword() == "OR":
            break
        raise sc.error(f"expected AND or OR, found {sc.token_at()}")
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, And) else (item,))
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def _parse_primary(sc: Scanner, g: Grammar, depth: int) -> Node:
    sc.skip_ws()
    if sc.peek_char() == "(":
        open_pos = sc.pos
        if depth >= _MAX_DEPTH:
            raise sc.error("parentheses nested too deeply", open_pos)
        sc.take_char("(")
        node = _parse_or(sc, g, depth + 1)
        if not sc.take_char(")"):
            raise sc.error("missing ')' for the '(' here", open_pos)
        return node
    kind, key, start = sc.identifier(g.entities)
    kind, key = g.resolve(sc, kind, key, start)
    ident_text = sc.text[start : sc.pos]
    op = sc.operator(ident_text)
    if op in NULL_OPS:
        value = g.check(sc, kind, key, op, "none", None, start, sc.pos)
        return Comparison(kind, key, op, value)
    vkind, raw, vstart = sc.value()
    if vkind == "list" and op not in LIST_OPS:
        raise sc.error(f"a ('list') value needs IN or NOT IN, not {op!r}", vstart)
    value = g.check(sc, kind, key, op, vkind, raw, start, vstart)
    return Comparison(kind, key, op, value)


# --------------------------------------------------------------------------- order_by
def _parse_order_clause(clause: object, g: Grammar) -> OrderBy:
    if not isinstance(clause, str):
        raise InvalidParameter(f"Invalid order_by clause {clause!r}: expected a string.")
    sc = Scanner(clause, "order_by clause")
    if sc.at_end():
        raise sc.error("empty clause")
    kind, key, start = sc.identifier(g.entities)
    kind, key = g.resolve(sc, kind, key, start, for_order=True)
    ascending = True
    if not sc.at_end():
        word = sc.peek_keyword()
        if word not in ("ASC", "DESC"):
            raise sc.error(f"expected ASC or DESC, found {sc.token_at()}")
        sc.take_keyword(word)
        ascending = word == "ASC"
        if not sc.at_end():
            raise sc.error(f"unexpected {sc.token_at()} after {word}; give one key per order_by clause")
    return OrderBy(kind, key, ascending)


def _parse_order(order_by: Optional[Iterable[str]], g: Grammar) -> list[OrderBy]:
    if order_by is None:
        return []
    if isinstance(order_by, str):
        order_by = [order_by]
    result: list[OrderBy] = []
    seen: set[tuple[str, str]] = set()
    for clause in order_by:
        ob = _parse_order_clause(clause, g)
        if (ob.kind, ob.key) in seen:
            raise InvalidParameter(f"Invalid order_by: {clause!r} orders by the same field twice ({list(order_by)!r}).")
        seen.add((ob.kind, ob.key))
        result.append(ob)
    return result

