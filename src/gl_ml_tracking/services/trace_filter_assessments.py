"""Trace filter conditions on a trace's assessments, as MLflow 3.17.2's tracking store
reads them: ``feedback.<name>`` / ``expectation.<name>`` and ``issue.id``.

An assessment's value is compared as MLflow stores it, the JSON text of the primitive
(``0.8``, ``true``, ``"yes"``); we keep the whole proto body (``{"value": 0.8}``), so
the SQL takes the ``value`` member out first:

* ``=`` / ``!=`` 'text': the JSON text equals ``text`` or its JSON string
  (``feedback.correct = 'true'`` matches ``true``, ``= 'yes'`` matches ``"yes"``);
* ``<`` ``<=`` ``>`` ``>=`` number: only finite numeric values (not booleans);
* ``LIKE`` / ``ILIKE`` / ``RLIKE``: on the JSON text;
* ``IS [NOT] NULL``: whether such an assessment exists.

Only valid (not overridden) assessments count. An assessment whose metadata names a
session (``mlflow.trace.session``) speaks for every trace of that session in the same
experiment, as MLflow's session-scoped assessments do.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Float, and_, case, cast, exists, false, func, literal, not_, or_, select, true
from sqlalchemy.orm import aliased
from sqlalchemy.types import JSON

from ..models import Assessment, Trace, TraceMetadata
from ..search.grammar import Comparison
from ..search.sql import Dialect, numeric_condition

__all__ = ["FEEDBACK", "EXPECTATION", "ISSUE", "NUMERIC_OPS", "assessment_condition", "issue_condition"]

FEEDBACK = "feedback"
EXPECTATION = "expectation"
ISSUE = "issue"
NUMERIC_OPS = frozenset({"<", "<=", ">", ">="})
SESSION_METADATA = "mlflow.trace.session"
# Values Python's json writes but no JSON parser in the database reads (NaN, Infinity):
# such a row is left out of value comparisons instead of failing the query.
_NON_JSON = r"(^|[^\w\"])(NaN|-?Infinity)([^\w\"]|$)"


def _value_json(d: Dialect):
    """The JSON text of the assessment's ``value`` member ('null' when it has none)."""
    col = Assessment.value
    if d.name == "postgresql":
        member = cast(cast(col, JSON(none_as_null=True)).op("->")("value"), type_=col.type)
        inner = case((col.op("~")(_NON_JSON), None), else_=member)
    else:
        inner = case((func.json_valid(col) == 1, col.op("->")("$.value")), else_=None)
    return func.coalesce(inner, "null")


def _value_number(d: Dialect):
    """The assessment's value as a float when it is a finite JSON number, else NULL."""
    col = Assessment.value
    if d.name == "postgresql":
        as_json = cast(col, JSON(none_as_null=True))
        number = case((func.json_typeof(as_json.op("->")("value")) == "number",
                       cast(as_json.op("->>")("value"), Float)), else_=None)
        return case((col.op("~")(_NON_JSON), None), else_=number)
    number = case((func.json_type(col, "$.value").in_(("integer", "real")),
                   cast(func.json_extract(col, "$.value"), Float)), else_=None)
    return case((func.json_valid(col) == 1, number), else_=None)


def _value_filter(c: Comparison, d: Dialect):
    if c.op in NUMERIC_OPS:
        return numeric_condition(_value_number(d), c.op, float(c.value))
    text = _value_json(d)
    if c.op in ("=", "!="):
        same = or_(text == str(c.value), text == json.dumps(c.value))
        return not_(same) if c.op == "!=" else same
    return d.compare_string(text, c.op, c.value)


def _session_covered(filters: list, d: Dialect):
    """The outer trace shares a session with a trace that holds a matching
    session-scoped assessment (in the same experiment)."""
    mine, theirs, other = aliased(TraceMetadata), aliased(TraceMetadata), aliased(Trace)
    return exists(select(literal(1)).select_from(Assessment)
                  .join(other, other.id == Assessment.trace_pk)
                  .join(theirs, and_(theirs.trace_pk == other.id, theirs.key == SESSION_METADATA))
                  .join(mine, and_(mine.key == SESSION_METADATA, mine.value == theirs.value))
                  .where(mine.trace_pk == Trace.id, other.experiment_id == Trace.experiment_id,
                         Assessment.metadata_json.is_not(None),
                         d.like(Assessment.metadata_json, f'%"{SESSION_METADATA}":%', False),
                         *filters))


def assessment_condition(c: Comparison, d: Dialect):
    """The condition of ``feedback.<name> <op> <value>`` / ``expectation.<name> ...``."""
    filters = [Assessment.kind == c.kind, Assessment.name == c.key, Assessment.valid == true()]
    if c.op not in ("IS NULL", "IS NOT NULL"):
        filters.append(_value_filter(c, d))
    direct = exists(select(literal(1)).where(Assessment.trace_pk == Trace.id, *filters))
    covered = or_(direct, _session_covered(filters, d))
    return not_(covered) if c.op == "IS NULL" else covered


def issue_condition(c: Comparison, d: Dialect) -> Any:
    """``issue.id = '<id>'``: the trace has an issue reference (an assessment of type
    ``issue`` named by the issue id)."""
    if c.op != "=":  # pragma: no cover - the grammar allows only '='
        return false()
    return exists(select(literal(1)).where(Assessment.trace_pk == Trace.id, Assessment.kind == ISSUE,
                                           Assessment.name == c.value))
