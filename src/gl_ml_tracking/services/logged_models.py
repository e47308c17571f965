"""MLflow 3 logged models: create, read, finalize, delete, tags, params,
metrics linked to them, runs that output them, and search.

A logged model belongs to one experiment of the project; its public id is
``m-<32 hex>`` (MLflow's form) and its files live in the package registry under
``artifact_location`` (see ``services/artifacts.py`` for the scheme). Deleting is
soft (``lifecycle_stage``), as in MLflow: ``get`` then answers 404 unless
``allow_deleted``, and search skips the model.

Search follows MLflow's SQL store (3.x): filter on ``name``, ``model_id``,
``model_type``, ``status``, ``source_run_id``, ``creation_timestamp``,
``last_updated_timestamp``, ``metrics.<k>``, ``params.<k>``, ``tags.<k>``; order by
those attributes or ``metrics.<k>`` (the metric's latest value by timestamp, then
step, optionally on one dataset), always ending with ``creation_timestamp DESC,
model_id ASC``. Page tokens are keyset cursors, as for runs.
"""
from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from sqlalchemy import and_, delete, exists, literal, or_, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import (
    ACTIVE,
    DELETED,
    Experiment,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    Run,
    RunOutput,
)
from . import search_filter as sf
from . import validation as v
from .common import dialect_insert, now_ms
from .experiments import get_active_experiment
from .names import random_run_name
from .runs import get_active_run, get_run
from .search import (
    _Atom,
    _compile,
    _Dialect,
    _fingerprint,
    _keyset_condition,
    _numeric,
    _token_value,
    decode_page_token,
    encode_page_token,
)

# Stored without the proto prefix; the API speaks ``LOGGED_MODEL_<status>``.
STATUSES = ("PENDING", "READY", "UPLOAD_FAILED")
_STATUS_PREFIX = "LOGGED_MODEL_"
_STATUS_NUMBERS = {1: "PENDING", 2: "READY", 3: "UPLOAD_FAILED"}
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
SEARCH_DEFAULT_MAX_RESULTS = 100
SEARCH_MAX_RESULTS = 50000
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}\Z")
_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")


def status_name(status: str) -> str:
    return _STATUS_PREFIX + status


def parse_status(value: Any) -> str:
    """``LOGGED_MODEL_READY``, ``READY`` or the proto number 2 -> ``READY``."""
    if isinstance(value, int) and not isinstance(value, bool) and value in _STATUS_NUMBERS:
        return _STATUS_NUMBERS[value]
    if isinstance(value, str):
        text = value.strip().upper()
        if text.isdecimal() and int(text) in _STATUS_NUMBERS:  # not isdigit: int("²") fails
            return _STATUS_NUMBERS[int(text)]
        if text.startswith(_STATUS_PREFIX):
            text = text[len(_STATUS_PREFIX):]
        if text in STATUSES:
            return text
    raise InvalidParameter(
        f"Invalid logged model status {value!r}: expected one of "
        + ", ".join(status_name(s) for s in STATUSES)
    )


def artifact_location(experiment_iid: int, model_id: str) -> str:
    """Where the model's files go; the artifacts proxy owns the scheme."""
    from .artifacts import logged_model_artifact_location

    return logged_model_artifact_location(experiment_iid, model_id)


# -- lookups ---------------------------------------------------------------------
def get_logged_model(session: Session, project_id: str, model_id: Any, *, allow_deleted: bool = False) -> LoggedModel:
    text = v.require_str(model_id, "model_id", max_length=64).strip()
    model = None
    if _MODEL_ID.match(text):
        model = session.scalars(
            select(LoggedModel).where(LoggedModel.model_id == text, LoggedModel.project_id == project_id)
        ).one_or_none()
    if model is None or (model.lifecycle_stage == DELETED and not allow_deleted):
        raise ResourceDoesNotExist(f"Logged model with ID '{text}' not found.")
    return model


def _validate_name(name: Any) -> Optional[str]:
    if name is None or name == "":
        return None
    if not isinstance(name, str) or any(c in name for c in _BAD_NAME_CHARS) or "\x00" in name:
        raise InvalidParameter(
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string "
            f"and cannot contain the following characters: {_BAD_NAME_CHARS}"
        )
    if len(name) > 500:
        raise InvalidParameter("Logged model name exceeds the maximum length of 500 characters.")
    return name


def _pairs(raw: Any, what: str) -> list[tuple[Any, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise InvalidParameter(f"'{what}' must be a list of {{key, value}} objects.")
    return [(item.get("key"), item.get("value")) for item in raw]


def _validated_params(raw: Any) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in _pairs(raw, "params"):
        key = v.validate_key("Param", key)
        value = v.validate_value("Param", value, v.MAX_PARAM_VAL_LENGTH)
        if key in params and params[key] != value:
            raise InvalidParameter(f"Duplicate parameter keys have been submitted: '{key}' with different values.")
        params[key] = value
    return params


def _validated_tags(raw: Any) -> dict[str, Optional[str]]:
    return {
        v.validate_key("Tag", key): v.validate_value("Tag", value, v.MAX_TAG_VAL_LENGTH, required=False)
        for key, value in _pairs(raw, "tags")
    }


# -- create / update / delete --------------------------------------------------
def create_logged_model(
    session: Session,
    project_id: str,
    experiment_id: Any,
    *,
    name: Any = None,
    model_type: Any = None,
    source_run_id: Any = None,
    params: Any = None,
    tags: Any = None,
    user_id: Optional[str] = None,
) -> LoggedModel:
    experiment = get_active_experiment(session, project_id, experiment_id)
    name = _validate_name(name) or random_run_name()
    if model_type is not None and (not isinstance(model_type, str) or len(model_type) > 500):
        raise InvalidParameter("Invalid value for parameter 'model_type': expected a string of at most 500 characters.")
    run_uuid = None
    if source_run_id:
        # The run must be of this project: a model never points into another one.
        run_uuid = get_run(session, project_id, source_run_id).run_uuid
    param_map, tag_map = _validated_params(params), _validated_tags(tags)
    now = now_ms()
    model = LoggedModel(
        model_id="m-" + uuid.uuid4().hex,
        project_id=project_id,
        experiment_id=experiment.id,
        name=name,
        source_run_uuid=run_uuid,
        model_type=model_type or None,
        status="PENDING",
        lifecycle_stage=ACTIVE,
        user_id=user_id,
        creation_time=now,
        last_update_time=now,
    )
    model.experiment = experiment
    session.add(model)
    session.flush()
    _write_params(session, model, param_map)
    _upsert_tags(session, model, tag_map)
    return model


def _write_params(session: Session, model: LoggedModel, params: dict[str, str]) -> None:
    """Params are write-once, as a run's: the same value again is fine, another is an error."""
    if not params:
        return
    session.execute(
        dialect_insert(session)(LoggedModelParam).on_conflict_do_nothing(
            index_elements=[LoggedModelParam.model_pk, LoggedModelParam.key]
        ),
        [{"model_pk": model.id, "key": k, "value": val} for k, val in params.items()],
    )
    stored = dict(
        session.execute(
            select(LoggedModelParam.key, LoggedModelParam.value).where(
                LoggedModelParam.model_pk == model.id, LoggedModelParam.key.in_(list(params))
            )
        ).tuples().all()
    )
    for key, value in params.items():
        if stored.get(key) != value:
            raise InvalidParameter(
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{stored.get(key)}' for model ID='{model.model_id}'. Attempted logging new value '{value}'."
            )


def _upsert_tags(session: Session, model: LoggedModel, tags: dict[str, Optional[str]]) -> None:
    if not tags:
        return
    stmt = dialect_insert(session)(LoggedModelTag)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoggedModelTag.model_pk, LoggedModelTag.key], set_={"value": stmt.excluded.value}
    )
    session.execute(stmt, [{"model_pk": model.id, "key": k, "value": val} for k, val in tags.items()])


def log_params(session: Session, project_id: str, model_id: Any, params: Any) -> LoggedModel:
    model = get_logged_model(session, project_id, model_id)
    _write_params(session, model, _validated_params(params))
    model.last_update_time = now_ms()
    return model


def finalize(session: Session, project_id: str, model_id: Any, status: Any) -> LoggedModel:
    model = get_logged_model(session, project_id, model_id)
    if status is None or status == "":
        raise InvalidParameter("Missing value for required parameter 'status'.")
    model.status = parse_status(status)
    model.last_update_time = now_ms()
    if model.status == "READY":
        from .model_registry import share_files_of_logged_model

        # A version registered before the upload finished gets the files now.
        share_files_of_logged_model(session, project_id, model)
    return model


def list_artifacts(session: Session, project_id: str, model_id: Any, directory: str = "") -> tuple[str, list[dict]]:
    """``(artifact_location, entries of directory)`` of a model's files."""
    from . import artifacts

    model = get_logged_model(session, project_id, model_id)
    location = artifact_location(model.experiment.iid, model.model_id)
    package_name, version, base = artifacts.resolve_artifact_path(session, project_id, location[len("mlflow-artifacts:/"):])
    path = "/".join(p for p in (base, str(directory).strip("/")) if p)
    return location, artifacts.list_artifacts(session, project_id, package_name, version, path)


def delete_logged_model(session: Session, project_id: str, model_id: Any) -> LoggedModel:
    model = get_logged_model(session, project_id, model_id)
    model.lifecycle_stage = DELETED
    model.last_update_time = now_ms()
    return model


def set_tags(session: Session, project_id: str, model_id: Any, tags: Any) -> LoggedModel:
    model = get_logged_model(session, project_id, model_id)
    _upsert_tags(session, model, _validated_tags(tags))
    model.last_update_time = now_ms()
    return model


def delete_tag(session: Session, project_id: str, model_id: Any, key: Any) -> None:
    model = get_logged_model(session, project_id, model_id)
    key = v.require_str(key, "tag_key")
    deleted = session.execute(
        delete(LoggedModelTag).where(LoggedModelTag.model_pk == model.id, LoggedModelTag.key == key)
    ).rowcount
    if not deleted:
        raise ResourceDoesNotExist(f"No tag with key {key!r} found for model with ID {model.model_id!r}.")
    model.last_update_time = now_ms()


def add_model_version_link(session: Session, project_id: str, model_id: str, name: str, version: int) -> None:
    """Record a registered version on the model's ``mlflow.modelVersions`` tag (a JSON
    list of {name, version}), as MLflow's server does when a version is created."""
    import json

    model = get_logged_model(session, project_id, model_id, allow_deleted=True)
    current = session.scalar(
        select(LoggedModelTag.value).where(LoggedModelTag.model_pk == model.id, LoggedModelTag.key == MODEL_VERSIONS_TAG)
    )
    try:
        links = json.loads(current) if current else []
    except ValueError:
        links = []
    if not isinstance(links, list):
        links = []
    entry = {"name": name, "version": str(version)}
    if entry not in links:
        links.append(entry)
    _upsert_tags(session, model, {MODEL_VERSIONS_TAG: json.dumps(links)})


# -- runs and models -------------------------------------------------------------
def log_outputs(session: Session, project_id: str, run_id: Any, models: Any) -> None:
    """``runs/outputs``: the run produced these models (at a step)."""
    run = get_active_run(session, project_id, run_id)
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise InvalidParameter("'models' must be a list of {model_id, step} objects.")
    rows = {}
    for item in models:
        model = get_logged_model(session, project_id, item.get("model_id"))
        rows[model.id] = v.parse_int(item.get("step"), "step", default=0)
    if not rows:
        return
    stmt = dialect_insert(session)(RunOutput)
    stmt = stmt.on_conflict_do_update(
        index_elements=[RunOutput.run_id, RunOutput.model_pk], set_={"step": stmt.excluded.step}
    )
    session.execute(stmt, [{"run_id": run.id, "model_pk": pk, "step": step} for pk, step in rows.items()])


def record_metrics(session: Session, run: Run, metrics: Iterable[Any]) -> None:
    """Copy the metrics that name a ``model_id`` onto that model (what MLflow does in
    ``log-metric`` and ``log-batch``); the run keeps them as well. Metrics without a
    model id are ignored here."""
    rows = []
    models: dict[str, LoggedModel] = {}
    for raw in metrics:
        if not isinstance(raw, dict) or not raw.get("model_id"):
            continue
        model_id = v.require_str(raw["model_id"], "model_id", max_length=64)
        if model_id not in models:
            models[model_id] = get_logged_model(session, run.project_id, model_id)
        key = v.validate_key("Metric", raw.get("key"))
        value = v.parse_float(raw.get("value"), "metric value")
        rows.append(
            {
                "model_pk": models[model_id].id,
                "key": key,
                "value": None if math.isnan(value) else value,
                "timestamp": v.parse_int(raw.get("timestamp"), "timestamp", default=now_ms()),
                "step": v.parse_int(raw.get("step"), "step", default=0),
                "run_uuid": run.run_uuid,
                "dataset_name": _optional_str(raw.get("dataset_name"), "dataset_name", 500),
                "dataset_digest": _optional_str(raw.get("dataset_digest"), "dataset_digest", 64),
            }
        )
    if rows:
        session.execute(LoggedModelMetric.__table__.insert(), rows)


def _optional_str(value: Any, name: str, max_length: int) -> Optional[str]:
    if value is None or value == "":
        return None
    return v.require_str(value, name, max_length=max_length)


# -- bulk loading ------------------------------------------------------------------
@dataclass
class LoggedModelData:
    params: list = field(default_factory=list)  # (key, value)
    tags: list = field(default_factory=list)  # (key, value)
    metrics: list = field(default_factory=list)  # LoggedModelMetric rows


def load_model_data(session: Session, model_pks: Sequence[int]) -> dict[int, LoggedModelData]:
    """Params, tags and metrics of many models in three queries."""
    data = {pk: LoggedModelData() for pk in model_pks}
    ids = list(data)
    for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
        chunk = ids[start : start + 900]
        for pk, key, value in session.execute(
            select(LoggedModelParam.model_pk, LoggedModelParam.key, LoggedModelParam.value)
            .where(LoggedModelParam.model_pk.in_(chunk))
            .order_by(LoggedModelParam.key)
        ):
            data[pk].params.append((key, value))
        for pk, key, value in session.execute(
            select(LoggedModelTag.model_pk, LoggedModelTag.key, LoggedModelTag.value)
            .where(LoggedModelTag.model_pk.in_(chunk))
            .order_by(LoggedModelTag.key)
        ):
            data[pk].tags.append((key, value))
        for row in session.scalars(
            select(LoggedModelMetric)
            .where(LoggedModelMetric.model_pk.in_(chunk))
            .order_by(LoggedModelMetric.key, LoggedModelMetric.timestamp, LoggedModelMetric.step, LoggedModelMetric.id)
        ):
            data[row.model_pk].metrics.append(row)
    return data


# -- search ------------------------------------------------------------------------
_ENTITIES = {
    "metric": sf.METRIC, "metrics": sf.METRIC,
    "param": sf.PARAM, "params": sf.PARAM,
    "tag": sf.TAG, "tags": sf.TAG,
    "attribute": sf.ATTRIBUTE, "attributes": sf.ATTRIBUTE, "attr": sf.ATTRIBUTE,
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


class _LoggedModelGrammar(sf._Grammar):
    """The logged-model filter on top of the shared parser (same tokens, quoting and errors)."""

    entities = _ENTITIES
    what = "logged model filter"

    def resolve(self, sc, kind, key, start, *, for_order=False):
        kind = kind or sf.ATTRIBUTE
        if kind == sf.ATTRIBUTE and key not in _NUMERIC_ATTRIBUTES and key not in _STRING_ATTRIBUTES:
            valid = ", ".join(sorted(set(_NUMERIC_ATTRIBUTES) | set(_STRING_ATTRIBUTES)))
            raise sc.error(f"invalid attribute key {key!r}; valid attribute keys are {valid}", start)
        return kind, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        name = key if kind == sf.ATTRIBUTE else f"{kind}s.{key}"
        if kind == sf.METRIC or (kind == sf.ATTRIBUTE and key in _NUMERIC_ATTRIBUTES):
            if op not in sf.NUMERIC_OPS:
                raise sc.error(f"invalid comparator {op!r} for {name!r}; use one of = != < <= > >=", start)
            if vkind != "number":
                raise sc.error(f"expected a number for {name!r}, found {sc.token_at(vstart)}", vstart)
            value, _is_int = sf._number(sc, raw, vstart)
            return float(value) if kind == sf.METRIC else value
        if op in sf.NULL_OPS:
            if kind == sf.ATTRIBUTE:
                raise sc.error(f"IS NULL / IS NOT NULL is only supported for params and tags, not for {name!r}", start)
            return None
        if op in sf.LIST_OPS:
            if kind != sf.ATTRIBUTE:
                raise sc.error(f"{op} is only supported for attributes, not for {name!r}", start)
            if vkind != "list":
                raise sc.error(f"expected a ('list', 'of', 'strings') after {op}, found {sc.token_at(vstart)}", vstart)
            return raw
        if op not in sf.STRING_OPS:
            raise sc.error(f"invalid comparator {op!r} for {name!r}; use one of = != LIKE ILIKE", start)
        if vkind != "string":
            raise sc.error(f"expected a quoted string for {name!r}, found {sc.token_at(vstart)}", vstart)
        return raw


_GRAMMAR = _LoggedModelGrammar()


def parse_filter(filter_string: Optional[str]) -> Optional[sf.Node]:
    return sf._parse(filter_string or None, _GRAMMAR)


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
        ds_name = _optional_str(item.get("dataset_name"), "dataset_name", 500)
        ds_digest = _optional_str(item.get("dataset_digest"), "dataset_digest", 64)
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
            v.require_str(d["dataset_name"], "dataset_name", 500), _optional_str(d.get("dataset_digest"), "dataset_digest", 64)
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
    if isinstance(value, str) and value.upper().startswith(_STATUS_PREFIX):
        return value[len(_STATUS_PREFIX):].upper()
    return value


def _comparison(datasets: Sequence[_DatasetFilter]):
    def leaf(c: sf.Comparison, d: _Dialect):
        if c.kind == sf.METRIC:
            conds = [LoggedModelMetric.model_pk == LoggedModel.id, LoggedModelMetric.key == c.key,
                     _numeric(LoggedModelMetric.value, c.op, c.value)]
            if datasets:
                conds.append(_dataset_condition(datasets))
            return exists(select(literal(1)).where(*conds))
        if c.kind in (sf.PARAM, sf.TAG):
            entity = LoggedModelParam if c.kind == sf.PARAM else LoggedModelTag
            has_key = [entity.model_pk == LoggedModel.id, entity.key == c.key]
            if c.op == "IS NULL":
                return ~exists(select(literal(1)).where(*has_key))
            if c.op == "IS NOT NULL":
                return exists(select(literal(1)).where(*has_key))
            return exists(select(literal(1)).where(*has_key, d.compare_string(entity.value, c.op, c.value)))
        if c.key in _NUMERIC_ATTRIBUTES:
            return _numeric(_NUMERIC_ATTRIBUTES[c.key], c.op, c.value)
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


def _order_atoms(order: list[_Order], d: _Dialect) -> list[_Atom]:
    atoms: list[_Atom] = []
    has_creation = False
    for ob in order:
        if ob.field.startswith("metrics."):
            atoms.append(_Atom(_latest_metric(ob), ob.ascending, True, float))
        elif ob.field in _NUMERIC_ATTRIBUTES:
            column = _NUMERIC_ATTRIBUTES[ob.field]
            has_creation = has_creation or column is LoggedModel.creation_time
            atoms.append(_Atom(column, ob.ascending, False, int))
        else:
            column = _STRING_ATTRIBUTES[ob.field]
            nullable = bool(column.property.columns[0].nullable)
            atoms.append(_Atom(column if ob.field == "model_id" else d.sort_string(column), ob.ascending, nullable, str))
            if ob.field == "model_id":
                return atoms  # unique: nothing after it can matter
    if not has_creation:
        atoms.append(_Atom(LoggedModel.creation_time, False, False, int))
    atoms.append(_Atom(LoggedModel.model_id, True, False, str))
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
    d = _Dialect(session, LoggedModel)
    atoms = _order_atoms(order, d)
    fingerprint = _fingerprint("logged_models", project_id, pks, node, order, ds_filters)
    cursor = decode_page_token(v.require_str(page_token, "page_token"), fingerprint, atoms) if page_token else None
    if not pks:
        return [], None
    stmt = select(LoggedModel, *[a.expr.label(f"sort_{i}") for i, a in enumerate(atoms)]).where(
        LoggedModel.project_id == project_id,
        LoggedModel.experiment_id.in_(pks),
        LoggedModel.lifecycle_stage == ACTIVE,
    )
    if node is not None:
        stmt = stmt.where(_compile(node, d, _comparison(ds_filters)))
    has_metric_filter = node is not None and any(c.kind == sf.METRIC for c in sf.comparisons(node))
    if ds_filters and not has_metric_filter:
        # Datasets alone select the models that have any metric on one of them.
        stmt = stmt.where(exists(select(literal(1)).where(
            LoggedModelMetric.model_pk == LoggedModel.id, _dataset_condition(ds_filters)
        )))
    if cursor is not None:
        stmt = stmt.where(_keyset_condition(atoms, cursor))
    rows = session.execute(stmt.order_by(*[a.order_clause() for a in atoms]).limit(limit + 1)).all()
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        token = encode_page_token(fingerprint, [_token_value(val) for val in tuple(rows[-1])[1:]])
    return [row[0] for row in rows], token
