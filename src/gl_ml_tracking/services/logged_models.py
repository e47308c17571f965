"""MLflow 3 logged models: create, read, finalize, delete, tags, params, metrics
linked to them, and runs that output them. Search: :mod:`.logged_model_search`.

A logged model belongs to one experiment of the project; its public id is
``m-<32 hex>`` (MLflow's form) and its files live in the package registry under
``artifact_location`` (see ``services/artifacts.py`` for the scheme). Deleting is
soft (``lifecycle_stage``), as in MLflow: ``get`` then answers 404 unless
``allow_deleted``, and search skips the model.
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import (
    ACTIVE,
    DELETED,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    Run,
    RunOutput,
)
from . import validation as v
from .common import dialect_insert, now_ms
from .logged_model_values import optional_str, parse_status, validate_name, validated_params, validated_tags
from .model_version_files import share_files_of_logged_model
from .lookups import get_active_experiment, get_active_run, get_logged_model, get_run
from .names import random_run_name

MODEL_VERSIONS_TAG = "mlflow.modelVersions"


def artifact_location(experiment_iid: int, model_id: str) -> str:
    """Where the model's files go; the artifacts proxy owns the scheme."""
    from .artifacts import logged_model_artifact_location

    return logged_model_artifact_location(experiment_iid, model_id)


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
    name = validate_name(name) or random_run_name()
    if model_type is not None and (not isinstance(model_type, str) or len(model_type) > 500):
        raise InvalidParameter("Invalid value for parameter 'model_type': expected a string of at most 500 characters.")
    run_uuid = None
    if source_run_id:
        # As MLflow, a run that is not here is stored as given; every lookup through it is
        # scoped to this project, so it never reaches another project's run.
        run_uuid = v.require_str(source_run_id, "source_run_id")
        if len(run_uuid) > 32:
            raise InvalidParameter(v.exceeds_maximum_length("source_run_id", 32))
        try:
            run_uuid = get_run(session, project_id, source_run_id).run_uuid
        except (ResourceDoesNotExist, InvalidParameter):
            pass
    param_map, tag_map = validated_params(params), validated_tags(tags)
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
    _write_params(session, model, validated_params(params))
    model.last_update_time = now_ms()
    return model


def finalize(session: Session, project_id: str, model_id: Any, status: Any) -> LoggedModel:
    model = get_logged_model(session, project_id, model_id)
    if status is None or status == "":
        raise InvalidParameter("Missing value for required parameter 'status'.")
    model.status = parse_status(status)
    model.last_update_time = now_ms()
    if model.status == "READY":
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
    _upsert_tags(session, model, validated_tags(tags))
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
    # An integer version, as MLflow's server writes it (its client appends strings).
    entry = {"name": name, "version": int(version)}
    if not any(isinstance(link, dict) and link.get("name") == name and str(link.get("version")) == str(version)
               for link in links):
        links.append(entry)
    _upsert_tags(session, model, {MODEL_VERSIONS_TAG: json.dumps(links)})


# -- runs and models -------------------------------------------------------------
def log_outputs(session: Session, project_id: str, run_id: Any, models: Any) -> None:
    """``runs/outputs``: the run produced these models (at a step)."""
    run = get_active_run(session, project_id, run_id)
    rows = {}
    for item in models or []:  # {model_id: str, step: int} objects, as the LogOutputs schema loaded them
        model = get_logged_model(session, project_id, item.get("model_id"))
        rows[model.id] = item.get("step") or 0
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
    model id are ignored here. ``metrics`` are as the request schema loaded them and
    ``metric_writes.parse_metric`` accepted them (a value and a timestamp each)."""
    rows = []
    models: dict[str, LoggedModel] = {}
    for raw in metrics:
        if not raw.get("model_id"):
            continue
        model_id = v.require_str(raw["model_id"], "model_id", max_length=64)
        if model_id not in models:
            models[model_id] = get_logged_model(session, run.project_id, model_id)
        key = v.validate_key("Metric", raw.get("key"))
        value = raw["value"]
        rows.append(
            {
                "model_pk": models[model_id].id,
                "key": key,
                "value": None if math.isnan(value) else value,
                "timestamp": raw["timestamp"],
                "step": raw.get("step") or 0,
                "run_uuid": run.run_uuid,
                "dataset_name": optional_str(raw.get("dataset_name"), "dataset_name", 500),
                "dataset_digest": optional_str(raw.get("dataset_digest"), "dataset_digest", 64),
            }
        )
    if rows:
        session.execute(LoggedModelMetric.__table__.insert(), rows)


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
