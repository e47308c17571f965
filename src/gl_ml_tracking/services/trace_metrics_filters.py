"""The ``filters`` of a trace metrics query, MLflow 3.17.2's ``SearchTraceMetricsUtils``:
each filter is one ``<view>.<entity>[.<key>] = '<value>'`` clause, all of them ANDed::

    trace.status = 'OK'             trace.tag.<key> = 'v'     trace.metadata.<key> = 'v'
    span.name = 'v'                 span.status = 'OK'        span.type = 'LLM'      (SPANS view)
    assessment.name = 'v'           assessment.type = 'feedback'                      (ASSESSMENTS view)

``trace.metadata.mlflow.sourceRun`` also matches traces linked to the run, and the
reserved token usage / cost metadata compare by value, as in trace search.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, exists, literal, select

from ..errors import InvalidParameter
from ..models import Assessment, Span, Trace, TraceTag
from ..search.scanner import Scanner
from ..search.sql import Dialect
from . import trace_values as tv
from .trace_filter import metadata_condition, run_condition

__all__ = ["MetricsFilter", "parse", "TRACE", "SPAN", "ASSESSMENT", "conditions"]

TRACE, SPAN, ASSESSMENT = "trace", "span", "assessment"
# view type -> entity -> whether the entity takes a key
_ENTITIES = {
    TRACE: {"status": False, "tag": True, "metadata": True},
    SPAN: {"name": False, "status": False, "type": False},
    ASSESSMENT: {"name": False, "type": False},
}
_VIEW_OF_FILTER = {TRACE: None, SPAN: "SPANS", ASSESSMENT: "ASSESSMENTS"}


@dataclass(frozen=True)
class MetricsFilter:
    view: str
    entity: str
    key: Optional[str]
    value: str


def parse(text: object) -> MetricsFilter:
    """One filter clause, checked as MLflow checks it (INVALID_PARAMETER_VALUE)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter(f"Invalid filter: {text!r}. Expected one filter clause.")
    sc = Scanner(text, "trace metrics filter")
    view, rest, _ = sc.identifier({v: v for v in _ENTITIES})
    if view is None:
        raise InvalidParameter(f"Invalid identifier {rest!r}. Columns should be specified as "
                               "'trace.<key>', 'span.<key>', 'assessment.<key>'.")
    entity, _, key = rest.partition(".")
    entities = _ENTITIES[view]
    if entity not in entities:
        raise InvalidParameter(f"Invalid entity '{entity}' specified for view type '{view}'. "
                               f"Valid entities are {list(entities)}")
    if entities[entity] and not key:
        raise InvalidParameter(f"Filtering by {entity} requires a key, e.g. '{view}.{entity}.<key> = <value>'")
    if not entities[entity] and key:
        raise InvalidParameter(f"Filtering by {entity} does not require a key, use '{view}.{entity}' instead")
    op = sc.operator(sc.text[:sc.pos])
    if op != "=":
        raise InvalidParameter(f"Invalid comparator: '{op}', only '=' operator is supported")
    vkind, raw, vstart = sc.value()
    if vkind != "string":
        raise InvalidParameter(f"Expected a quoted string value for {entity} value (e.g. 'my-value'). "
                               f"Got value {sc.text[vstart:sc.pos].strip()}")
    if not sc.at_end():
        raise InvalidParameter(f"Invalid filter: '{text}'. Expected one filter clause.")
    return MetricsFilter(view, entity, key or None, raw)


def _trace_condition(f: MetricsFilter, d: Dialect):
    if f.entity == "status":
        return Trace.state == f.value
    if f.entity == "tag":
        if f.key == tv.TRACE_NAME_TAG:
            return Trace.name == f.value
        return exists(select(literal(1)).where(TraceTag.trace_pk == Trace.id, TraceTag.key == f.key,
                                               TraceTag.value == f.value))
    if f.key == tv.SOURCE_RUN_METADATA:
        return run_condition("=", f.value, d)
    return metadata_condition(f.key, "=", f.value, d)


def conditions(filters: object, view: str, d: Dialect) -> list:
    """The SQL conditions of ``filters`` for a query of ``view`` (TRACES, SPANS or
    ASSESSMENTS) over ``Trace`` joined with ``Span`` or ``Assessment``."""
    if filters is None:
        return []
    if not isinstance(filters, (list, tuple)):
        raise InvalidParameter("Invalid value for parameter 'filters': expected a list of strings.")
    out = []
    for text in filters:
        f = parse(text)
        wanted = _VIEW_OF_FILTER[f.view]
        if wanted is not None and wanted != view:
            label = "span" if f.view == SPAN else "assessment"
            raise InvalidParameter(f"Filtering by {label} is only supported for {wanted} view type, "
                                   f"got {view}")
        if f.view == TRACE:
            out.append(_trace_condition(f, d))
        elif f.view == SPAN:
            column = {"name": Span.name, "status": Span.status, "type": Span.span_type}[f.entity]
            out.append(column == f.value)
        else:
            column = Assessment.name if f.entity == "name" else Assessment.kind
            out.append(column == f.value)
    return [and_(*out)] if out else []
