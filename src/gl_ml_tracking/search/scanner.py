"""The lexer of MLflow's search strings: identifiers, comparators, values, and errors.

Every error is an ``InvalidParameter`` that quotes the input, names the token found and
gives its position; the grammars (:mod:`.grammar`) decide what the tokens may form.
"""
from __future__ import annotations

import re
from typing import Optional

from ..errors import InvalidParameter

__all__ = ["Scanner"]

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


class Scanner:
    """A cursor over one filter or order_by string: tokens, and errors that name them."""

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
            if key.endswith(".") and self.text.startswith("`", self.pos):
                # a quoted last segment: span.attributes.`mlflow.spanType`
                key += self._quoted(_BACKTICK, "backtick-quoted key")
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
        if word in ("LIKE", "ILIKE", "RLIKE", "IN"):
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
            f"expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, RLIKE, IN, NOT IN, IS NULL) after {ident_text!r}, "
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

    def number(self, raw: tuple, start: int) -> tuple[float, bool]:
        """A ('number', raw) value from :meth:`value` as (int or float, is_int)."""
        text, is_int = raw
        try:
            return (int(text) if is_int else float(text)), is_int
        except ValueError:  # pragma: no cover - the regex only lets numbers through
            raise self.error(f"invalid number {text!r}", start)

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
