"""Turn our rows into the JSON shapes of MLflow's REST API (proto3 JSON:
int64 as numbers, enums as names, NaN/inf as strings)."""
from __future__ import annotations

import json
import math
from typing import Any, Iterable, Optional

from ..models import Experiment, Run
from ..services.run_data import RunData
from ..services.uris import experiment_artifact_location, run_artifact_uri


def float_out(value: Optional[float], is_nan: bool = False) -> Any:
    if is_nan or value is None:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


def experiment_json(experiment: Experiment) -> dict:
    return {
        "experiment_id": str(experiment.iid),
        "name": experiment.name,
        "artifact_location": experiment_artifact_location(experiment.iid),
        "lifecycle_stage": experiment.lifecycle_stage,
        "last_update_time": experiment.last_update_time,
        "creation_time": experiment.creation_time,
        "tags": [{"key": t.key, "value": t.value} for t in experiment.tags],
    }


def run_info_json(run: Run) -> dict:
    info = {
        "run_id": run.run_uuid,
        "run_uuid": run.run_uuid,
        "run_name": run.name or "",
        "experiment_id": str(run.experiment.iid),
        "user_id": run.user_id or "",
        "status": run.status,
        "start_time": run.start_time or 0,
        "artifact_uri": run_artifact_uri(run.experiment.iid, run.iid),
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_json(run: Run, data: RunData) -> dict:
    result: dict = {
        "info": run_info_json(run),
        "data": {
            "metrics": [
                {"key": k, "value": float_out(val, nan), "timestamp": ts, "step": step}
                for k, val, nan, ts, step in data.metrics
            ],
            "params": [{"key": k, "value": val} for k, val in data.params],
            "tags": [{"key": k, "value": val if val is not None else ""} for k, val in data.tags],
        },
        "inputs": {
            "dataset_inputs": [
                {
                    "tags": tags,
                    "dataset": {
                        k: val
                        for k, val in (
                            ("name", ds.name), ("digest", ds.digest), ("source_type", ds.source_type),
                            ("source", ds.source), ("schema", ds.schema), ("profile", ds.profile),
                        )
                        if val is not None
                    },
                }
                for ds, tags in data.inputs
            ],
            "model_inputs": [{"model_id": mid} for mid in data.model_inputs],
        },
        "outputs": {"model_outputs": [{"model_id": mid, "step": step} for mid, step in data.outputs]},
    }
    return result


def metric_point_json(key: str, row: Any, run_id: Optional[str] = None) -> dict:
    point = {"key": key, "value": float_out(row.value, row.is_nan), "timestamp": row.timestamp, "step": row.step}
    if run_id is not None:
        point["run_id"] = run_id
    return point


_NAN, _INF, _NEG_INF = '"NaN"', '"Infinity"', '"-Infinity"'


def metric_points_text(key: str, rows: Iterable[Any], run_id: Optional[str] = None) -> str:
    """``",".join(dumps(metric_point_json(key, row, run_id)) for row in rows)``, byte for
    byte, for rows of ``(id, step, timestamp, value, is_nan)`` (the history queries'
    columns), without a dict and an encoder pass per point: histories run to millions
    of points, and this was most of the cost of sending them."""
    head = '{"key":' + dumps(key) + ',"value":'
    tail = "}" if run_id is None else ',"run_id":' + dumps(run_id) + "}"
    parts = []
    for _id, step, timestamp, value, is_nan in rows:
        if is_nan or value is None:
            text = _NAN
        elif value == math.inf:
            text = _INF
        elif value == -math.inf:
            text = _NEG_INF
        else:
            text = repr(value)  # what json.dumps writes for a float (or an int)
        parts.append(f"{head}{text},\"timestamp\":{timestamp!r},\"step\":{step!r}{tail}")
    return ",".join(parts)
