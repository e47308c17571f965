"""Trace filter conditions on a trace's spans, as MLflow 3.17.2's tracking store reads
them: ``span.name`` / ``span.type`` / ``span.status``, ``span.content`` (and the
``text`` attribute, its alias) and ``span.attributes.<key>``.

The span comparisons of one AND group must hold for the *same* span (one EXISTS), as
in MLflow: ``span.name = 'a' AND span.type = 'LLM'`` asks for an LLM span named a.

``span.attributes.<key>`` keeps MLflow's reading, a pattern over the stored span
rather than a comparison of the attribute's value: ``LIKE``/``ILIKE`` 'p' match a span
whose text has the attribute's key followed by ``p`` (so ``LIKE '%gpt%'`` finds an
attribute holding gpt); ``RLIKE`` 're' matches ``re`` inside the attribute's
string value (``^`` and ``$`` anchor it to the value's ends); ``=``/``!=``
compare the whole span with that pattern, which MLflow does too (``=`` never matches).
Our spans are stored as OTLP JSON (``{"key":"model","value":{"string_value":"gpt"}}``),
so the patterns name that layout where MLflow's name its own.
"""
from __future__ import annotations

import json
import re
from typing import Sequence

from sqlalchemy import exists, literal, select

from ..models import Span, Trace
from ..search.grammar import Comparison
from ..search.sql import Dialect

__all__ = ["CONTENT", "ATTRIBUTES_PREFIX", "COLUMN_KEYS", "span_condition"]

CONTENT = "content"
ATTRIBUTES_PREFIX = "attributes."
COLUMN_KEYS = {"name": Span.name, "type": Span.span_type, "status": Span.status}


def _attribute_key(key: str) -> str:
    return key[len(ATTRIBUTES_PREFIX):].strip("`")


def _attribute_regexp(name: str, pattern: str) -> str:
    # A string attribute as the client sends it: {"key":"model","value":{"string_value":"gpt-4"}};
    # ^ and $ anchor the pattern to the ends of that string, as MLflow's rewrite does.
    prefix, suffix = '".*', ""
    if pattern.startswith("^"):
        prefix, pattern = '"', pattern[1:]
    if pattern.endswith("$"):
        suffix, pattern = '"', pattern[:-1]
    key = re.escape(json.dumps(name))
    return f'"key":{key},"value":\\{{"string_value":{prefix}{pattern}{suffix}'


def _one(c: Comparison, d: Dialect):
    if c.key == CONTENT:
        return d.like(Span.payload, c.value, c.op == "ILIKE")
    if c.key.startswith(ATTRIBUTES_PREFIX):
        name = _attribute_key(c.key)
        if c.op == "RLIKE":
            return d.regexp(Span.payload, _attribute_regexp(name, c.value))
        return d.compare_string(Span.payload, c.op, f'%"key":{json.dumps(name)}{c.value}%')
    return d.compare_string(COLUMN_KEYS[c.key], c.op, c.value)


def span_condition(comparisons: Sequence[Comparison], d: Dialect):
    """One span of the trace satisfies every comparison."""
    return exists(select(literal(1)).where(Span.trace_pk == Trace.id, *[_one(c, d) for c in comparisons]))
