"""``logged-models/search``: a project's active logged models, filtered and ordered.

Follows MLflow's SQL store (3.x): filter on ``name``, ``model_id``, ``model_type``,
``status``, ``source_run_id``, ``creation_timestamp``, ``last_updated_timestamp``,
``metrics.<k>``, ``params.<k>``, ``tags.<k>`` (the shared parser, with this grammar);
order by those attributes or ``metrics.<k>`` (the metric's latest value by timestamp,
then step, optionally on one dataset), always ending with ``creation_timestamp DESC,
model_id ASC``. Page tokens are keyset cursors, as for runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from sqlalchemy import and_, exists, literal, or_, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import ACTIVE, Experiment, LoggedModel, LoggedModelMetric, LoggedModelParam, LoggedModelTag
from ..search.grammar import (
    ATTRIBUTE,
    LIST_OPS,
    METRIC,
    NULL_OPS,
    PARAM,
    TAG,
    Comparison,
    Grammar,
    Node,
    comparisons,
)
from ..search.keyset import Atom, Pager, fingerprint
from ..search.sql import Dialect, compile_filter, numeric_condition
from . import validation as v
from .logged_model_values import STATUS_PREFIX, optional_str

__all__ = ["search", "parse_filter", "SEARCH_DEFAULT_MAX_RESULTS", "SEARCH_MAX_RESULTS", "TOKEN_KIND"]

SEARCH_DEFAULT_MAX_RESULTS = 100
SEARCH_MAX_RESULTS = 50000
TOKEN_KIND = "logged-models"

_ENTITIES = {
    "metric": METRIC, "metrics": METRIC,
    "param": PARAM, "params": PARAM,
    "tag": TAG, "tags": TAG,
    "attribute": ATTRIBUTE, "attributes": ATTRIBUTE, "attr": ATTRIBUTE,
}
_NUMERIC_ATTRIBUTES = {
    "creation_timestamp": LoggedModel.creation_time,
    "creation_time": LoggedModel.creation_time,
    "last_updated_timestamp": LoggedModel.last_update_time,
    "last_updated_time": LoggedModel.last_update_time,
}
_STRING_ATTRIBUTES = {
    "name": LoggedModel.name,
    "model_id": LoggedModel.model_id,
    "model_type": LoggedModel.model_type,
    "status": LoggedModel.status,
    "source_run_id": LoggedModel.source_run_uuid,
}


class _LoggedModelGrammar(Grammar):
    """The logged-model filter on top of the shared parser (same tokens, quoting and errors)."""

    entities = _ENTITIES
    what = "logged model filter"

    def resolve(self, sc, kind, key, start, *, for_order=False):
        kind = kind or ATTRIBUTE
        if kind == ATTRIBUTE and key not in _NUMERIC_ATTRIBUTES and key not in _STRING_ATTRIBUTES:
            valid = ", ".join(sorted(set(_NUMERIC_ATTRIBUTES) | set(_STRING_ATTRIBUTES)))
            raise sc.error(f"invalid attribute key {key!r}; valid attribute keys are {valid}", start)
        return kind, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        name = key if kind == ATTRIBUTE else f"{kind}s.{key}"
        if kind == METRIC or (kind == ATTRIBUTE and key in _NUMERIC_ATTRIBUTES):
            value = self.number_value(sc, op, repr(name), vkind, raw, start, vstart)
            return float(value) if kind == METRIC else value
        if op in NULL_OPS:
            if kind == ATTRIBUTE:
                raise sc.error(f"IS NULL / IS NOT NULL is only supported for params and tags, not for {name!r}", start)
            return None
        if op in LIST_OPS:
            if kind != ATTRIBUTE:
                raise sc.error(f"{op} is only supported for attributes, not for {name!r}", start)
            return self.list_value(sc, op, vkind, raw, vstart)
        return self.string_value(sc, op, name, vkind, raw, start, vstart)


_GRAMMAR = _LoggedModelGrammar()


def parse_filter(filter_string: Optional[str]) -> Optional[Node]:
    """The AST of a logged-model filter (None for an empty one)."""
    return _GRAMMAR.parse_filter(filter_string or None)


@dataclass(frozen=True)
class _Order:
    field: str  # an attribute name or "metrics.<key>"
    ascending: bool
    dataset_name: Optional[str] = None
    dataset_digest: Optional[str] = None


@dataclass(frozen=True)
class _DatasetFilter:
    name: str
    digest: Optional[str]


def _parse_order(order_by: Any) -> list[_Order]:
    if order_by is None:
        return []
    if not isinstance(order_by, list):
        raise InvalidParameter("`order_by` must be a list of {field_name, ascending} objects.")
    result = []
    for item in order_by:
        if isinstance(item, str):  # be lenient: "metrics.acc DESC" as in other searches
            words = item.split()
            item = {"field_name": words[0] if words else "", "ascending": not (len(words) > 1 and words[1].upper() == "DESC")}
        if not isinstance(item, dict):
            raise InvalidParameter("`order_by` must be a list of {field_name, ascending} objects.")
        field_name = item.get("field_name")
        if not isinstance(field_name, str) or not field_name.strip():
            raise InvalidParameter("`field_name` in the `order_by` clause must be specified.")
        field_name = field_name.strip()
        if "." in field_name:
            entity, key = field_name.split(".", 1)
            if entity != "metrics" or not key:
                raise InvalidParameter(f"Invalid order by field name: {field_name}, only `metrics.<name>` is allowed.")
        elif field_name not in _NUMERIC_ATTRIBUTES and field_name not in _STRING_ATTRIBUTES:
            raise InvalidParameter(f"Invalid order by field name: {field_name}.")
        ascending = item.get("ascending", True)
        if ascending is None:
            ascending = True
        if not isinstance(ascending, bool):
            raise InvalidParameter(f"Value of `ascending` in the `order_by` clause must be a boolean, got {ascending!r}.")
        ds_name = optional_str(item.get("dataset_name"), "dataset_name", 500)
        ds_digest = optional_str(item.get("dataset_digest"), "dataset_digest", 64)
        if ds_digest and not ds_name:
            raise InvalidParameter("`dataset_digest` can only be specified if `dataset_name` is also specified.")
        result.append(_Order(field_name, ascending, ds_name, ds_digest))
    return result


def _parse_datasets(datasets: Any) -> list[_DatasetFilter]:
    if datasets is None:
        return []
    if not isinstance(datasets, list) or not all(isinstance(d, dict) for d in datasets):
        raise InvalidParameter("'datasets' must be a list of {dataset_name, dataset_digest} objects.")
    result = []
    for d in datasets:
        if not d.get("dataset_name"):
            raise InvalidParameter("`dataset_name` in the `datasets` clause must be specified.")
        result.append(_DatasetFilter(
            v.require_str(d["dataset_name"], "dataset_name", 500), optional_str(d.get("dataset_digest"), "dataset_digest", 64)
        ))
    return result


def _dataset_condition(datasets: Sequence[_DatasetFilter]):
    """A metric row on any of the datasets (a digest narrows its dataset's match)."""
    conds = []
    for ds in datasets:
        on_name = LoggedModelMetric.dataset_name == ds.name
        conds.append(and_(on_name, LoggedModelMetric.dataset_digest == ds.digest) if ds.digest else on_name)
    return or_(*conds)


def _status_value(value: Any) -> Any:
    """``status = 'LOGGED_MODEL_READY'`` and ``status = 'READY'`` mean the same."""
    if isinstance(value, tuple):
        return tuple(_status_value(item) for item in value)
    if isinstance(value, str) and value.upper().startswith(STATUS_PREFIX):
        return value[len(STATUS_PREFIX):].upper()
    return value


def _comparison(datasets: Sequence[_DatasetFilter]):
    def leaf(c: Comparison, d: Dialect):
        if c.kind == METRIC:
            conds = [LoggedModelMetric.model_pk == LoggedModel.id, LoggedModelMetric.key == c.key,
                     numeric_condition(LoggedModelMetric.value, c.op, c.value)]
            if datasets:
                conds.append(_dataset_condition(datasets))
            return exists(select(literal(1)).where(*conds))
        if c.kind in (PARAM, TAG):
            entity = LoggedModelParam if c.kind == PARAM else LoggedModelTag
            has_key = [entity.model_pk == LoggedModel.id, entity.key == c.key]
            if c.op == "IS NULL":
                return ~exists(select(literal(1)).where(*has_key))
            if c.op == "IS NOT NULL":
                return exists(select(literal(1)).where(*has_key))
            return exists(select(literal(1)).where(*has_key, d.compare_string(entity.value, c.op, c.value)))
        if c.key in _NUMERIC_ATTRIBUTES:
            return numeric_condition(_NUMERIC_ATTRIBUTES[c.key], c.op, c.value)
        value = _status_value(c.value) if c.key == "status" and c.op not in ("LIKE", "ILIKE") else c.value
        return d.compare_string(_STRING_ATTRIBUTES[c.key], c.op, value)

    return leaf


def _latest_metric(order: _Order):
    key = order.field.split(".", 1)[1]
    conds = [LoggedModelMetric.model_pk == LoggedModel.id, LoggedModelMetric.key == key]
    if order.dataset_name:
        conds.append(LoggedModelMetric.dataset_name == order.dataset_name)
    if order.dataset_digest:
        conds.append(LoggedModelMetric.dataset_digest == order.dataset_digest)
    return (
        select(LoggedModelMetric.value)
        .where(*conds)
        .order_by(LoggedModelMetric.timestamp.desc(), LoggedModelMetric.step.desc(), LoggedModelMetric.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _order_atoms(order: list[_Order], d: Dialect) -> list[Atom]:
    atoms: list[Atom] = []
    has_creation = False
    for ob in order:
        if ob.field.startswith("metrics."):
            atoms.append(Atom(_latest_metric(ob), ob.ascending, True, float))
        elif ob.field in _NUMERIC_ATTRIBUTES:
            column = _NUMERIC_ATTRIBUTES[ob.field]
            has_creation = has_creation or column is LoggedModel.creation_time
            atoms.append(Atom(column, ob.ascending, False, int))
        else:
            column = _STRING_ATTRIBUTES[ob.field]
            nullable = bool(column.property.columns[0].nullable)
            atoms.append(Atom(column if ob.field == "model_id" else d.sort_string(column), ob.ascending, nullable, str))
            if ob.field == "model_id":
                return atoms  # unique: nothing after it can matter
    if not has_creation:
        atoms.append(Atom(LoggedModel.creation_time, False, False, int))
    atoms.append(Atom(LoggedModel.model_id, True, False, str))
    return atoms


def _experiment_pks(session: Session, project_id: str, experiment_ids: Any) -> list[int]:
    if isinstance(experiment_ids, (str, int)):
        experiment_ids = [experiment_ids]
    if not experiment_ids or not isinstance(experiment_ids, list):
        raise InvalidParameter("Missing value for required parameter 'experiment_ids'.")
    iids = set()
    for item in experiment_ids:
        text = str(item).strip()
        if not text.isdecimal() or len(text) > 18:  # not isdigit: int("²") fails
            raise InvalidParameter(f"Invalid experiment ID {item!r}: expected an integer.")
        iids.add(int(text))
    return sorted(session.scalars(
        select(Experiment.id).where(Experiment.project_id == project_id, Experiment.iid.in_(sorted(iids)))
    ))


def _max_results(value: Any) -> int:
    limit = v.parse_int(value, "max_results", default=SEARCH_DEFAULT_MAX_RESULTS)
    if limit == 0:  # proto3 default: not set
        limit = SEARCH_DEFAULT_MAX_RESULTS
    if limit < 1 or limit > SEARCH_MAX_RESULTS:
        raise InvalidParameter(f"Invalid value {value!r} for parameter 'max_results': it must be between 1 and {SEARCH_MAX_RESULTS}.")
    return limit


def search(
    session: Session,
    project_id: str,
    experiment_ids: Any,
    *,
    filter_string: Optional[str] = None,
    datasets: Any = None,
    max_results: Any = None,
    order_by: Any = None,
    page_token: Optional[str] = None,
) -> tuple[list[LoggedModel], Optional[str]]:
    """One page of the project's active logged models and the next page's token."""
    limit = _max_results(max_results)
    node = parse_filter(filter_string)
    order = _parse_order(order_by)
    ds_filters = _parse_datasets(datasets)
    pks = _experiment_pks(session, project_id, experiment_ids)
    d = Dialect(session, LoggedModel)
    atoms = _order_atoms(order, d)
    token = v.require_str(page_token, "page_token") if page_token else None
    pager = Pager(TOKEN_KIND, atoms, token, fingerprint("logged_models", project_id, pks, node, order, ds_filters))
    if not pks:
        return [], None
    stmt = select(LoggedModel).where(
        LoggedModel.project_id == project_id,
        LoggedModel.experiment_id.in_(pks),
        LoggedModel.lifecycle_stage == ACTIVE,
    )
    if node is not None:
        stmt = stmt.where(compile_filter(node, d, _comparison(ds_filters)))
    has_metric_filter = node is not None and any(c.kind == METRIC for c in comparisons(node))
    if ds_filters and not has_metric_filter:
        # Datasets alone select the models that have any metric on one of them.
        stmt = stmt.where(exists(select(literal(1)).where(
            LoggedModelMetric.model_pk == LoggedModel.id, _dataset_condition(ds_filters)
        )))
    page = pager.fetch(session, stmt, limit)
    return page.items, page.next_cursor
