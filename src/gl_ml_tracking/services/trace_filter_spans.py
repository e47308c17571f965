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

``span.content`` / ``trace.text`` match MLflow's span dict (its ``content`` column:
``"attributes":{"model":"\\"gpt\\""}``): the OTLP layout's own words are taken out of the
stored JSON before the pattern is applied (``"key":``, ``"value":``, ``"string_value":``
and its typed twins), and the keys MLflow's dict always has are added, so ``LIKE '%value%'`` finds a span whose name, an
attribute's key or value, or an event holds "value", not every span with an attribute.
The field names both layouts share (``name``, ``attributes``, ``status``, ...) stay.
"""
from __future__ import annotations

import json
import re
from typing import Sequence

from sqlalchemy import exists, func, literal, select

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


# (OTLP text, what stands in MLflow's span dict), in this order: an attribute entry
# {"key":"k","value":{"string_value":"v"}} reads {"k":{"v"}}, a kvlist or an array of them
# likewise. Outside JSON strings (where quotes are escaped) these words are only layout.
_OTLP_WORDS = (
    ('{"key":', "{"),
    (',"value":{', ":{"),
    ('"string_value":', ""),
    ('"int_value":', ""),
    ('"double_value":', ""),
    ('"bool_value":', ""),
    ('"bytes_value":', ""),
    ('"kvlist_value":', ""),
    ('"array_value":', ""),
    ('{"values":', "{"),
)
# MLflow's span dict always holds these keys (empty or null); OTLP's JSON leaves empty
# fields out, so the stored text gets them back at its end.
_MLFLOW_KEYS = ' "parent_span_id" "events" "links" "status" "code" "message" "attributes"'


def _content(expr=Span.payload):
    """The stored span's text without OTLP's own words (see the module's docstring)."""
    for otlp, mlflow_text in _OTLP_WORDS:
        expr = func.replace(expr, otlp, mlflow_text)
    return expr.concat(literal(_MLFLOW_KEYS))


def _one(c: Comparison, d: Dialect):
    if c.key == CONTENT:
        return d.like(_content(), c.value, c.op == "ILIKE")
    if c.key.startswith(ATTRIBUTES_PREFIX):
        name = _attribute_key(c.key)
        if c.op == "RLIKE":
            return d.regexp(Span.payload, _attribute_regexp(name, c.value))
        return d.compare_string(Span.payload, c.op, f'%"key":{json.dumps(name)}{c.value}%')
    return d.compare_string(COLUMN_KEYS[c.key], c.op, c.value)


def span_condition(comparisons: Sequence[Comparison], d: Dialect):
    """One span of the trace satisfies every comparison."""
    return exists(select(literal(1)).where(Span.trace_pk == Trace.id, *[_one(c, d) for c in comparisons]))
