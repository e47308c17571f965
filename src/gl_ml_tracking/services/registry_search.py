"""``registered-models/search`` and ``model-versions/search`` on the shared parser.

Filters: attributes (string or numeric) and tags, as MLflow's registry (3.x). Prompts
(models tagged ``mlflow.prompt.is_prompt = true``) are left out unless the filter
names that tag, as MLflow does.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import exists, func, literal, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag
from ..search.grammar import (
    ATTRIBUTE,
    LIST_OPS,
    NULL_OPS,
    TAG,
    Comparison,
    Grammar,
    Node,
    comparisons,
)
from ..search.keyset import Atom, Pager, fingerprint
from ..search.sql import Dialect, Leaf, compile_filter, numeric_condition
from . import validation as v

__all__ = [
    "IS_PROMPT_TAG",
    "MODELS_DEFAULT_MAX_RESULTS",
    "MODELS_MAX_RESULTS",
    "VERSIONS_DEFAULT_MAX_RESULTS",
    "VERSIONS_MAX_RESULTS",
    "MODELS_TOKEN_KIND",
    "VERSIONS_TOKEN_KIND",
    "search_registered_models",
    "search_model_versions",
]

MODELS_TOKEN_KIND = "registered-models"
VERSIONS_TOKEN_KIND = "model-versions"
IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
MODELS_DEFAULT_MAX_RESULTS, MODELS_MAX_RESULTS = 100, 1000
VERSIONS_DEFAULT_MAX_RESULTS, VERSIONS_MAX_RESULTS = 10_000, 200_000


_ENTITIES = {
    "tag": TAG, "tags": TAG,
    "attribute": ATTRIBUTE, "attributes": ATTRIBUTE, "attr": ATTRIBUTE,
}


class _RegistryGrammar(Grammar):
    """Registry filters on the shared parser: attributes (string or numeric) and tags."""

    entities = _ENTITIES

    def __init__(self, what: str, strings: set, numerics: set, lists: set, orderable: set):
        self.what, self.strings, self.numerics, self.lists, self.orderable = what, strings, numerics, lists, orderable

    def resolve(self, sc, kind, key, start, *, for_order=False):
        kind = kind or ATTRIBUTE
        if for_order:
            if kind != ATTRIBUTE or key not in self.orderable:
                raise sc.error(f"invalid order by key {key!r}; valid keys are {', '.join(sorted(self.orderable))}", start)
        elif kind == ATTRIBUTE and key not in self.strings | self.numerics:
            raise sc.error(f"invalid attribute key {key!r}; valid attribute keys are {', '.join(sorted(self.strings | self.numerics))}", start)
        return kind, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        name = key if kind == ATTRIBUTE else f"tags.{key}"
        if kind == ATTRIBUTE and key in self.numerics:
            return self.number_value(sc, op, repr(name), vkind, raw, start, vstart, expected="an integer",
                                     integer_for=name)
        if op in NULL_OPS:
            raise sc.error(f"IS NULL / IS NOT NULL is not supported for {name!r}", start)
        if op in LIST_OPS:
            if kind != ATTRIBUTE or key not in self.lists:
                raise sc.error(f"{op} is only supported for {', '.join(sorted(self.lists))}, not for {name!r}", start)
            return self.list_value(sc, op, vkind, raw, vstart)
        return self.string_value(sc, op, name, vkind, raw, start, vstart)


_MODELS_GRAMMAR = _RegistryGrammar(
    "registered model filter", {"name"}, {"creation_timestamp", "last_updated_timestamp"}, {"name"},
    {"name", "timestamp", "last_updated_timestamp", "creation_timestamp"},
)
_VERSIONS_GRAMMAR = _RegistryGrammar(
    "model version filter", {"name", "run_id", "source_path", "model_id"},
    {"version_number", "creation_timestamp", "last_updated_timestamp"}, {"name", "run_id"},
    {"name", "version_number", "creation_timestamp", "last_updated_timestamp"},
)


def _limit(value: Any, default: int, maximum: int) -> int:
    limit = v.parse_int(value, "max_results", default=default)
    if limit == 0:  # proto3: not set
        limit = default
    if limit < 1 or limit > maximum:
        raise InvalidParameter(
            f"Invalid value for request parameter max_results. It must be at most {maximum}, but got value {value}"
            if limit > maximum else f"Invalid value for max_results. It must be a positive integer, but got {value}"
        )
    return limit


def _is_prompt(model_pk_column: Any):
    return exists(select(literal(1)).where(
        RegisteredModelTag.registered_model_id == model_pk_column, RegisteredModelTag.key == IS_PROMPT_TAG,
        func.lower(RegisteredModelTag.value) == "true",
    ))


def _prompt_leaf(c: Comparison):
    """``tags.`mlflow.prompt.is_prompt` = 'false'`` must match models without the tag."""
    if c.kind == TAG and c.key == IS_PROMPT_TAG and c.op in ("=", "!=") and str(c.value).lower() in ("true", "false"):
        wants_prompt = (c.op == "=") == (str(c.value).lower() == "true")
        return _is_prompt(RegisteredModel.id) if wants_prompt else ~_is_prompt(RegisteredModel.id)
    return None


def _tag_leaf(c: Comparison, d: Dialect, tag_entity: Any, owned: Any):
    """What both registry searches filter alike: the prompt tag, then any tag (``owned``:
    the tag row belongs to the row searched). None for an attribute."""
    special = _prompt_leaf(c)
    if special is not None:
        return special
    if c.kind == TAG:
        return exists(select(literal(1)).where(
            owned, tag_entity.key == c.key, d.compare_string(tag_entity.value, c.op, c.value)))
    return None


def _queries_prompts(node: Optional[Node]) -> bool:
    return any(c.kind == TAG and c.key == IS_PROMPT_TAG for c in comparisons(node))


def _page(session: Session, stmt: Any, node: Optional[Node], d: Dialect, leaf: Leaf, pager: Pager,
          limit: int) -> tuple[list, Optional[str]]:
    """One page of ``stmt`` under the filter; prompts are left out unless the filter names them."""
    if node is not None:
        stmt = stmt.where(compile_filter(node, d, leaf))
    if not _queries_prompts(node):
        stmt = stmt.where(~_is_prompt(RegisteredModel.id))
    page = pager.fetch(session, stmt, limit)
    return page.items, page.next_cursor


def _pager(kind: str, atoms: list[Atom], page_token: Any, search_fingerprint: str) -> Pager:
    # require_str first: a token that is no string keeps its message of before the pager.
    return Pager(kind, atoms, v.require_str(page_token, "page_token") if page_token else None, search_fingerprint)


def search_registered_models(
    session: Session, project_id: str, filter_string: Any = None, max_results: Any = None, order_by: Any = None,
    page_token: Optional[str] = None,
) -> tuple[list[RegisteredModel], Optional[str]]:
    limit = _limit(max_results, MODELS_DEFAULT_MAX_RESULTS, MODELS_MAX_RESULTS)
    node = _MODELS_GRAMMAR.parse_filter(filter_string or None)
    order = _MODELS_GRAMMAR.parse_order_by(order_by or None)
    d = Dialect(session, RegisteredModel)

    def leaf(c: Comparison, d: Dialect):
        shared = _tag_leaf(c, d, RegisteredModelTag, RegisteredModelTag.registered_model_id == RegisteredModel.id)
        if shared is not None:
            return shared
        if c.key == "name":
            return d.compare_string(RegisteredModel.name, c.op, c.value)
        column = RegisteredModel.creation_time if c.key == "creation_timestamp" else RegisteredModel.last_update_time
        return numeric_condition(column, c.op, c.value)

    atoms: list[Atom] = []
    for ob in order:
        if ob.key == "name":
            atoms.append(Atom(d.sort_string(RegisteredModel.name), ob.ascending, False, str))
            break  # unique in the project
        column = RegisteredModel.creation_time if ob.key == "creation_timestamp" else RegisteredModel.last_update_time
        atoms.append(Atom(column, ob.ascending, False, int))
    else:
        atoms.append(Atom(d.sort_string(RegisteredModel.name), True, False, str))
    pager = _pager(MODELS_TOKEN_KIND, atoms, page_token, fingerprint("registered_models", project_id, node, order))
    stmt = select(RegisteredModel).where(RegisteredModel.project_id == project_id)
    return _page(session, stmt, node, d, leaf, pager, limit)


def search_model_versions(
    session: Session, project_id: str, filter_string: Any = None, max_results: Any = None, order_by: Any = None,
    page_token: Optional[str] = None,
) -> tuple[list[ModelVersion], Optional[str]]:
    limit = _limit(max_results, VERSIONS_DEFAULT_MAX_RESULTS, VERSIONS_MAX_RESULTS)
    node = _VERSIONS_GRAMMAR.parse_filter(filter_string or None)
    order = _VERSIONS_GRAMMAR.parse_order_by(order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"])
    d = Dialect(session, ModelVersion)
    strings = {"name": RegisteredModel.name, "run_id": ModelVersion.run_uuid, "source_path": ModelVersion.source,
               "model_id": ModelVersion.model_id}
    numbers = {"version_number": ModelVersion.version, "creation_timestamp": ModelVersion.creation_time,
               "last_updated_timestamp": ModelVersion.last_update_time}

    def leaf(c: Comparison, d: Dialect):
        shared = _tag_leaf(c, d, ModelVersionTag, ModelVersionTag.model_version_id == ModelVersion.id)
        if shared is not None:
            return shared
        if c.key in numbers:
            return numeric_condition(numbers[c.key], c.op, c.value)
        return d.compare_string(strings[c.key], c.op, c.value)

    atoms: list[Atom] = []
    keys = {ob.key for ob in order}
    for ob in order:
        expr = d.sort_string(RegisteredModel.name) if ob.key == "name" else numbers[ob.key]
        atoms.append(Atom(expr, ob.ascending, False, str if ob.key == "name" else int))
    if "name" not in keys:
        atoms.append(Atom(d.sort_string(RegisteredModel.name), True, False, str))
    if "version_number" not in keys:
        atoms.append(Atom(ModelVersion.version, False, False, int))
    pager = _pager(VERSIONS_TOKEN_KIND, atoms, page_token, fingerprint("model_versions", project_id, node, order))
    stmt = (
        select(ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.registered_model_id)
        .where(RegisteredModel.project_id == project_id, ModelVersion.deleted.is_(False))
    )
    return _page(session, stmt, node, d, leaf, pager, limit)
