"""``runs/search`` and ``experiments/search``: filter strings compiled to SQL, keyset pages.

Both searches parse with :mod:`.search_filter`, compile the AST into one SQLAlchemy
``select`` and fetch at most ``max_results + 1`` rows: the database filters, sorts
and limits; nothing is loaded to be filtered in Python, and there is no query per
row (the caller loads params, metrics and tags of the page in bulk).

Semantics follow MLflow's SQL store (3.x):

* every comparison on a metric, param, tag or dataset needs the run to have that
  key (``params.p != 'x'`` does not match a run without ``p``), but ``IS NULL``;
* a NaN metric (stored as ``value`` NULL, ``is_nan`` true) satisfies only ``!=``;
* ``LIKE`` is case-sensitive on every database (on SQLite it is compiled to
  ``GLOB``), ``ILIKE`` is not; ``%`` and ``_`` are the only wildcards and there is no
  escape character, as on MLflow's SQLite store;
* order: each ``order_by`` key puts runs without a value last, whatever the
  direction (metrics: values, then NaN, then missing); then ``start_time DESC``
  unless ordered by it already; then ``run_id`` ascending. Strings sort by code
  point on every database (``COLLATE "C"`` on PostgreSQL), as MLflow's SQLite does;
* experiments: default ``creation_time DESC, experiment_id ASC``; any other order
  ends with ``experiment_id DESC`` unless it names ``experiment_id`` (MLflow's
  tie-breaker). ``experiment_id`` is the per-project IID.

Page tokens are keyset cursors, never offsets: see :func:`encode_page_token`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from sqlalchemy import (
    String,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session, aliased, selectinload
from sqlalchemy.sql.elements import ColumnElement

from ..errors import InvalidParameter
from ..models import (
    ACTIVE,
    DELETED,
    Dataset,
    Experiment,
    ExperimentTag,
    VALUE_PREFIX_CHARS,
    LatestMetric,
    Param,
    Run,
    RunInput,
    RunTag,
)
from . import uris
from .search_filter import (
    ATTRIBUTE,
    DATASET,
    EXPERIMENT_ID_ATTRIBUTE,
    METRIC,
    PARAM,
    TAG,
    And,
    Comparison,
    Node,
    OrderBy,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
)

__all__ = [
    "search_runs",
    "search_experiments",
    "view_type_stages",
    "validate_max_results",
    "SEARCH_MAX_RESULTS_DEFAULT",
    "SEARCH_MAX_RESULTS_THRESHOLD",
    "DATASET_CONTEXT_TAG",
]

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000
DATASET_CONTEXT_TAG = "mlflow.data.context"
_TOKEN_VERSION = 1

_VIEW_TYPES = {
    "ACTIVE_ONLY": (ACTIVE,),
    "DELETED_ONLY": (DELETED,),
    "ALL": (ACTIVE, DELETED),
}
_VIEW_TYPE_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


# --------------------------------------------------------------------------- arguments
def view_type_stages(view_type: Any) -> tuple[str, ...]:
    """Lifecycle stages for an MLflow ViewType: its name (any case), its number, or None (ACTIVE_ONLY)."""
    if view_type is None or view_type == "":
        return _VIEW_TYPES["ACTIVE_ONLY"]
    if isinstance(view_type, int) and not isinstance(view_type, bool) and view_type in _VIEW_TYPE_NUMBERS:
        return _VIEW_TYPES[_VIEW_TYPE_NUMBERS[view_type]]
    if isinstance(view_type, str) and view_type.strip().upper() in _VIEW_TYPES:
        return _VIEW_TYPES[view_type.strip().upper()]
    raise InvalidParameter(
        f"Invalid value {view_type!r} for parameter 'view_type': expected one of ACTIVE_ONLY, DELETED_ONLY, ALL."
    )


def validate_max_results(max_results: Any) -> int:
    """MLflow's rule: a positive integer, at most 50000; None means the default (1000)."""
    if max_results is None:
        return SEARCH_MAX_RESULTS_DEFAULT
    value = max_results
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():  # not isdigit: int("²") fails
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(
            f"Invalid value {max_results!r} for parameter 'max_results' supplied. It must be a positive integer"
        )
    if value < 1:
        raise InvalidParameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer"
        )
    if value > SEARCH_MAX_RESULTS_THRESHOLD:
        raise InvalidParameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            f"It must be at most {SEARCH_MAX_RESULTS_THRESHOLD}"
        )
    return value


# --------------------------------------------------------------------------- dialect helpers
class _Dialect:
    def __init__(self, session: Session, mapper: Any):
        bind = session.get_bind(mapper=mapper)
        self.name = bind.dialect.name
        self.session = session

    def sort_string(self, expr: ColumnElement) -> ColumnElement:
        """Code-point order on every database, as MLflow's SQLite store sorts."""
        if self.name == "postgresql":
            return expr.collate("C")
        return expr

    def like(self, expr: ColumnElement, pattern: str, insensitive: bool) -> ColumnElement:
        if self.name == "sqlite":
            if insensitive:
                return func.lower(expr).like(func.lower(pattern))
            return expr.op("GLOB", is_comparison=True)(_like_to_glob(pattern))
        if self.name == "postgresql":
            # PostgreSQL's LIKE has '\' as its default escape; MLflow's SQLite has none.
            pattern = pattern.replace("\\", "\\\\")
        return expr.ilike(pattern) if insensitive else expr.like(pattern)

    def compare_string(self, expr: ColumnElement, op: str, value: Any) -> ColumnElement:
        if op == "=":
            return expr == value
        if op == "!=":
            return expr != value
        if op == "LIKE":
            return self.like(expr, value, insensitive=False)
        if op == "ILIKE":
            return self.like(expr, value, insensitive=True)
        if op == "IN":
            return expr.in_(list(value))
        if op == "NOT IN":
            return expr.not_in(list(value))
        raise InvalidParameter(f"Invalid comparator {op!r} for a string value.")  # pragma: no cover - parser rejects

    def dataset_context(self, op: str, value: Any) -> ColumnElement:
        """RunInput rows whose ``mlflow.data.context`` input tag matches.

        ``tags_json`` holds the input's tags as a JSON list of {"key", "value"} objects.
        """
        if self.name == "postgresql":
            doc = cast(RunInput.tags_json, _json_type())
            arr = func.json_array_elements(_pg_array_or_empty(doc)).table_valued("value", joins_implicitly=True)
            key = arr.c.value.op("->>")(literal("key", String))
            val = arr.c.value.op("->>")(literal("value", String))
            match = self.compare_string(val, op, value)
            return exists(select(literal(1)).select_from(arr).where(key == DATASET_CONTEXT_TAG, match))
        from sqlalchemy import case

        doc = case((func.json_valid(RunInput.tags_json) == 1, RunInput.tags_json), else_="[]")
        each = func.json_each(doc).table_valued("fullkey", joins_implicitly=True)
        key = func.json_extract(RunInput.tags_json, each.c.fullkey + ".key")
        val = func.json_extract(RunInput.tags_json, each.c.fullkey + ".value")
        match = self.compare_string(val, op, value)
        return exists(select(literal(1)).select_from(each).where(key == DATASET_CONTEXT_TAG, match))


def _json_type():
    from sqlalchemy.dialects.postgresql import JSON

    return JSON


def _pg_array_or_empty(doc: ColumnElement) -> ColumnElement:
    from sqlalchemy import case

    return case((func.json_typeof(doc) == "array", doc), else_=cast(literal("[]"), _json_type()))


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, no escape) as the equivalent case-sensitive GLOB pattern."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


# --------------------------------------------------------------------------- ordering atoms
@dataclass(frozen=True)
class _Atom:
    """One sort column: NULLs always last; ``kind`` types the page-token value."""

    expr: ColumnElement
    ascending: bool
    nullable: bool
    kind: type

    def order_clause(self):
        clause = self.expr.asc() if self.ascending else self.expr.desc()
        return clause.nulls_last() if self.nullable else clause

    def _beyond(self, value: Any, strict: bool) -> Optional[ColumnElement]:
        if self.kind is bool:
            # false < true; SQLAlchemy compares booleans only with = and !=.
            if strict:
                if value == self.ascending:  # nothing after true (ASC) or false (DESC)
                    return None
                return self.expr == (not value)
            return self.expr == value if value == self.ascending else None
        if strict:
            return self.expr > value if self.ascending else self.expr < value
        return self.expr >= value if self.ascending else self.expr <= value

    def after(self, value: Any) -> Optional[ColumnElement]:
        """Rows strictly after ``value`` in this column's order (None: none can be)."""
        if value is None:
            return None  # NULLs come last; nothing sorts after a NULL but other NULLs
        cond = self._beyond(value, strict=True)
        if not self.nullable:
            return cond
        return self.expr.is_(None) if cond is None else or_(cond, self.expr.is_(None))

    def not_before(self, value: Any) -> Optional[ColumnElement]:
        """Rows at or after ``value`` (None: no restriction worth adding)."""
        if value is None:
            return self.expr.is_(None) if self.nullable else None
        cond = self._beyond(value, strict=False)
        if cond is None:
            return None
        return or_(cond, self.expr.is_(None)) if self.nullable else cond

    def equal(self, value: Any) -> ColumnElement:
        return self.expr.is_(None) if value is None else self.expr == value


def _keyset_condition(atoms: Sequence[_Atom], values: Sequence[Any]) -> ColumnElement:
    """Lexicographic "after the cursor" over the atoms (mixed directions, NULLs last)."""
    disjuncts = []
    prefix: list[ColumnElement] = []
    for atom, value in zip(atoms, values):
        after = atom.after(value)
        if after is not None:
            disjuncts.append(and_(*prefix, after) if prefix else after)
        prefix.append(atom.equal(value))
    cond = or_(*disjuncts) if disjuncts else false()
    # A redundant range on the leading column lets the database seek an index.
    lead = atoms[0].not_before(values[0]) if atoms else None
    return and_(lead, cond) if lead is not None else cond


def _check_token_value(value: Any, atom: _Atom) -> bool:
    if value is None:
        return atom.nullable
    if atom.kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if atom.kind is float:
        return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))
    return isinstance(value, atom.kind)


# --------------------------------------------------------------------------- page tokens
def encode_page_token(fingerprint: str, values: Sequence[Any]) -> str:
    """The opaque page token: URL-safe base64 (no padding) of the JSON
    ``{"v": 1, "f": <16-hex fingerprint of the query>, "k": [<sort values of the
    last row returned>]}``. The last value is always the unique tie-breaker
    (run_id / experiment IID), so the next page starts strictly after that row."""
    payload = json.dumps({"v": _TOKEN_VERSION, "f": fingerprint, "k": list(values)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii").rstrip("=")


def decode_page_token(token: str, fingerprint: str, atoms: Sequence[_Atom]) -> list[Any]:
    # str(): a token sent as a number or a list must be a 400, not a crash while making the message.
    bad = InvalidParameter(f"Invalid page token {str(token)[:80]!r}.")
    if not isinstance(token, str):
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token.strip() + "=" * (-len(token.strip()) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(payload, dict) or payload.get("v") != _TOKEN_VERSION or not isinstance(payload.get("k"), list):
        raise bad
    if payload.get("f") != fingerprint:
        raise InvalidParameter(
            "Invalid page token: it belongs to a search with other arguments "
            "(filter, order_by, view type or experiments); repeat the search without a page token."
        )
    values = payload["k"]
    if len(values) != len(atoms) or not all(_check_token_value(v, a) for v, a in zip(values, atoms)):
        raise bad
    return values


def _fingerprint(*parts: Any) -> str:
    text = json.dumps([repr(p) for p in parts], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _token_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):  # pragma: no cover - NaN is stored as NULL
        return None
    return value


# --------------------------------------------------------------------------- runs
def _artifact_uri_expr() -> ColumnElement:
    """``uris.run_artifact_uri(experiment iid, run iid)`` as SQL, from the same template."""
    exp_mark, run_mark = "\x00E\x00", "\x00R\x00"
    template = uris.run_artifact_uri(exp_mark, run_mark)  # type: ignore[arg-type]
    exp_iid = select(Experiment.iid).where(Experiment.id == Run.experiment_id).scalar_subquery()
    parts: list[ColumnElement] = []
    rest = template
    while rest:
        i_e, i_r = rest.find(exp_mark), rest.find(run_mark)
        cands = [(i, m) for i, m in ((i_e, exp_mark), (i_r, run_mark)) if i >= 0]
        if not cands:
            parts.append(literal(rest, String))
            break
        i, mark = min(cands)
        if i:
            parts.append(literal(rest[:i], String))
        parts.append(cast(exp_iid if mark == exp_mark else Run.iid, String))
        rest = rest[i + len(mark):]
    expr = parts[0]
    for part in parts[1:]:
        expr = expr.concat(part)
    return expr


def _run_attribute(key: str) -> tuple[ColumnElement, bool, type]:
    """(expression, nullable, python type) of a run attribute."""
    columns = {
        "run_id": Run.run_uuid,
        "run_name": Run.name,
        "status": Run.status,
        "user_id": Run.user_id,
        "lifecycle_stage": Run.lifecycle_stage,
        "start_time": Run.start_time,
        "end_time": Run.end_time,
    }
    if key == "artifact_uri":
        return _artifact_uri_expr(), False, str
    col = columns[key]
    kind = int if key in ("start_time", "end_time") else str
    return col, bool(col.property.columns[0].nullable), kind


def _metric_condition(op: str, value: float) -> ColumnElement:
    if op == "!=":
        return or_(LatestMetric.value != value, LatestMetric.is_nan == true())
    cmp = {
        "=": LatestMetric.value == value,
        "<": LatestMetric.value < value,
        "<=": LatestMetric.value <= value,
        ">": LatestMetric.value > value,
        ">=": LatestMetric.value >= value,
    }[op]
    return and_(cmp, LatestMetric.is_nan == false())


def _numeric(expr: ColumnElement, op: str, value: Any) -> ColumnElement:
    return {
        "=": lambda: expr == value,
        "!=": lambda: expr != value,
        "<": lambda: expr < value,
        "<=": lambda: expr <= value,
        ">": lambda: expr > value,
        ">=": lambda: expr >= value,
    }[op]()


def _has(d: _Dialect, run_id_col, sub) -> ColumnElement:
    """Runs with a row in ``sub`` (a select of ``run_id_col``).

    SQLite runs a correlated EXISTS as a primary-key probe per candidate run and
    stops at the LIMIT when the order comes from an index, where ``IN (subquery)``
    would first materialise every matching id; PostgreSQL plans both as semi-joins,
    but only ``IN`` stays a (hashed) semi-join under OR, so it gets ``IN``.
    """
    if d.name == "sqlite":
        return exists(sub.where(run_id_col == Run.id))
    return Run.id.in_(sub)


# SQLite's planner has no value histograms: it takes every (key, value) pair for as
# selective as the average one. Below this many matching rows an equality filter drives
# the query; above it the runs are walked in index order and probed (which stops at the
# page size), e.g. ``tags.mlflow.user = 'me'`` that matches every run.
SQLITE_DRIVING_FILTER_MAX_ROWS = 2000


def _equal_value_condition(entity: Any, key: str, value: str, d: _Dialect) -> ColumnElement:
    """Runs whose param/tag ``key`` equals ``value``. A selective equality becomes
    ``Run.id IN (rows from the (key, value) index)``, which both databases drive from
    that index instead of probing every run of the experiment (100k runs, a filter
    matching 1%: 280 ms → 16 ms on SQLite); PostgreSQL's planner judges selectivity
    from its statistics, SQLite's is asked with a bounded count."""
    conditions = [entity.key == key, entity.value == value]
    if d.name == "postgresql":
        # The index holds a prefix of the value (see models.tracking.VALUE_PREFIX_CHARS).
        conditions.append(func.left(entity.value, VALUE_PREFIX_CHARS) == value[:VALUE_PREFIX_CHARS])
        return Run.id.in_(select(entity.run_id).where(*conditions))
    probe = select(entity.run_id).where(*conditions).limit(SQLITE_DRIVING_FILTER_MAX_ROWS + 1).subquery()
    matches = d.session.execute(select(func.count()).select_from(probe)).scalar_one()
    if matches <= SQLITE_DRIVING_FILTER_MAX_ROWS:
        return Run.id.in_(select(entity.run_id).where(*conditions))
    return exists(select(entity.run_id).where(*conditions, entity.run_id == Run.id))


def _run_comparison(c: Comparison, d: _Dialect) -> ColumnElement:
    if c.kind == METRIC:
        sub = select(LatestMetric.run_id).where(LatestMetric.key == c.key, _metric_condition(c.op, c.value))
        return _has(d, LatestMetric.run_id, sub)
    if c.kind in (PARAM, TAG):
        entity = Param if c.kind == PARAM else RunTag
        if c.op == "IS NULL":
            return ~exists(select(literal(1)).where(entity.run_id == Run.id, entity.key == c.key))
        if c.op == "IS NOT NULL":
            return _has(d, entity.run_id, select(entity.run_id).where(entity.key == c.key))
        if c.op == "=" and isinstance(c.value, str):
            return _equal_value_condition(entity, c.key, c.value, d)
        sub = select(entity.run_id).where(entity.key == c.key, d.compare_string(entity.value, c.op, c.value))
        return _has(d, entity.run_id, sub)
    if c.kind == ATTRIBUTE:
        expr, _nullable, kind = _run_attribute(c.key)
        if kind is int:
            return _numeric(expr, c.op, c.value)
        return d.compare_string(expr, c.op, c.value)
    if c.kind == DATASET:
        if c.key == "context":
            sub = select(RunInput.run_id).where(d.dataset_context(c.op, c.value))
        else:
            column = Dataset.name if c.key == "name" else Dataset.digest
            sub = (
                select(RunInput.run_id)
                .join(Dataset, Dataset.id == RunInput.dataset_id)
                .where(d.compare_string(column, c.op, c.value))
            )
        return _has(d, RunInput.run_id, sub)
    raise InvalidParameter(f"Invalid search expression type {c.kind!r}.")  # pragma: no cover


def _compile(node: Node, d: _Dialect, leaf) -> ColumnElement:
    if isinstance(node, Comparison):
        return leaf(node, d)
    parts = [_compile(item, d, leaf) for item in node.items]
    return and_(*parts) if isinstance(node, And) else or_(*parts)


def _run_order(order: list[OrderBy], d: _Dialect) -> tuple[list[_Atom], list[tuple[Any, ColumnElement]]]:
    atoms: list[_Atom] = []
    joins: list[tuple[Any, ColumnElement]] = []
    has_start_time = False
    unique_reached = False
    for i, ob in enumerate(order):
        if ob.kind == ATTRIBUTE:
            expr, nullable, kind = _run_attribute(ob.key)
            if kind is str and ob.key != "run_id":
                expr = d.sort_string(expr)
            atoms.append(_Atom(expr, ob.ascending, nullable, kind))
            has_start_time = has_start_time or ob.key == "start_time"
            if ob.key == "run_id":
                unique_reached = True
                break  # run_id is unique: nothing after it can matter
        elif ob.kind == METRIC:
            lm = aliased(LatestMetric, name=f"order_metric_{i}")
            joins.append((lm, and_(lm.run_id == Run.id, lm.key == ob.key)))
            # Values, then NaN (value NULL, is_nan true), then runs without the metric.
            atoms.append(_Atom(lm.value, ob.ascending, True, float))
            atoms.append(_Atom(lm.is_nan, False, True, bool))
        else:
            entity = Param if ob.kind == PARAM else RunTag
            alias = aliased(entity, name=f"order_{'param' if ob.kind == PARAM else 'tag'}_{i}")
            joins.append((alias, and_(alias.run_id == Run.id, alias.key == ob.key)))
            atoms.append(_Atom(d.sort_string(alias.value), ob.ascending, True, str))
    if not unique_reached:
        if not has_start_time:
            atoms.append(_Atom(Run.start_time, False, bool(Run.start_time.property.columns[0].nullable), int))
        atoms.append(_Atom(Run.run_uuid, True, False, str))
    return atoms, joins


def search_runs(
    session: Session,
    project_id: str,
    experiment_pks: list[int],
    filter_string: str = "",
    run_view_type: str = "ACTIVE_ONLY",
    max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
    order_by: Optional[list[str]] = None,
    page_token: Optional[str] = None,
) -> tuple[list[Run], Optional[str]]:
    """One page of the project's runs in ``experiment_pks`` (internal experiment ids)
    that match ``filter_string``, in MLflow's order, and the next page's token
    (None on the last page). Raises InvalidParameter on any bad argument."""
    limit = validate_max_results(max_results)
    stages = view_type_stages(run_view_type)
    node = parse_run_filter(filter_string)
    order = parse_run_order_by(order_by)
    pks = sorted({int(pk) for pk in experiment_pks or ()})
    d = _Dialect(session, Run)
    atoms, joins = _run_order(order, d)
    fingerprint = _fingerprint("runs", project_id, pks, stages, node, order)
    cursor = decode_page_token(page_token, fingerprint, atoms) if page_token else None
    if not pks:
        return [], None

    # The experiment is loaded by a second query (the caller needs its IID); its tags
    # are not. Joining it in made SQLite scan and sort every run of the experiment
    # instead of walking the (experiment, start_time, run_uuid) index.
    stmt = select(Run, *[a.expr.label(f"sort_{i}") for i, a in enumerate(atoms)]).options(
        selectinload(Run.experiment).lazyload(Experiment.tags)
    )
    for target, onclause in joins:
        stmt = stmt.outerjoin(target, onclause)
    stmt = stmt.where(
        Run.project_id == project_id,
        Run.experiment_id.in_(pks),
        Run.lifecycle_stage.in_(stages),
    )
    if node is not None:
        stmt = stmt.where(_compile(node, d, _run_comparison))
    if cursor is not None:
        stmt = stmt.where(_keyset_condition(atoms, cursor))
    stmt = stmt.order_by(*[a.order_clause() for a in atoms]).limit(limit + 1)

    rows = session.execute(stmt).all()
    next_token = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_token = encode_page_token(fingerprint, [_token_value(v) for v in tuple(last)[1:]])
    return [row[0] for row in rows], next_token


# --------------------------------------------------------------------------- experiments
def _experiment_comparison(c: Comparison, d: _Dialect) -> ColumnElement:
    if c.kind == TAG:
        if c.op == "IS NULL":
            return ~exists(
                select(literal(1)).where(ExperimentTag.experiment_id == Experiment.id, ExperimentTag.key == c.key)
            )
        if c.op == "IS NOT NULL":
            return Experiment.id.in_(select(ExperimentTag.experiment_id).where(ExperimentTag.key == c.key))
        sub = select(ExperimentTag.experiment_id).where(
            ExperimentTag.key == c.key, d.compare_string(ExperimentTag.value, c.op, c.value)
        )
        return Experiment.id.in_(sub)
    if c.key == EXPERIMENT_ID_ATTRIBUTE:
        if c.op in ("IN", "NOT IN"):
            return Experiment.iid.in_(list(c.value)) if c.op == "IN" else Experiment.iid.not_in(list(c.value))
        return _numeric(Experiment.iid, c.op, c.value)
    if c.key == "name":
        return d.compare_string(Experiment.name, c.op, c.value)
    return _numeric(getattr(Experiment, c.key), c.op, c.value)


def _experiment_order(order: list[OrderBy], d: _Dialect) -> list[_Atom]:
    if not order:
        order = [OrderBy(ATTRIBUTE, "creation_time", False), OrderBy(ATTRIBUTE, EXPERIMENT_ID_ATTRIBUTE, True)]
    atoms: list[_Atom] = []
    for ob in order:
        if ob.key == EXPERIMENT_ID_ATTRIBUTE:
            atoms.append(_Atom(Experiment.iid, ob.ascending, False, int))
            return atoms  # unique within the project
        if ob.key == "name":
            atoms.append(_Atom(d.sort_string(Experiment.name), ob.ascending, False, str))
        else:
            atoms.append(_Atom(getattr(Experiment, ob.key), ob.ascending, False, int))
    atoms.append(_Atom(Experiment.iid, False, False, int))  # MLflow's tie-breaker: experiment_id DESC
    return atoms


def search_experiments(
    session: Session,
    project_id: str,
    filter_string: str = "",
    view_type: str = "ACTIVE_ONLY",
    max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
    order_by: Optional[list[str]] = None,
    page_token: Optional[str] = None,
) -> tuple[list[Experiment], Optional[str]]:
    """One page of the project's experiments matching ``filter_string`` and the
    next page's token (None on the last page). Raises InvalidParameter on any bad argument."""
    limit = validate_max_results(max_results)
    stages = view_type_stages(view_type)
    node = parse_experiment_filter(filter_string)
    order = parse_experiment_order_by(order_by)
    d = _Dialect(session, Experiment)
    atoms = _experiment_order(order, d)
    fingerprint = _fingerprint("experiments", project_id, stages, node, order)
    cursor = decode_page_token(page_token, fingerprint, atoms) if page_token else None

    stmt = select(Experiment, *[a.expr.label(f"sort_{i}") for i, a in enumerate(atoms)]).where(
        Experiment.project_id == project_id,
        Experiment.lifecycle_stage.in_(stages),
    )
    if node is not None:
        stmt = stmt.where(_compile(node, d, _experiment_comparison))
    if cursor is not None:
        stmt = stmt.where(_keyset_condition(atoms, cursor))
    stmt = stmt.order_by(*[a.order_clause() for a in atoms]).limit(limit + 1)

    rows = session.execute(stmt).all()
    next_token = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_token = encode_page_token(fingerprint, [_token_value(v) for v in tuple(rows[-1])[1:]])
    return [row[0] for row in rows], next_token
