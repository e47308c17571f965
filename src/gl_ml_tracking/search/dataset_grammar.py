"""The filter and ``order_by`` grammar of ``datasets/search`` (GenAI evaluation datasets).

Keys as MLflow's evaluation-dataset search: the attributes ``name``, ``created_by``,
``last_updated_by`` (strings; ``name`` also ``IN``/``NOT IN`` a list), ``created_time``
and ``last_update_time`` (integers, milliseconds), and ``tags.<key>`` (``=``, ``!=``,
``LIKE``, ``ILIKE``). Order by ``name``, ``created_time`` or ``last_update_time``.
"""
from __future__ import annotations

from .grammar import ATTRIBUTE, LIST_OPS, NULL_OPS, TAG, Grammar

__all__ = ["DATASET_GRAMMAR", "DATASET_STRINGS", "DATASET_NUMERICS", "DATASET_ORDERABLE"]

DATASET_STRINGS = frozenset({"name", "created_by", "last_updated_by"})
DATASET_NUMERICS = frozenset({"created_time", "last_update_time"})
DATASET_ORDERABLE = frozenset({"name", "created_time", "last_update_time"})
_LISTS = frozenset({"name"})


class DatasetGrammar(Grammar):
    what = "evaluation dataset filter"
    entities = {"tag": TAG, "tags": TAG, "attribute": ATTRIBUTE, "attributes": ATTRIBUTE, "attr": ATTRIBUTE}

    def resolve(self, sc, kind, key, start, *, for_order=False):
        kind = kind or ATTRIBUTE
        if for_order:
            if kind != ATTRIBUTE or key not in DATASET_ORDERABLE:
                raise sc.error(f"invalid order by key {key!r}; valid keys are {', '.join(sorted(DATASET_ORDERABLE))}",
                               start)
        elif kind == ATTRIBUTE and key not in DATASET_STRINGS | DATASET_NUMERICS:
            valid = ", ".join(sorted(DATASET_STRINGS | DATASET_NUMERICS))
            raise sc.error(f"invalid attribute key {key!r}; valid attribute keys are {valid}", start)
        return kind, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        name = key if kind == ATTRIBUTE else f"tags.{key}"
        if kind == ATTRIBUTE and key in DATASET_NUMERICS:
            return self.number_value(sc, op, repr(name), vkind, raw, start, vstart, expected="an integer",
                                     integer_for=name)
        if op in NULL_OPS:
            raise sc.error(f"IS NULL / IS NOT NULL is not supported for {name!r}", start)
        if op in LIST_OPS:
            if kind != ATTRIBUTE or key not in _LISTS:
                raise sc.error(f"{op} is only supported for name, not for {name!r}", start)
            return self.list_value(sc, op, vkind, raw, vstart)
        return self.string_value(sc, op, name, vkind, raw, start, vstart)


DATASET_GRAMMAR = DatasetGrammar()
