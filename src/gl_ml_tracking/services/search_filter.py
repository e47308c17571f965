"""MLflow's search grammar: filter strings into an AST, ``order_by`` clauses into keys.

One parser serves the MLflow API (``runs/search``, ``experiments/search``) and the
pages, so what a user types in the runs table is exactly what the API accepts.

Runs (MLflow 3.x grammar)::

    filter     := disjunct ( OR disjunct )*            -- OR: our extension
    disjunct   := primary ( AND primary )*
    primary    := '(' filter ')' | comparison            -- parentheses: our extension
    comparison := ident op value | ident [NOT] IN '(' str (',' str)* [','] ')'
                | ident IS [NOT] NULL
    ident      := [entity '.'] key
    entity     := metric(s) | param(s) | parameter(s) | tag(s)
                | attribute(s) | attr | run | dataset(s)     (optionally `backticked`)
    key        := bare word with dots (mlflow.runName) | `backticked` | "quoted" | 'quoted'

Keywords (AND, OR, LIKE, ILIKE, IN, NOT, IS, NULL, ASC, DESC) are case-insensitive;
entity names and keys are case-sensitive, as in MLflow. AND binds tighter than OR.
A bare identifier is an attribute.

Typing rules (MLflow's, enforced here so every error is an ``InvalidParameter``
that names the bad token):

==================  ===============================  =========================
what                comparators                      value
==================  ===============================  =========================
metrics             = != < <= > >=                   number
params, tags        = != LIKE ILIKE, IS [NOT] NULL   quoted string
numeric attributes  = != < <= > >=                   number
string attributes   = != LIKE ILIKE                  quoted string
run_id              also IN / NOT IN                 list of quoted strings
datasets            = != LIKE ILIKE IN NOT IN        quoted string(s)
==================  ===============================  =========================

Deliberate differences from MLflow's sqlparse-based parser, all on strings MLflow
either rejects or reads by accident:

* ``OR`` and parentheses are accepted (MLflow rejects them).
* Two comparisons with nothing between them (``a = 1 b = 2``) are an error; MLflow
  silently ANDs them. Stray ``AND`` at the ends or doubled (``a = 1 AND``) is
  accepted, as MLflow does.
* ``+1`` and ``1.5e+3`` are numbers (MLflow's tokenizer rejects both).
* ``lifecycle_stage`` is a run attribute (filter and order), ``attributes.`` and
  ``attr.`` work for experiments too.
* Empty keys (``params.`` or ``params.``````) are rejected.
* Comparators that MLflow's parser lets through and its store then refuses
  (``==``, ``<>``, ``params.x > 'a'``, ``status > 'a'``) are refused here, with
  ``INVALID_PARAMETER_VALUE`` where MLflow sometimes answers with a 500.

Quoted values keep MLflow's exact semantics: the text between the quotes is the
value, unchanged (``'it''s'`` is the 5 characters ``it''s``); use the other quote
character to put a quote in a value (``"it's"``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Union

from ..errors import InvalidParameter

__all__ = [
    "Comparison",
    "And",
    "Or",
    "Node",
    "OrderBy",
    "METRIC",
    "PARAM",
    "TAG",
    "ATTRIBUTE",
    "DATASET",
    "RUN_NUMERIC_ATTRIBUTES",
    "RUN_STRING_ATTRIBUTES",
    "parse_run_filter",
    "parse_experiment_filter",
    "parse_run_order_by",
    "parse_experiment_order_by",
    "comparisons",
]

METRIC = "metric"
PARAM = "parameter"
TAG = "tag"
ATTRIBUTE = "attribute"
DATASET = "dataset"

# Entity prefixes as MLflow spells them (case-sensitive).
_RUN_ENTITIES = {
    "metric": METRIC,
    "metrics": METRIC,
    "param": PARAM,
    "params": PARAM,
    "parameter": PARAM,
    "parameters": PARAM,
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "attr": ATTRIBUTE,
    "run": ATTRIBUTE,
    "dataset": DATASET,
    "datasets": DATASET,
}
_EXPERIMENT_ENTITIES = {
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "attr": ATTRIBUTE,
}

# Run attributes; aliases map onto the canonical name.
RUN_NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
RUN_STRING_ATTRIBUTES = frozenset({"run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage"})
_RUN_ATTRIBUTE_ALIASES = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}
_RUN_LIST_ATTRIBUTES = frozenset({"run_id"})
DATASET_KEYS = frozenset({"name", "digest", "context"})

EXPERIMENT_NUMERIC_ATTRIBUTES = frozenset({"creation_time", "last_update_time"})
EXPERIMENT_STRING_ATTRIBUTES = frozenset({"name"})
EXPERIMENT_ID_ATTRIBUTE = "experiment_id"
_EXPERIMENT_ATTRIBUTES = EXPERIMENT_NUMERIC_ATTRIBUTES | EXPERIMENT_STRING_ATTRIBUTES | {EXPERIMENT_ID_ATTRIBUTE}

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


# --------------------------------------------------------------------------- lexing
_WS = re.compile(r"\s*")
_WORD = re.compile(r"\w+")
_KEY_WORD = re.compile(r"[\w.]+")
# sqlparse's (and so MLflow's) string tokens: a doubled or backslashed quote
# does not end the string; the value is the text between the outer quotes.
_SINGLE = re.compile(r"'(''|\\'|[^'])*'", re.S)
_DOUBLE = re.compile(r'"(""|\\"|[^"])*"', re.S)
_BACKTICK = re.compile(r"`(``|[^`])*`", re.S)
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_SYMBOL_OPS = ("<=", ">=", "!=", "==", "<>", "=", "<", ">")


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Scanner:
    def __init__(self, text: str, what: str):
        self.text = text
        self.pos = 0
        self.what = what

    # -- errors
    def error(self, message: str, pos: Optional[int] = None) -> InvalidParameter:
        pos = self.pos if pos is None else pos
        return InvalidParameter(f"Invalid {self.what} {self.text!r}: {message} (at position {pos}).")

    def token_at(self, pos: Optional[int] = None) -> str:
        """A readable rendering of whatever starts at pos, for error messages."""
        pos = self.pos if pos is None else pos
        rest = self.text[pos:]
        if not rest:
            return "end of input"
        for rx in (_SINGLE, _DOUBLE, _BACKTICK, _NUMBER, _KEY_WORD):
            m = rx.match(rest)
            if m:
                return repr(_shorten(m.group(0)))
        return repr(rest[0])

    # -- primitives
    def skip_ws(self) -> None:
        self.pos = _WS.match(self.text, self.pos).end()

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def peek_char(self) -> str:
        self.skip_ws()
        return self.text[self.pos : self.pos + 1]

    def peek_keyword(self) -> Optional[str]:
        """The upper-cased bare word at the cursor, without consuming it."""
        self.skip_ws()
        m = _WORD.match(self.text, self.pos)
        return m.group(0).upper() if m else None

    def take_keyword(self, word: str) -> bool:
        self.skip_ws()
        m = _WORD.match(self.text, self.pos)
        if m and m.group(0).upper() == word:
            self.pos = m.end()
            return True
        return False

    def take_char(self, ch: str) -> bool:
        self.skip_ws()
        if self.text.startswith(ch, self.pos):
            self.pos += len(ch)
            return True
        return False

    def _quoted(self, rx: re.Pattern, kind: str) -> str:
        m = rx.match(self.text, self.pos)
        if not m:
            raise self.error(f"unterminated {kind} starting with {_shorten(self.text[self.pos:])!r}")
        self.pos = m.end()
        return m.group(0)[1:-1]

    # -- identifiers
    def identifier(self, entities: dict) -> tuple[Optional[str], str, int]:
        """Read ``[entity.]key``. Returns (kind or None for a bare key, key, start)."""
        self.skip_ws()
        start = self.pos
        ch = self.text[self.pos : self.pos + 1]
        if ch == "`":
            first = self._quoted(_BACKTICK, "backtick-quoted name")
            first_quoted = True
        elif ch == '"':
            first = self._quoted(_DOUBLE, "quoted name")
            first_quoted = True
        else:
            m = _WORD.match(self.text, self.pos)
            if not m:
                raise self.error(f"expected an identifier such as metrics.<key>, found {self.token_at()}")
            first = m.group(0)
            first_quoted = False
            self.pos = m.end()
        if not self.text.startswith(".", self.pos):
            self._check_identifier_end(start)
            return None, first, start
        entity = first
        if entity not in entities:
            raise self.error(
                f"invalid entity type {entity!r} in {_shorten(self.text[start:self.pos + 1])!r}; "
                "valid entity types are " + ", ".join(sorted(set(entities))),
                start,
            )
        if first_quoted and ch == '"':
            raise self.error(f"invalid entity type {self.text[start:self.pos]!r}", start)
        self.pos += 1  # the dot
        ch = self.text[self.pos : self.pos + 1]
        if ch == "`":
            key = self._quoted(_BACKTICK, "backtick-quoted key")
        elif ch == '"':
            key = self._quoted(_DOUBLE, "quoted key")
        elif ch == "'":
            key = self._quoted(_SINGLE, "quoted key")
        else:
            m = _KEY_WORD.match(self.text, self.pos)
            key = m.group(0) if m else ""
            if m:
                self.pos = m.end()
        if key == "":
            raise self.error(f"empty key after '{entity}.'", start)
        self._check_identifier_end(start)
        return entities[entity], key, start

    def _check_identifier_end(self, start: int) -> None:
        nxt = self.text[self.pos : self.pos + 1]
        if nxt and not nxt.isspace() and nxt not in "=!<>(),":
            raise self.error(
                f"unexpected {nxt!r} in identifier {_shorten(self.text[start:self.pos + 1])!r}; "
                "quote keys that contain special characters with backticks, e.g. metrics.`my-key`",
                self.pos,
            )

    # -- operators and values
    def operator(self, ident_text: str) -> str:
        self.skip_ws()
        for sym in _SYMBOL_OPS:
            if self.text.startswith(sym, self.pos):
                if sym in ("==", "<>"):
                    raise self.error(f"invalid comparator {sym!r} after {ident_text!r}; use '=' or '!='")
                self.pos += len(sym)
                return sym
        word = self.peek_keyword()
        if word in ("LIKE", "ILIKE", "IN"):
            self.take_keyword(word)
            return word
        if word == "NOT":
            save = self.pos
            self.take_keyword("NOT")
            if self.take_keyword("IN"):
                return "NOT IN"
            self.pos = save
            raise self.error(f"expected IN after NOT, found {self.token_at(self._after_word())}", self._after_word())
        if word == "IS":
            self.take_keyword("IS")
            if self.take_keyword("NULL"):
                return "IS NULL"
            if self.take_keyword("NOT"):
                if self.take_keyword("NULL"):
                    return "IS NOT NULL"
            raise self.error(f"expected NULL or NOT NULL after IS, found {self.token_at()}")
        raise self.error(
            f"expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL) after {ident_text!r}, "
            f"found {self.token_at()}"
        )

    def _after_word(self) -> int:
        self.skip_ws()
        m = _WORD.match(self.text, self.pos)
        end = m.end() if m else self.pos
        return _WS.match(self.text, end).end()

    def value(self) -> tuple[str, object, int]:
        """Read one value: ('string', str) | ('number', (text, is_int)) | ('list', tuple)."""
        self.skip_ws()
        start = self.pos
        ch = self.text[self.pos : self.pos + 1]
        if ch == "'":
            return "string", self._quoted(_SINGLE, "string"), start
        if ch == '"':
            return "string", self._quoted(_DOUBLE, "string"), start
        if ch == "(":
            return "list", self._list(), start
        m = _NUMBER.match(self.text, self.pos)
        if m:
            end = m.end()
            if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "._"):
                word = re.compile(r"[-+]?[\w.]+").match(self.text, start).group(0)
                raise self.error(f"invalid number {_shorten(word)!r}", start)
            self.pos = end
            text = m.group(0)
            is_int = m.group(2) is None and "." not in text
            return "number", (text, is_int), start
        if not ch:
            raise self.error("expected a value, found end of input")
        raise self.error(
            f"expected a value (a number, a 'quoted' string or a ('list')), found {self.token_at()}; "
            "string values must be quoted with single or double quotes"
        )

    def _list(self) -> tuple:
        open_pos = self.pos
        self.pos += 1
        items: list[str] = []
        while True:
            self.skip_ws()
            if self.take_char(")"):
                break
            ch = self.text[self.pos : self.pos + 1]
            if ch == "'":
                items.append(self._quoted(_SINGLE, "string"))
            elif ch == '"':
                items.append(self._quoted(_DOUBLE, "string"))
            elif not ch:
                raise self.error("unterminated list: missing ')'", open_pos)
            else:
                raise self.error(f"a list may only hold quoted strings, found {self.token_at()}")
            self.skip_ws()
            if self.take_char(","):
                continue
            if self.take_char(")"):
                break
            raise self.error(f"expected ',' or ')' in list, found {self.token_at()}")
        if not items:
            raise self.error("expected a non-empty list of quoted strings, found an empty list", open_pos)
        return tuple(items)


# --------------------------------------------------------------------------- grammar
class _Grammar:
    """What differs between run and experiment filters."""

    what = "filter"
    entities: dict = _RUN_ENTITIES

    def resolve(
        self, sc: _Scanner, kind: Optional[str], key: str, start: int, *, for_order: bool = False
    ) -> tuple[str, str]:
        raise NotImplementedError

    def check(
        self, sc: _Scanner, kind: str, key: str, op: str, vkind: str, raw: object, start: int, vstart: int
    ) -> Value:
        raise NotImplementedError


def _number(sc: _Scanner, raw: tuple, start: int) -> tuple[float, bool]:
    text, is_int = raw
    try:
        return (int(text) if is_int else float(text)), is_int
    except ValueError:  # pragma: no cover - the regex only lets numbers through
        raise sc.error(f"invalid number {text!r}", start)


def _name(kind: str, key: str) -> str:
    return key if kind == ATTRIBUTE else f"{kind}s.{key}" if kind != PARAM else f"params.{key}"


class _RunGrammar(_Grammar):
    entities = _RUN_ENTITIES

    def resolve(self, sc, kind, key, start, *, for_order=False):
        kind = kind or ATTRIBUTE
        if kind == ATTRIBUTE:
            key = _RUN_ATTRIBUTE_ALIASES.get(key, key)
            if key not in RUN_NUMERIC_ATTRIBUTES and key not in RUN_STRING_ATTRIBUTES:
                valid = sorted(RUN_NUMERIC_ATTRIBUTES | RUN_STRING_ATTRIBUTES) + ["created (= start_time)"]
                raise sc.error(f"invalid attribute key {key!r}; valid attribute keys are {', '.join(valid)}", start)
        elif kind == DATASET:
            if for_order:
                raise sc.error("runs cannot be ordered by dataset fields", start)
            if key not in DATASET_KEYS:
                valid = ", ".join(sorted(DATASET_KEYS))
                raise sc.error(f"invalid dataset key {key!r}; valid dataset keys are {valid}", start)
        return kind, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        name = _name(kind, key)
        if kind == METRIC or (kind == ATTRIBUTE and key in RUN_NUMERIC_ATTRIBUTES):
            label = "metric" if kind == METRIC else "numeric attribute"
            if op not in NUMERIC_OPS:
                raise sc.error(f"invalid comparator {op!r} for {label} {name!r}; use one of = != < <= > >=", start)
            if vkind != "number":
                raise sc.error(f"expected a number for {label} {name!r}, found {sc.token_at(vstart)}", vstart)
            val, _ = _number(sc, raw, vstart)
            return float(val) if kind == METRIC else val
        if kind in (PARAM, TAG):
            if op in NULL_OPS:
                return None
            if op not in STRING_OPS:
                raise sc.error(
                    f"invalid comparator {op!r} for {name!r}; use one of = != LIKE ILIKE IS NULL IS NOT NULL", start
                )
            if vkind != "string":
                raise sc.error(f"expected a quoted string for {name!r}, found {sc.token_at(vstart)}", vstart)
            return raw
        if op in NULL_OPS:
            raise sc.error(f"IS NULL / IS NOT NULL is only supported for params and tags, not for {name!r}", start)
        list_ok = kind == DATASET or key in _RUN_LIST_ATTRIBUTES
        if op in LIST_OPS:
            if not list_ok:
                raise sc.error(f"{op} is only supported for run_id and dataset fields, not for {name!r}", start)
            if vkind != "list":
                raise sc.error(f"expected a ('list', 'of', 'strings') after {op}, found {sc.token_at(vstart)}", vstart)
            return raw
        if op not in STRING_OPS:
            extra = " IN NOT IN" if list_ok else ""
            raise sc.error(f"invalid comparator {op!r} for {name!r}; use one of = != LIKE ILIKE{extra}", start)
        if vkind != "string":
            raise sc.error(f"expected a quoted string for {name!r}, found {sc.token_at(vstart)}", vstart)
        return raw


class _ExperimentGrammar(_Grammar):
    entities = _EXPERIMENT_ENTITIES
    what = "experiment filter"

    def resolve(self, sc, kind, key, start, *, for_order=False):
        kind = kind or ATTRIBUTE
        if kind == ATTRIBUTE and key not in _EXPERIMENT_ATTRIBUTES:
            raise sc.error(
                f"invalid attribute key {key!r}; valid attribute keys are {', '.join(sorted(_EXPERIMENT_ATTRIBUTES))}",
                start,
            )
        if kind != ATTRIBUTE and for_order:
            raise sc.error(f"experiments can only be ordered by {', '.join(sorted(_EXPERIMENT_ATTRIBUTES))}", start)
        return kind, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        name = _name(kind, key)
        if kind == TAG:
            if op in NULL_OPS:
                return None
            if op not in STRING_OPS:
                raise sc.error(
                    f"invalid comparator {op!r} for {name!r}; use one of = != LIKE ILIKE IS NULL IS NOT NULL", start
                )
            if vkind != "string":
                raise sc.error(f"expected a quoted string for {name!r}, found {sc.token_at(vstart)}", vstart)
            return raw
        if op in NULL_OPS:
            raise sc.error(f"IS NULL / IS NOT NULL is only supported for tags, not for {name!r}", start)
        if key in EXPERIMENT_NUMERIC_ATTRIBUTES:
            if op not in NUMERIC_OPS:
                raise sc.error(
                    f"invalid comparator {op!r} for numeric attribute {name!r}; use one of = != < <= > >=", start
                )
            if vkind != "number":
                raise sc.error(f"expected a number for numeric attribute {name!r}, found {sc.token_at(vstart)}", vstart)
            val, is_int = _number(sc, raw, vstart)
            if not is_int:
                raise sc.error(f"expected an integer for {name!r}, found {sc.token_at(vstart)}", vstart)
            return val
        if key == EXPERIMENT_ID_ATTRIBUTE:
            if op not in ("=", "!=", "IN", "NOT IN"):
                raise sc.error(f"invalid comparator {op!r} for 'experiment_id'; use one of = != IN NOT IN", start)
            if op in LIST_OPS:
                if vkind != "list":
                    raise sc.error(f"expected a ('list', 'of', 'ids') after {op}, found {sc.token_at(vstart)}", vstart)
                return tuple(self._experiment_id(sc, v, vstart) for v in raw)
            if vkind != "string":
                found = sc.token_at(vstart)
                raise sc.error(f"expected a quoted experiment id for 'experiment_id', found {found}", vstart)
            return self._experiment_id(sc, raw, vstart)
        # name
        if op in LIST_OPS:
            raise sc.error(f"{op} is only supported for experiment_id, not for {name!r}", start)
        if op not in STRING_OPS:
            raise sc.error(f"invalid comparator {op!r} for {name!r}; use one of = != LIKE ILIKE", start)
        if vkind != "string":
            raise sc.error(f"expected a quoted string for {name!r}, found {sc.token_at(vstart)}", vstart)
        return raw

    @staticmethod
    def _experiment_id(sc: _Scanner, text: str, pos: int) -> int:
        if not re.fullmatch(r"\s*\d{1,18}\s*", text):
            raise sc.error(f"invalid experiment id {text!r}: expected an integer", pos)
        return int(text)


_RUNS = _RunGrammar()
_EXPERIMENTS = _ExperimentGrammar()


def _parse(text: Optional[str], grammar: _Grammar) -> Optional[Node]:
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidParameter(f"Invalid {grammar.what}: expected a string, got {type(text).__name__}.")
    sc = _Scanner(text, grammar.what)
    if sc.at_end():
        return None
    node = _parse_or(sc, grammar, depth=0)
    if not sc.at_end():
        if sc.peek_char() == ")":
            raise sc.error("unbalanced ')'")
        raise sc.error(f"expected AND or OR, found {sc.token_at()}")
    return node


_MAX_DEPTH = 32


def _parse_or(sc: _Scanner, g: _Grammar, depth: int) -> Node:
    items = [_parse_and(sc, g, depth)]
    while sc.peek_keyword() == "OR":
        or_pos = sc.pos
        sc.take_keyword("OR")
        if sc.at_end() or sc.peek_char() == ")":
            raise sc.error("OR must be followed by a condition", or_pos)
        items.append(_parse_and(sc, g, depth))
    return items[0] if len(items) == 1 else Or(tuple(items))


def _parse_and(sc: _Scanner, g: _Grammar, depth: int) -> Node:
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


def _parse_primary(sc: _Scanner, g: _Grammar, depth: int) -> Node:
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


def parse_run_filter(filter_string: Optional[str]) -> Optional[Node]:
    """Parse an MLflow ``search_runs`` filter. None for an empty filter."""
    return _parse(filter_string, _RUNS)


def parse_experiment_filter(filter_string: Optional[str]) -> Optional[Node]:
    """Parse an MLflow ``search_experiments`` filter. None for an empty filter."""
    return _parse(filter_string, _EXPERIMENTS)


# --------------------------------------------------------------------------- order_by
def _parse_order_clause(clause: object, g: _Grammar) -> OrderBy:
    if not isinstance(clause, str):
        raise InvalidParameter(f"Invalid order_by clause {clause!r}: expected a string.")
    sc = _Scanner(clause, "order_by clause")
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


def _parse_order(order_by: Optional[Iterable[str]], g: _Grammar) -> list[OrderBy]:
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


def parse_run_order_by(order_by: Optional[Iterable[str]]) -> list[OrderBy]:
    """Parse ``search_runs`` order_by clauses (``metrics.x DESC``, ``start_time``...)."""
    return _parse_order(order_by, _RUNS)


def parse_experiment_order_by(order_by: Optional[Iterable[str]]) -> list[OrderBy]:
    """Parse ``search_experiments`` order_by clauses (name, experiment_id, creation_time, last_update_time)."""
    return _parse_order(order_by, _EXPERIMENTS)
