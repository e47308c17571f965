"""Traces in MLflow's JSON: TraceInfoV3, the v2 TraceInfo, Assessment. (The full trace
with its spans is streamed by ``services/span_payloads.trace_chunks``: the stored spans are
JSON already.)"""
from __future__ import annotations

import json
from typing import Any

from ..services import trace_values as tv
from ..services.trace_files import trace_artifact_location
from ..services.traces import TraceData


def assessment_json(a: Any, trace_id: str) -> dict:
    out: dict = {
        "assessment_id": a.assessment_id,
        "assessment_name": a.name,
        "trace_id": trace_id,
        "source": {"source_type": a.source_type or "SOURCE_TYPE_UNSPECIFIED"},
        "create_time": tv.ms_to_timestamp(a.create_time),
        "last_update_time": tv.ms_to_timestamp(a.last_update_time),
        a.kind: json.loads(a.value) if a.value else {},
        "valid": bool(a.valid),
    }
    if a.source_id:
        out["source"]["source_id"] = a.source_id
    for name, value in (("span_id", a.span_id), ("rationale", a.rationale), ("overrides", a.overrides)):
        if value:
            out[name] = value
    if a.error:
        out["error"] = json.loads(a.error)
    if a.metadata_json:
        out["metadata"] = json.loads(a.metadata_json)
    return out


def trace_info_json(d: TraceData) -> dict:
    t = d.trace
    tags = dict(d.tags)
    if t.name is not None:
        tags[tv.TRACE_NAME_TAG] = t.name
    # As MLflow's server: TRACKING_STORE once spans arrived over OTLP. Without it the
    # client uploads (and later reads) traces.json under the artifact location instead.
    tags.pop(tv.SPANS_LOCATION_TAG, None)
    if d.spans_stored:
        tags[tv.SPANS_LOCATION_TAG] = tv.TRACKING_STORE
    tags[tv.ARTIFACT_LOCATION_TAG] = trace_artifact_location(d.experiment_iid, t.trace_id)
    info: dict = {
        "trace_id": t.trace_id,
        "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": str(d.experiment_iid)}},
        "request_time": tv.ms_to_timestamp(t.request_time),
        "state": t.state,
        "trace_metadata": {k: v if v is not None else "" for k, v in d.metadata.items()},
        "tags": {k: v if v is not None else "" for k, v in tags.items()},
        "assessments": [assessment_json(a, t.trace_id) for a in d.assessments],
    }
    if t.execution_duration is not None:
        info["execution_duration"] = tv.ms_to_duration(t.execution_duration)
    for name, value in (("client_request_id", t.client_request_id), ("request_preview", t.request_preview),
                        ("response_preview", t.response_preview)):
        if value is not None:
            info[name] = value
    return info


def trace_info_v2_json(d: TraceData) -> dict:
    t = d.trace
    status = {"STATE_UNSPECIFIED": "TRACE_STATUS_UNSPECIFIED"}.get(t.state, t.state)
    info = trace_info_json(d)
    return {
        "request_id": t.trace_id,
        "experiment_id": str(d.experiment_iid),
        "timestamp_ms": t.request_time,
        "execution_time_ms": t.execution_duration or 0,
        "status": status,
        "request_metadata": [{"key": k, "value": v} for k, v in info["trace_metadata"].items()],
        "tags": [{"key": k, "value": v} for k, v in info["tags"].items()],
    }
