"""MLflow 3.17.2's trace filter grammar (``SearchTraceUtils`` and the tracking store's
``search_traces``): the parser's rules for each key and the SQL condition on ``Trace``.
Used by ``traces/search``, the Traces tab and the trace metrics.

::

    attributes (attribute. / attributes. / trace. / bare):
      timestamp[_ms], execution_time[_ms], end_time[_ms]     = != < <= > >=  number
      status, request_id, client_request_id, name, run_id    = != LIKE ILIKE RLIKE IN NOT IN
      text (the spans' contents)                             LIKE ILIKE
      prompt = 'name/version'                                (a prompt version linked to the trace)
    tags.<k>, tag.<k>, metadata.<k>, request_metadata.<k>    = != LIKE ILIKE RLIKE IS [NOT] NULL
    span.name, span.type, span.status, span.attributes.<k>   = != LIKE ILIKE RLIKE IN NOT IN
    span.content                                             LIKE ILIKE
    feedback.<name>, expectation.<name>                      = != LIKE ILIKE RLIKE 'text',
                                                             < <= > >= number, IS [NOT] NULL
    issue.id = '<issue id>'

``name`` IN is refused, as by MLflow's store. The reserved metadata
``mlflow.trace.tokenUsage`` and ``mlflow.trace.cost`` take only = != IS [NOT] NULL and
compare by value. Errors are MLflow's (INVALID_PARAMETER_VALUE).
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Optional

from sqlalchemy import and_, exists, false, func, literal, not_, or_, select
from sqlalchemy.orm import Session

from ..errors import BadRequest, InvalidParameter
from ..models import VALUE_PREFIX_CHARS, Run, Trace, TraceMetadata, TraceRunLink, TraceTag
from ..search.grammar import ATTRIBUTE, LIST_OPS, NULL_OPS, NUMERIC_OPS, TAG, And, Comparison, Grammar, Node
from ..search.sql import Dialect, numeric_condition
from . import trace_values as tv
from .trace_filter_assessments import EXPECTATION, FEEDBACK, ISSUE, assessment_condition, issue_condition
from .trace_filter_spans import ATTRIBUTES_PREFIX, COLUMN_KEYS, CONTENT, span_condition

__all__ = ["parse_filter", "filter_condition", "compile_node", "metadata_condition", "run_condition", "GRAMMAR",
           "METADATA", "SPAN", "NUMERIC", "ORDER_ONLY"]

METADATA = "metadata"
SPAN = "span"
COST_METADATA = "mlflow.trace.cost"
_RESERVED_METADATA = {tv.TOKEN_USAGE_METADATA: ("input_tokens", "output_tokens", "total_tokens",
                                                "cache_read_input_tokens", "cache_creation_input_tokens",
                                                "cache_creation_input_tokens_above_1hr"),
                      COST_METADATA: ("input_cost", "output_cost", "total_cost")}

_ENTITIES = {
    "tag": TAG, "tags": TAG,
    "attribute": ATTRIBUTE, "attributes": ATTRIBUTE, "trace": ATTRIBUTE,
    "metadata": METADATA, "request_metadata": METADATA,
    "span": SPAN, "feedback": FEEDBACK, "expectation": EXPECTATION, "issue": ISSUE,
}
NUMERIC = {
    "timestamp": "timestamp_ms", "timestamp_ms": "timestamp_ms",
    "execution_time": "execution_time_ms", "execution_time_ms": "execution_time_ms",
    "end_time": "end_time_ms", "end_time_ms": "end_time_ms",
}
_STRING = frozenset({"status", "request_id", "client_request_id", "name", "run_id"})
_PROMPT = "prompt"
_TEXT = "text"
ORDER_ONLY = frozenset({"experiment_id"})
_SPAN_OPS = ("=", "!=", "IN", "NOT IN", "LIKE", "ILIKE", "RLIKE")
_CONTENT_OPS = ("LIKE", "ILIKE")
_ASSESSMENT_OPS = ("!=", "=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "RLIKE", "IS NULL", "IS NOT NULL")
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "RLIKE"})


def _one_of(ops) -> str:
    return "{" + ", ".join(f"'{o}'" for o in ops) + "}"


def _quoted(sc, vstart) -> str:
    # The value as written (the scanner stands just after it), as MLflow quotes it.
    return sc.text[vstart:sc.pos].strip() or sc.token_at(vstart)


def _remapped(kind: str, key: str) -> tuple[str, str]:
    """MLflow renames some keys whatever their entity: ``<entity>.name`` is the trace
    name, ``.prompt`` the linked prompts, ``.run_id`` the run, ``.text`` the spans'
    content, ``.timestamp`` becomes ``.timestamp_ms`` (likewise execution_time, end_time)."""
    lower = key.lower()
    if lower == "name":
        return TAG, tv.TRACE_NAME_TAG
    if lower in (_PROMPT, "run_id"):
        return ATTRIBUTE, lower
    if lower == _TEXT:
        return SPAN, CONTENT
    if lower in NUMERIC and not lower.endswith("_ms"):
        return kind, NUMERIC[lower]
    return kind, key


class _TraceGrammar(Grammar):
    entities = _ENTITIES
    what = "trace filter"

    def resolve(self, sc, kind, key, start, *, for_order=False):
        if kind is None and key == _TEXT:  # MLflow's SQL tokenizer reads a bare `text` as a keyword
            raise InvalidParameter(f"Invalid clause(s) in filter string: '{_TEXT}'. "
                                   "Write trace.text (or span.content) instead.")
        kind = kind or ATTRIBUTE
        if kind not in (ATTRIBUTE, SPAN):
            kind, key = _remapped(kind, key)
        if for_order and kind in (TAG, METADATA):
            if kind == METADATA and key in _RESERVED_METADATA:
                raise InvalidParameter(f"Ordering by reserved metadata '{key}' is not supported because it is "
                                       "represented by multiple columns.")
            return kind, key
        if kind == ATTRIBUTE:
            key = NUMERIC.get(key, key)
            valid = set(NUMERIC.values()) | _STRING | (set(ORDER_ONLY) if for_order else {_TEXT, _PROMPT})
            if key not in valid:
                raise sc.error(f"invalid attribute key {key!r}; valid attribute keys are {', '.join(sorted(valid))}", start)
            if key == _TEXT:  # MLflow reads `text` as the spans' content
                return SPAN, CONTENT
        elif for_order:
            raise sc.error("traces can only be ordered by attributes, tags and metadata", start)
        elif kind == SPAN:
            if key.startswith(ATTRIBUTES_PREFIX):
                if not key[len(ATTRIBUTES_PREFIX):].strip("`"):
                    raise InvalidParameter("Span attribute name cannot be empty after 'attributes.'")
            elif key not in COLUMN_KEYS and key != CONTENT:
                raise InvalidParameter(f"Invalid span attribute '{key}'. Supported attributes: "
                                       f"{', '.join(sorted(COLUMN_KEYS))}, attributes.<attribute_name>.")
        elif kind == ISSUE and key != "id":
            raise InvalidParameter(f"Invalid issue attribute '{key}'. Supported attributes: id")
        return kind, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        name = key if kind == ATTRIBUTE else f"{kind}.{key}"
        if kind in (FEEDBACK, EXPECTATION):
            return self._assessment_value(sc, kind, key, op, vkind, raw, vstart)
        if kind == ISSUE:
            if op != "=":
                raise InvalidParameter(f"issue.{key} comparator '{op}' not one of '{_one_of(['='])}'")
            return self._string(sc, kind, vkind, raw, vstart)
        if kind == SPAN:
            ops = _CONTENT_OPS if key == CONTENT else _SPAN_OPS
            if op not in ops:
                raise InvalidParameter(f"span.{key} comparator '{op}' not one of '{_one_of(ops)}'")
            if op in LIST_OPS:
                if key.startswith(ATTRIBUTES_PREFIX):  # the reference fails on these with BAD_REQUEST
                    raise BadRequest(f"{op} is not supported for span.{key}; use = != LIKE ILIKE RLIKE.")
                return self.list_value(sc, op, vkind, raw, vstart)
            return self._string(sc, kind, vkind, raw, vstart)
        if kind == ATTRIBUTE and key in NUMERIC.values():
            return self.number_value(sc, op, f"numeric attribute {name!r}", vkind, raw, start, vstart)
        if kind in (TAG, METADATA):
            if kind == METADATA and key in _RESERVED_METADATA and op not in ("=", "!=", *NULL_OPS):
                raise InvalidParameter(f"Comparator '{op}' is not supported for reserved metadata '{key}'. "
                                       "Only '=', '!=', 'IS NULL', and 'IS NOT NULL' are supported.")
            if op in NULL_OPS:
                return None
            if op not in _STRING_OPS:
                raise sc.error(f"invalid comparator {op!r} for {name!r}; use one of "
                               "= != LIKE ILIKE RLIKE IS NULL IS NOT NULL", start)
            return self._string(sc, "tag" if kind == TAG else "request_metadata", vkind, raw, vstart)
        if op in NULL_OPS:
            raise sc.error(f"IS NULL / IS NOT NULL is only supported for tags, metadata and assessments, "
                           f"not for {name!r}", start)
        if key == _PROMPT:
            return self._prompt_value(sc, op, vkind, raw, vstart)
        if op in LIST_OPS:
            if key == "name":  # MLflow's store refuses IN on the trace name
                raise sc.error(f"{op} is not supported for 'name'; use = != LIKE ILIKE RLIKE", start)
            return self.list_value(sc, op, vkind, raw, vstart)
        if op not in _STRING_OPS:
            raise sc.error(f"invalid comparator {op!r} for {name!r}; use one of = != LIKE ILIKE RLIKE IN NOT IN", start)
        return self._string(sc, "attributes", vkind, raw, vstart)

    @staticmethod
    def _string(sc, what, vkind, raw, vstart) -> str:
        if vkind != "string":
            raise InvalidParameter(f"Expected a quoted string value for {what} (e.g. 'my-value'). "
                                   f"Got value {_quoted(sc, vstart)}")
        return raw

    def _assessment_value(self, sc, kind, key, op, vkind, raw, vstart):
        if op not in _ASSESSMENT_OPS:
            raise InvalidParameter(f"assessment.{key} comparator '{op}' not one of '{_one_of(_ASSESSMENT_OPS)}'")
        if op in NULL_OPS:
            return None
        if op in NUMERIC_OPS - {"=", "!="}:
            if vkind != "number":
                raise InvalidParameter(f"Expected a numeric value for {kind} when using comparator '{op}'. "
                                       f"Got value {_quoted(sc, vstart)}")
            return sc.number(raw, vstart)[0]
        return self._string(sc, kind, vkind, raw, vstart)

    @staticmethod
    def _prompt_value(sc, op, vkind, raw, vstart):
        if op != "=":
            raise InvalidParameter(f"Invalid comparator '{op}' for prompts filter. "
                                   "Only '=' is supported with format: prompt = \"name/version\"")
        value = _TraceGrammar._string(sc, "attributes", vkind, raw, vstart)
        if value.count("/") != 1:
            raise InvalidParameter(f"Invalid prompts filter value '{value}'. Expected format: prompt = \"name/version\"")
        return value


GRAMMAR = _TraceGrammar()


def parse_filter(filter_string: Optional[str]) -> Optional[Node]:
    return GRAMMAR.parse_filter(filter_string or None)


def filter_condition(session: Session, filter_string: Optional[str]):
    """The SQL condition on ``Trace`` of a trace filter (None for an empty one)."""
    node = parse_filter(filter_string)
    return None if node is None else compile_node(node, Dialect(session, Trace))


def compile_node(node: Node, d: Dialect):
    """The condition of a parsed trace filter; the span comparisons of an AND group
    share one span."""
    if isinstance(node, Comparison):
        return span_condition([node], d) if node.kind == SPAN else _leaf(node, d)
    spans = [c for c in node.items if isinstance(c, Comparison) and c.kind == SPAN] if isinstance(node, And) else []
    parts = [compile_node(item, d) for item in node.items if not (isinstance(item, Comparison) and item in spans)]
    if spans:
        parts.append(span_condition(spans, d))
    return and_(*parts) if isinstance(node, And) else or_(*parts)


def _key_value(model: Any, key: str, op: str, value: Any, d: Dialect):
    has_key = [model.trace_pk == Trace.id, model.key == key]
    if op == "IS NULL":
        return ~exists(select(literal(1)).where(*has_key))
    if op == "IS NOT NULL":
        return exists(select(literal(1)).where(*has_key))
    matches = [d.compare_string(model.value, op, value)]
    if model is TraceMetadata and key == tv.SOURCE_RUN_METADATA and op == "=" and d.name == "postgresql":
        # The source-run index holds a prefix of the value (models.traces).
        matches.append(func.left(model.value, VALUE_PREFIX_CHARS) == value[:VALUE_PREFIX_CHARS])
    return exists(select(literal(1)).where(*has_key, *matches))


def run_condition(op: str, value: Any, d: Dialect):
    # MLflow: `run_id = x` is the run's own traces and those linked to it; the other
    # comparators compare the source-run metadata only.
    source = _key_value(TraceMetadata, tv.SOURCE_RUN_METADATA, op, value, d)
    if op != "=":
        return source
    linked = exists(select(literal(1)).select_from(TraceRunLink).join(Run, Run.id == TraceRunLink.run_id).where(
        TraceRunLink.trace_pk == Trace.id, Run.run_uuid == value))
    return or_(source, linked)


def _prompt_condition(value: str, d: Dialect):
    # The client records linked prompt versions in the trace's mlflow.linkedPrompts tag
    # (a JSON list of {"name", "version"}); a version is linked if its entry is there.
    name, version = value.split("/")
    entry = json.dumps({"name": name, "version": version})
    find = func.strpos(TraceTag.value, entry) if d.name == "postgresql" else func.instr(TraceTag.value, entry)
    return exists(select(literal(1)).where(TraceTag.trace_pk == Trace.id, TraceTag.key == tv.LINKED_PROMPTS_TAG,
                                           find > 0))


def metadata_condition(key: str, op: str, value: Any, d: Dialect):
    """``metadata.<key> <op> <value>`` on ``Trace``. The reserved tokenUsage / cost
    metadata compare by value: equal when the filter is the JSON object of known
    numeric fields that the stored object holds, in any key order."""
    if key not in _RESERVED_METADATA or op in NULL_OPS:
        return _key_value(TraceMetadata, key, op, value, d)
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    fields = _RESERVED_METADATA[key]
    usable = (isinstance(parsed, dict) and parsed and set(parsed) <= set(fields)
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parsed.values())
              and json.dumps(parsed) == value)
    if usable and len(parsed) <= 4:
        texts = [json.dumps(dict(p)) for p in itertools.permutations(parsed.items())]
        matches = _key_value(TraceMetadata, key, "IN", tuple(texts), d)
    else:
        matches = false()
    if op == "=":
        return matches
    return and_(_key_value(TraceMetadata, key, "IS NOT NULL", None, d), not_(matches))


def _end_time():
    # MLflow: a trace without a duration ends when it starts.
    return Trace.request_time + func.coalesce(Trace.execution_duration, 0)


def _leaf(c: Comparison, d: Dialect):
    if c.kind == TAG:
        if c.key == tv.TRACE_NAME_TAG:
            if c.op in NULL_OPS:
                return Trace.name.is_(None) if c.op == "IS NULL" else Trace.name.is_not(None)
            return d.compare_string(Trace.name, c.op, c.value)
        return _key_value(TraceTag, c.key, c.op, c.value, d)
    if c.kind == METADATA:
        return metadata_condition(c.key, c.op, c.value, d)
    if c.kind in (FEEDBACK, EXPECTATION):
        return assessment_condition(c, d)
    if c.kind == ISSUE:
        return issue_condition(c, d)
    if c.key in NUMERIC.values():
        column = {"timestamp_ms": Trace.request_time, "execution_time_ms": Trace.execution_duration}.get(c.key)
        return numeric_condition(_end_time() if column is None else column, c.op, c.value)
    if c.key == "run_id":
        return run_condition(c.op, c.value, d)
    if c.key == _PROMPT:
        return _prompt_condition(c.value, d)
    column = {"status": Trace.state, "request_id": Trace.trace_id, "client_request_id": Trace.client_request_id,
              "name": Trace.name}[c.key]
    value = c.value
    if c.key == "status" and c.op in LIST_OPS:
        value = tuple(s.upper() for s in value)
    elif c.key == "status" and c.op in ("=", "!="):
        value = value.upper()
    return d.compare_string(column, c.op, value)
