"""Webhook events of the model and prompt registry: what MLflow sends, written to
the outbox in the transaction of the change that caused them.

The registry services call one function per event (``registered_model_created``
...). Each finds the project's active webhooks subscribed to the event and writes
one ``WebhookDelivery`` per webhook holding the exact JSON body MLflow's server
sends for it (``{"entity", "action", "timestamp", "data"}``, ``json.dumps``'
default spacing, the payload's keys in MLflow's order). Nothing is sent here: a
deliverer sends the rows after the commit (``webhook_delivery``); the
``event_recorded`` signal, sent after the commit, wakes the in-process one.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from blinker import Namespace
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ..models import RegisteredModelTag, Webhook, WebhookDelivery, WebhookEvent
from ..models.webhooks import PENDING
from ..signals import send_after_commit
from .common import now_ms

# The events MLflow 3 defines, entity -> actions (budget_policy comes from MLflow's AI
# gateway: it can be subscribed to, as in MLflow, and is never sent here).
EVENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "registered_model": ("created",),
    "model_version": ("created",),
    "model_version_tag": ("set", "deleted"),
    "model_version_alias": ("created", "deleted"),
    "prompt": ("created",),
    "prompt_version": ("created",),
    "prompt_tag": ("set", "deleted"),
    "prompt_version_tag": ("set", "deleted"),
    "prompt_alias": ("created", "deleted"),
    "budget_policy": ("exceeded",),
}
ALL_ACTIONS = ("created", "updated", "deleted", "set", "exceeded")

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
PROMPT_TEXT_TAG = "mlflow.prompt.text"
PROMPT_TYPE_TAG = "_mlflow_prompt_type"

event_recorded = Namespace().signal("gl-ml-tracking.webhook-event-recorded")


def event_name(entity: str, action: str) -> str:
    return f"{entity}.{action}"


def body_json(entity: str, action: str, data: Mapping[str, Any], when: Optional[datetime] = None) -> str:
    """The request body MLflow's server sends for an event (signed as is)."""
    stamp = (when or datetime.now(timezone.utc)).isoformat()
    return json.dumps({"entity": entity, "action": action, "timestamp": stamp, "data": dict(data)})


def record(session: Session, project_id: str, entity: str, action: str, data: Mapping[str, Any]) -> int:
    """Write the event to the outbox of every active webhook of the project subscribed
    to it; returns how many deliveries were written."""
    targets = session.scalars(
        select(Webhook.id).join(WebhookEvent, WebhookEvent.webhook_pk == Webhook.id).where(
            Webhook.project_id == str(project_id), Webhook.deleted_time.is_(None), Webhook.status == "ACTIVE",
            WebhookEvent.entity == entity, WebhookEvent.action == action)
    ).all()
    if not targets:
        return 0
    body, now = body_json(entity, action, data), now_ms()
    session.execute(insert(WebhookDelivery), [
        {"delivery_id": str(uuid.uuid4()), "project_id": str(project_id), "webhook_pk": pk, "entity": entity,
         "action": action, "body": body, "status": PENDING, "attempts": 0, "next_attempt_time": now,
         "creation_time": now}
        for pk in targets
    ])
    send_after_commit(session, event_recorded, project_id=str(project_id))
    return len(targets)


# -- the registry's events, with MLflow's payloads ------------------------------------------
def _is_prompt_tags(tags: Mapping[str, Optional[str]]) -> bool:
    return str(tags.get(IS_PROMPT_TAG) or "false").lower() == "true"


def _model_is_prompt(session: Session, model: Any) -> bool:
    value = session.scalar(select(RegisteredModelTag.value).where(
        RegisteredModelTag.registered_model_id == model.id, RegisteredModelTag.key == IS_PROMPT_TAG))
    return str(value or "false").lower() == "true"


def _text(value: Optional[str]) -> str:
    return value if value is not None else ""


def _tags(tags: Mapping[str, Optional[str]], drop: tuple = ()) -> dict:
    return {k: _text(v) for k, v in tags.items() if k not in drop}


def registered_model_created(session: Session, project_id: str, name: str, tags: Mapping[str, Optional[str]],
                             description: Optional[str]) -> None:
    if _is_prompt_tags(tags):
        record(session, project_id, "prompt", "created", {
            "name": name, "tags": _tags(tags, (IS_PROMPT_TAG, PROMPT_TYPE_TAG)), "description": _text(description)})
    else:
        record(session, project_id, "registered_model", "created", {
            "name": name, "tags": _tags(tags), "description": _text(description)})


def model_version_created(session: Session, project_id: str, mv: Any, tags: Mapping[str, Optional[str]],
                          description: Optional[str]) -> None:
    name, version = mv.registered_model.name, str(mv.version)
    if _is_prompt_tags(tags):
        record(session, project_id, "prompt_version", "created", {
            "name": name, "version": version, "template": tags.get(PROMPT_TEXT_TAG),
            "tags": _tags(tags, (PROMPT_TEXT_TAG, IS_PROMPT_TAG, PROMPT_TYPE_TAG)), "description": description or None})
    else:
        record(session, project_id, "model_version", "created", {
            "name": name, "version": version, "source": _text(mv.source), "run_id": mv.run_uuid or None,
            "tags": _tags(tags), "description": description or None})


def model_version_tag_set(session: Session, project_id: str, mv: Any, key: str, value: Optional[str]) -> None:
    entity = "prompt_version_tag" if _model_is_prompt(session, mv.registered_model) else "model_version_tag"
    record(session, project_id, entity, "set", {
        "name": mv.registered_model.name, "version": str(mv.version), "key": key, "value": _text(value)})


def model_version_tag_deleted(session: Session, project_id: str, mv: Any, key: str) -> None:
    entity = "prompt_version_tag" if _model_is_prompt(session, mv.registered_model) else "model_version_tag"
    record(session, project_id, entity, "deleted", {
        "name": mv.registered_model.name, "version": str(mv.version), "key": key})


def alias_created(session: Session, project_id: str, model: Any, alias: str, version: Any) -> None:
    entity = "prompt_alias" if _model_is_prompt(session, model) else "model_version_alias"
    record(session, project_id, entity, "created", {"name": model.name, "alias": alias, "version": str(version)})


def alias_deleted(session: Session, project_id: str, model: Any, alias: str) -> None:
    entity = "prompt_alias" if _model_is_prompt(session, model) else "model_version_alias"
    record(session, project_id, entity, "deleted", {"name": model.name, "alias": alias})


def registered_model_tag_set(session: Session, project_id: str, model: Any, key: str, value: Optional[str]) -> None:
    """Only prompts have a tag event (MLflow sends none for a registered model's tags)."""
    if _model_is_prompt(session, model):
        record(session, project_id, "prompt_tag", "set", {"name": model.name, "key": key, "value": _text(value)})


def registered_model_tag_deleted(session: Session, project_id: str, model: Any, key: str) -> None:
    if _model_is_prompt(session, model):
        record(session, project_id, "prompt_tag", "deleted", {"name": model.name, "key": key})
