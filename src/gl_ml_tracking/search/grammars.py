"""The run and experiment search grammars (MLflow 3.x), on the shared parser.

Runs::

    entity := metric(s) | param(s) | parameter(s) | tag(s)
            | attribute(s) | attr | run | dataset(s)     (optionally `backticked`)

Experiments: ``tag(s)`` and ``attribute(s)`` / ``attr``.

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
experiment_id       = != IN NOT IN                   quoted integer(s)
==================  ===============================  =========================

Beyond MLflow: ``lifecycle_stage`` is a run attribute (filter and order), and
``attributes.`` and ``attr.`` work for experiments too.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

from .grammar import (
    ATTRIBUTE,
    DATASET,
    LIST_OPS,
    METRIC,
    NULL_OPS,
    PARAM,
    TAG,
    Grammar,
    Node,
    OrderBy,
)
from .scanner import Scanner

__all__ = [
    "RunGrammar",
    "ExperimentGrammar",
    "RUN_NUMERIC_ATTRIBUTES",
    "RUN_STRING_ATTRIBUTES",
    "DATASET_KEYS",
    "EXPERIMENT_NUMERIC_ATTRIBUTES",
    "EXPERIMENT_STRING_ATTRIBUTES",
    "EXPERIMENT_ID_ATTRIBUTE",
    "parse_run_filter",
    "parse_experiment_filter",
    "parse_run_order_by",
    "parse_experiment_order_by",
]

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


def _name(kind: str, key: str) -> str:
    return key if kind == ATTRIBUTE else f"{kind}s.{key}" if kind != PARAM else f"params.{key}"


class RunGrammar(Grammar):
    """``runs/search``: metrics, params, tags, run attributes and dataset fields."""

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
            val = self.number_value(sc, op, f"{label} {name!r}", vkind, raw, start, vstart)
            return float(val) if kind == METRIC else val
        if kind in (PARAM, TAG):
            return self.tag_value(sc, op, name, vkind, raw, start, vstart)
        if op in NULL_OPS:
            raise sc.error(f"IS NULL / IS NOT NULL is only supported for params and tags, not for {name!r}", start)
        list_ok = kind == DATASET or key in _RUN_LIST_ATTRIBUTES
        if op in LIST_OPS:
            if not list_ok:
                raise sc.error(f"{op} is only supported for run_id and dataset fields, not for {name!r}", start)
            return self.list_value(sc, op, vkind, raw, vstart)
        comparators = "= != LIKE ILIKE IN NOT IN" if list_ok else "= != LIKE ILIKE"
        return self.string_value(sc, op, name, vkind, raw, start, vstart, comparators)


class ExperimentGrammar(Grammar):
    """``experiments/search``: tags and experiment attributes."""

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
            return self.tag_value(sc, op, name, vkind, raw, start, vstart)
        if op in NULL_OPS:
            raise sc.error(f"IS NULL / IS NOT NULL is only supported for tags, not for {name!r}", start)
        if key in EXPERIMENT_NUMERIC_ATTRIBUTES:
            what = f"numeric attribute {name!r}"
            return self.number_value(sc, op, what, vkind, raw, start, vstart, integer_for=name)
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
        return self.string_value(sc, op, name, vkind, raw, start, vstart)

    @staticmethod
    def _experiment_id(sc: Scanner, text: str, pos: int) -> int:
        if not re.fullmatch(r"\s*\d{1,18}\s*", text):
            raise sc.error(f"invalid experiment id {text!r}: expected an integer", pos)
        return int(text)


_RUNS = RunGrammar()
_EXPERIMENTS = ExperimentGrammar()


def parse_run_filter(filter_string: Optional[str]) -> Optional[Node]:
    """Parse an MLflow ``search_runs`` filter. None for an empty filter."""
    return _RUNS.parse_filter(filter_string)


def parse_experiment_filter(filter_string: Optional[str]) -> Optional[Node]:
    """Parse an MLflow ``search_experiments`` filter. None for an empty filter."""
    return _EXPERIMENTS.parse_filter(filter_string)


def parse_run_order_by(order_by: Optional[Iterable[str]]) -> list[OrderBy]:
    """Parse ``search_runs`` order_by clauses (``metrics.x DESC``, ``start_time``...)."""
    return _RUNS.parse_order_by(order_by)


def parse_experiment_order_by(order_by: Optional[Iterable[str]]) -> list[OrderBy]:
    """Parse ``search_experiments`` order_by clauses (name, experiment_id, creation_time, last_update_time)."""
    return _EXPERIMENTS.parse_order_by(order_by)
