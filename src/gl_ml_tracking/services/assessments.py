"""Assessments of traces: feedback and expectations (log, get, update, override, delete).

An assessment keeps the client's ``feedback`` or ``expectation`` message as it came
(JSON), so values of any shape (numbers, text, lists, serialized expectations) go back
unchanged. Logging one with ``overrides`` marks the overridden one invalid; deleting the
overriding one makes it valid again, as MLflow's store does.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import ACTIVE, Assessment, Experiment, Trace
from . import trace_values as tv
from .common import now_ms

SOURCE_TYPES = ("SOURCE_TYPE_UNSPECIFIED", "HUMAN", "LLM_JUDGE", "CODE")
KINDS = ("feedback", "expectation", "issue")  # issue: a reference to an issue (mlflow.log_issue)


def _trace_pk(session: Session, project_id: str, trace_id: Any) -> int:
    trace_id = tv.validate_trace_id(trace_id)
    pk = session.execute(
        select(Trace.id).join(Experiment, Experiment.id == Trace.experiment_id)
        .where(Trace.project_id == project_id, Trace.trace_id == trace_id, Experiment.lifecycle_stage == ACTIVE)
    ).scalar_one_or_none()
    if pk is None:
        raise ResourceDoesNotExist(f"Trace with ID {trace_id} is not found.")
    return pk


def _kind_and_value(data: dict) -> tuple[str, str]:
    present = [k for k in KINDS if data.get(k) is not None]
    if len(present) != 1:
        raise InvalidParameter("An assessment must have exactly one of `feedback`, `expectation` or `issue`.")
    body = data[present[0]]
    if not isinstance(body, dict):
        raise InvalidParameter(f"Invalid `{present[0]}`: expected an object.")
    value = body.get("value")
    if present[0] == "expectation" and value is not None and not isinstance(value, (int, float, bool, str)):
        # MLflow 3.17.2 answers (and keeps) a structured expectation as JSON text, whichever way
        # it came: its clients and UI read ``serialized_value``.
        body = {"serialized_value": {"serialization_format": "JSON_FORMAT", "value": json.dumps(value)}}
    return present[0], json.dumps(body)


def _metadata(value: Any) -> Optional[str]:
    pairs = tv.string_map(value, "metadata")
    return json.dumps(pairs) if pairs else None


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 250:
        raise InvalidParameter("Missing or invalid value for required parameter 'assessment_name'.")
    return value


def create_for_trace(session: Session, project_id: str, trace_pk: int, trace_id: str, data: Any) -> Assessment:
    if not isinstance(data, dict):
        raise InvalidParameter("Missing value for required parameter 'assessment'.")
    kind, value = _kind_and_value(data)
    source = data.get("source") or {}
    if not isinstance(source, dict):
        raise InvalidParameter("Invalid `source`: expected an object.")
    source_type = source.get("source_type") or "SOURCE_TYPE_UNSPECIFIED"
    if isinstance(source_type, int) and 0 <= source_type < len(SOURCE_TYPES):
        source_type = SOURCE_TYPES[source_type]
    if source_type not in SOURCE_TYPES:
        raise InvalidParameter(f"Invalid assessment source type {source_type!r}.")
    now = now_ms()
    created = tv.timestamp_to_ms(data.get("create_time"), "create_time") or now
    overrides = data.get("overrides") or None
    if overrides is not None:
        old = _find(session, project_id, trace_pk, overrides)
        old.valid = False
    error = data.get("error")
    row = Assessment(
        project_id=project_id, assessment_id="a-" + uuid.uuid4().hex, trace_pk=trace_pk,
        name=_name(data.get("assessment_name")), kind=kind, value=value,
        error=json.dumps(error) if isinstance(error, dict) else None,
        rationale=data.get("rationale") if isinstance(data.get("rationale"), str) else None,
        source_type=source_type, source_id=str(source.get("source_id") or "")[:250] or None,
        span_id=str(data.get("span_id") or "")[:32] or None, metadata_json=_metadata(data.get("metadata")),
        overrides=overrides, valid=data.get("valid") is not False, create_time=created,
        last_update_time=tv.timestamp_to_ms(data.get("last_update_time"), "last_update_time") or created,
    )
    session.add(row)
    session.flush()
    return row


def create(session: Session, project_id: str, data: Any) -> tuple[Assessment, str]:
    if not isinstance(data, dict):
        raise InvalidParameter("Missing value for required parameter 'assessment'.")
    trace_id = data.get("trace_id")
    return create_for_trace(session, project_id, _trace_pk(session, project_id, trace_id), trace_id, data), trace_id


def _find(session: Session, project_id: str, trace_pk: int, assessment_id: Any) -> Assessment:
    row = session.scalars(select(Assessment).where(
        Assessment.project_id == project_id, Assessment.trace_pk == trace_pk, Assessment.assessment_id == str(assessment_id)
    )).one_or_none()
    if row is None:
        raise ResourceDoesNotExist(f"Assessment with ID '{assessment_id}' not found.")
    return row


def get(session: Session, project_id: str, trace_id: Any, assessment_id: Any) -> Assessment:
    return _find(session, project_id, _trace_pk(session, project_id, trace_id), assessment_id)


def _mask(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, dict):
        value = value.get("paths") or []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        raise InvalidParameter("Invalid `update_mask`.")
    return {str(p).strip().replace("_", "").lower() for p in value if str(p).strip()}


def update_one(session: Session, project_id: str, trace_id: Any, assessment_id: Any, data: Any, mask: Any) -> Assessment:
    row = get(session, project_id, trace_id, assessment_id)
    data = data if isinstance(data, dict) else {}
    paths = _mask(mask) or {k.replace("_", "").lower() for k, v in data.items() if v is not None}
    if "feedback" in paths and "expectation" in paths:
        raise InvalidParameter("Cannot specify both `expectation` and `feedback` parameters.")
    for kind in KINDS:
        if kind in paths and data.get(kind) is not None:
            if row.kind != kind:
                other = "Feedback" if row.kind == "feedback" else "Expectation"
                raise InvalidParameter(f"Cannot update {kind} value on an {other} assessment.")
            row.value = _kind_and_value({kind: data[kind]})[1]
    if "assessmentname" in paths and data.get("assessment_name") is not None:
        row.name = _name(data["assessment_name"])
    if "rationale" in paths and isinstance(data.get("rationale"), str):
        row.rationale = data["rationale"]
    if "metadata" in paths:
        merged = json.loads(row.metadata_json) if row.metadata_json else {}
        merged.update(tv.string_map(data.get("metadata"), "metadata"))
        row.metadata_json = json.dumps(merged) if merged else None
    row.last_update_time = now_ms()
    return row


def delete_one(session: Session, project_id: str, trace_id: Any, assessment_id: Any) -> None:
    trace_pk = _trace_pk(session, project_id, trace_id)
    row = session.scalars(select(Assessment).where(
        Assessment.project_id == project_id, Assessment.trace_pk == trace_pk, Assessment.assessment_id == str(assessment_id)
    )).one_or_none()
    if row is None:
        return  # MLflow's store: deleting a missing assessment is a no-op
    if row.overrides:
        session.execute(update(Assessment).where(
            Assessment.project_id == project_id, Assessment.assessment_id == row.overrides
        ).values(valid=True))
    session.delete(row)
