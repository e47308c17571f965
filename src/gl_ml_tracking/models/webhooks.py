"""Webhooks of a project's model registry, and their durable delivery outbox.

A registry change writes one ``WebhookDelivery`` row per subscribed webhook in the
same transaction as the change (so an event is never lost nor sent for a change
that was rolled back); deliverers claim due rows, send them, and record each try
as a ``WebhookDeliveryAttempt``.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import TABLE_PREFIX, Base, BigId

# Delivery states.
PENDING = "PENDING"  # waiting for its next attempt (next_attempt_time)
DELIVERING = "DELIVERING"  # claimed by a deliverer until lease_until
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"  # gave up: a permanent refusal or the last attempt failed


class Webhook(Base):
    __tablename__ = TABLE_PREFIX + "webhooks"
    __table_args__ = (Index("ix_glml_webhooks_project_created", "project_id", "creation_time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)  # public uuid
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[Optional[str]] = mapped_column(Text)
    secret: Mapped[Optional[str]] = mapped_column(Text)  # never returned by the API
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="ACTIVE")
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    deleted_time: Mapped[Optional[int]] = mapped_column(BigInteger)  # soft delete keeps the history


class WebhookEvent(Base):
    """An event a webhook subscribes to, e.g. ``model_version`` / ``created``."""

    __tablename__ = TABLE_PREFIX + "webhook_events"
    __table_args__ = (Index("ix_glml_webhook_events_event", "entity", "action"),)

    webhook_pk: Mapped[int] = mapped_column(BigId, ForeignKey(Webhook.id, ondelete="CASCADE"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(16), primary_key=True)


class WebhookDelivery(Base):
    """One event to send to one webhook (the outbox)."""

    __tablename__ = TABLE_PREFIX + "webhook_deliveries"
    __table_args__ = (
        Index("ix_glml_webhook_deliveries_due", "status", "next_attempt_time"),
        Index("ix_glml_webhook_deliveries_webhook", "webhook_pk", "id"),
        Index("ix_glml_webhook_deliveries_project", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)  # X-MLflow-Delivery-Id
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    webhook_pk: Mapped[int] = mapped_column(BigId, ForeignKey(Webhook.id, ondelete="CASCADE"), nullable=False)
    entity: Mapped[str] = mapped_column(String(32), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)  # the exact JSON sent (and signed)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    lease_token: Mapped[Optional[str]] = mapped_column(String(36))
    lease_until: Mapped[Optional[int]] = mapped_column(BigInteger)
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    completion_time: Mapped[Optional[int]] = mapped_column(BigInteger)
    last_status_code: Mapped[Optional[int]] = mapped_column(Integer)
    last_error: Mapped[Optional[str]] = mapped_column(Text)


class WebhookDeliveryAttempt(Base):
    __tablename__ = TABLE_PREFIX + "webhook_delivery_attempts"
    __table_args__ = (Index("ix_glml_webhook_delivery_attempts_delivery", "delivery_pk", "attempt"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Named: the naming convention's name would pass PostgreSQL's 63 characters.
    delivery_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey(WebhookDelivery.id, ondelete="CASCADE", name="fk_glml_webhook_delivery_attempts_delivery"),
        nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    start_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    status_code: Mapped[Optional[int]] = mapped_column(Integer)
    error: Mapped[Optional[str]] = mapped_column(Text)
    response_body: Mapped[Optional[str]] = mapped_column(Text)  # the first KiB
