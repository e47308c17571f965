"""Request schemas of the webhooks API (MLflow's ``webhooks.proto``)."""
from __future__ import annotations

from marshmallow import Schema, fields

from .common import enum, int64, list_of, string

ENTITIES = ("REGISTERED_MODEL", "MODEL_VERSION", "MODEL_VERSION_TAG", "MODEL_VERSION_ALIAS", "PROMPT",
            "PROMPT_VERSION", "PROMPT_TAG", "PROMPT_VERSION_TAG", "PROMPT_ALIAS", "BUDGET_POLICY")
ACTIONS = ("CREATED", "UPDATED", "DELETED", "SET", "EXCEEDED")
STATUSES = ("ACTIVE", "DISABLED")


class WebhookEventSchema(Schema):
    entity = enum(ENTITIES)
    action = enum(ACTIONS)


class CreateWebhook(Schema):
    name = string(required=True)
    url = string(required=True)
    events = list_of(fields.Nested(WebhookEventSchema), required=True)
    description = string()
    secret = string()
    status = enum(STATUSES)


class UpdateWebhook(Schema):
    name = string()
    description = string()
    url = string()
    events = list_of(fields.Nested(WebhookEventSchema))
    secret = string()
    status = enum(STATUSES)


class ListWebhooks(Schema):
    max_results = int64()
    page_token = string()


class TestWebhook(Schema):
    event = fields.Nested(WebhookEventSchema)
