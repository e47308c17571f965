"""Datasets and models a run used (``runs/log-inputs``): each dataset is stored once per
experiment, and linked to the run with the input's tags; each model id is stored once per
run, as given (MLflow does not check it either). (The models a run produced,
``runs/outputs``, are the logged models' business: ``logged_models.log_outputs``.)"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Dataset, RunInput, RunModelInput
from . import validation as v
from .common import dialect_insert
from .lookups import get_active_run


MAX_MODEL_ID_LENGTH = 64


def log_inputs(session: Session, project_id: str, run_id: Any, datasets: Any, models: Any = None) -> None:
    run = get_active_run(session, project_id, run_id)
    _log_model_inputs(session, run.id, models)
    if datasets is None:
        return
    if not isinstance(datasets, list):
        raise InvalidParameter("'datasets' must be a list.")
    insert = dialect_insert(session)
    for item in datasets:
        if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
            raise InvalidParameter("Each dataset input must carry a 'dataset' object.")
        ds = item["dataset"]
        name = v.require_str(ds.get("name"), "dataset.name", max_length=500)
        digest = v.require_str(ds.get("digest"), "dataset.digest", max_length=64)
        session.execute(
            insert(Dataset)
            .values(
                experiment_id=run.experiment_id,
                name=name,
                digest=digest,
                source_type=ds.get("source_type"),
                source=ds.get("source"),
                schema=ds.get("schema"),
                profile=ds.get("profile"),
            )
            .on_conflict_do_nothing(index_elements=[Dataset.experiment_id, Dataset.name, Dataset.digest])
        )
        dataset_pk = session.execute(
            select(Dataset.id).where(
                Dataset.experiment_id == run.experiment_id, Dataset.name == name, Dataset.digest == digest
            )
        ).scalar_one()
        input_tags = item.get("tags") or []
        tags_json = json.dumps([{"key": t.get("key"), "value": t.get("value")} for t in input_tags if isinstance(t, dict)])
        session.execute(
            insert(RunInput)
            .values(run_id=run.id, dataset_id=dataset_pk, tags_json=tags_json)
            .on_conflict_do_update(index_elements=[RunInput.run_id, RunInput.dataset_id], set_={"tags_json": tags_json})
        )


def _log_model_inputs(session: Session, run_pk: int, models: Any) -> None:
    if not models:
        return
    if not isinstance(models, list):
        raise InvalidParameter("'models' must be a list.")
    ids = []
    for item in models:  # {model_id: str} objects, as the LogInputs schema loaded them
        model_id = item.get("model_id") if isinstance(item, dict) else None
        model_id = "" if model_id is None else model_id
        if len(model_id) > MAX_MODEL_ID_LENGTH:
            raise InvalidParameter(v.exceeds_maximum_length("model_id", MAX_MODEL_ID_LENGTH))
        if "\x00" in model_id:
            raise InvalidParameter("'model_id' must not contain NUL characters.")
        ids.append(model_id)
    insert = dialect_insert(session)
    for model_id in dict.fromkeys(ids):
        session.execute(insert(RunModelInput).values(run_id=run_pk, model_id=model_id)
                        .on_conflict_do_nothing(index_elements=[RunModelInput.run_id, RunModelInput.model_id]))
