"""Delivering the outbox: claim due deliveries, send them, record each attempt,
retry with exponential backoff; at least once.

Any number of deliverers (threads of several workers, the CLI, cron) may run at
once. A round claims a batch in one statement: ``UPDATE ... WHERE id IN (SELECT
... FOR UPDATE SKIP LOCKED) RETURNING`` on PostgreSQL (concurrent claimers skip
each other's rows), the same UPDATE on SQLite, whose writers take turns. A claim
is a lease (``lease_token``, ``lease_until``) that commits before anything is
sent; the result is written only if the lease is still ours. A deliverer that dies
mid-send leaves a lease that expires, and the delivery is sent again: a receiver
may see one delivery id twice, never zero times.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Webhook, WebhookDelivery, WebhookDeliveryAttempt
from ..models.webhooks import DELIVERING, FAILED, PENDING, SUCCEEDED
from ..signals import send_after_commit
from ..state import get_state
from . import webhook_http
from .common import now_ms
from .webhook_events import event_recorded

log = logging.getLogger("gl_ml_tracking.webhooks")


@dataclass
class Claimed:
    pk: int
    delivery_id: str
    body: str
    attempts: int
    url: str
    secret: Optional[str]
    webhook_active: bool


@dataclass
class RoundResult:
    claimed: int = 0
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0


def backoff_ms(attempt: int, base_s: float, max_s: float) -> int:
    """Wait after the ``attempt``-th failure: base, 2x base, 4x base ... up to max."""
    return int(min(base_s * (2 ** max(attempt - 1, 0)), max_s) * 1000)


def claim(session: Session, limit: int, lease_s: float) -> tuple[str, list[Claimed]]:
    """Take up to ``limit`` due deliveries (due: pending and its time has come, or
    claimed by someone whose lease ran out) and commit the claim."""
    now = now_ms()
    token = str(uuid.uuid4())
    due = (
        select(WebhookDelivery.id)
        .where(or_(and_(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_time <= now),
                   and_(WebhookDelivery.status == DELIVERING, WebhookDelivery.lease_until < now)))
        .order_by(WebhookDelivery.next_attempt_time, WebhookDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    taken = session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(due.scalar_subquery()))
        .values(status=DELIVERING, lease_token=token, lease_until=now + int(lease_s * 1000))
        .returning(WebhookDelivery.id).execution_options(synchronize_session=False)
    ).scalars().all()
    rows = []
    if taken:
        rows = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.delivery_id, WebhookDelivery.body, WebhookDelivery.attempts,
                   Webhook.url, Webhook.secret, Webhook.status, Webhook.deleted_time)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_pk)
            .where(WebhookDelivery.id.in_(taken)).order_by(WebhookDelivery.id)
        ).all()
    session.commit()
    return token, [Claimed(r[0], r[1], r[2], r[3], r[4], r[5], r[6] == "ACTIVE" and r[7] is None) for r in rows]


def finish(session: Session, item: Claimed, token: str, outcome: webhook_http.Outcome, started: int,
            config: Any) -> str:
    attempt = item.attempts + 1
    if outcome.ok:
        state = SUCCEEDED
    elif outcome.retryable and attempt < config.webhooks_max_attempts:
        state = PENDING
    else:
        state = FAILED
    now = now_ms()
    values: dict = {"status": state, "attempts": attempt, "lease_token": None, "lease_until": None,
                    "last_status_code": outcome.status_code, "last_error": outcome.error}
    if state == PENDING:
        values["next_attempt_time"] = now + backoff_ms(attempt, config.webhooks_backoff, config.webhooks_backoff_max)
    else:
        values["completion_time"] = now
    mine = session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == item.pk, WebhookDelivery.lease_token == token)
        .values(**values).execution_options(synchronize_session=False)
    ).rowcount
    if mine:
        session.add(WebhookDeliveryAttempt(delivery_pk=item.pk, attempt=attempt, start_time=started,
                                           duration_ms=outcome.duration_ms, status_code=outcome.status_code,
                                           error=outcome.error, response_body=outcome.response_body))
    session.commit()
    return state if mine else "LOST"


def _cancel(session: Session, item: Claimed, token: str) -> None:
    """The webhook was disabled or deleted since the event: nothing is sent."""
    session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == item.pk, WebhookDelivery.lease_token == token)
        .values(status=FAILED, lease_token=None, lease_until=None, completion_time=now_ms(),
                last_error="the webhook was disabled or deleted before delivery")
        .execution_options(synchronize_session=False))
    session.commit()


def deliver_round(session: Session, limit: Optional[int] = None) -> RoundResult:
    """Claim one batch and deliver it; the session commits as it goes."""
    config = get_state().config
    token, items = claim(session, limit or config.webhooks_batch, config.webhooks_lease)
    result = RoundResult(claimed=len(items))
    if not items:
        return result
    with webhook_http.new_session(config.webhooks_allow_local_network) as http:
        for item in items:
            if not item.webhook_active:
                _cancel(session, item, token)
                result.failed += 1
                continue
            started = now_ms()
            try:
                outcome = _send_checked(http, item, config)
            except Exception as exc:  # noqa: BLE001 - one bad delivery must not stop the others
                log.exception("webhook delivery %s failed unexpectedly", item.delivery_id)
                outcome = webhook_http.Outcome(None, None, f"internal error: {exc!r}"[:500], now_ms() - started)
            state = finish(session, item, token, outcome, started, config)
            if state == SUCCEEDED:
                result.succeeded += 1
            elif state == PENDING:
                result.retrying += 1
            elif state == FAILED:
                result.failed += 1
    return result


def _send_checked(http: Any, item: Claimed, config: Any) -> webhook_http.Outcome:
    try:  # the URL is checked again now: its host may resolve elsewhere than when it was saved
        webhook_http.check_url(item.url, schemes=config.webhooks_allowed_schemes,
                               allow_local=config.webhooks_allow_local_network)
    except InvalidParameter as exc:
        return webhook_http.Outcome(None, None, f"refused: {exc.message}", 0)
    return webhook_http.send(http, item.url, item.delivery_id, item.body, item.secret, config.webhooks_timeout)


def deliver_all(session: Session, max_rounds: int = 1000) -> RoundResult:
    """Rounds until nothing is due (what ``webhooks deliver`` without ``--loop`` does)."""
    total = RoundResult()
    for _ in range(max_rounds):
        one = deliver_round(session)
        if not one.claimed:
            break
        for name in ("claimed", "succeeded", "retrying", "failed"):
            setattr(total, name, getattr(total, name) + getattr(one, name))
    return total


def next_due_in_ms(session: Session) -> Optional[int]:
    """How long until the next pending delivery is due (None: nothing pending)."""
    soonest = session.scalar(select(WebhookDelivery.next_attempt_time).where(WebhookDelivery.status == PENDING)
                             .order_by(WebhookDelivery.next_attempt_time).limit(1))
    session.commit()
    return None if soonest is None else max(soonest - now_ms(), 0)


def prune(session: Session, older_than_days: Optional[float] = None) -> int:
    """Delete finished deliveries (and their attempts) older than the retention."""
    days = get_state().config.webhooks_retention_days if older_than_days is None else older_than_days
    cutoff = now_ms() - int(days * 86_400_000)
    gone = session.execute(delete(WebhookDelivery).where(
        WebhookDelivery.status.in_((SUCCEEDED, FAILED)), WebhookDelivery.completion_time < cutoff)
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return gone or 0


def recent_deliveries(session: Session, project_id: str, limit: int = 50) -> list[tuple[WebhookDelivery, str]]:
    """The project's latest deliveries with their webhook's name, newest first."""
    rows = session.execute(
        select(WebhookDelivery, Webhook.name).join(Webhook, Webhook.id == WebhookDelivery.webhook_pk)
        .where(WebhookDelivery.project_id == str(project_id)).order_by(WebhookDelivery.id.desc()).limit(limit)
    ).all()
    return [(r[0], r[1]) for r in rows]


def redeliver(session: Session, project_id: str, delivery_id: str) -> WebhookDelivery:
    """Queue a finished delivery of the project for one more try, now (the page's "Send again")."""
    row = session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.project_id == str(project_id), WebhookDelivery.delivery_id == str(delivery_id))).one_or_none()
    if row is None or row.status not in (SUCCEEDED, FAILED):
        raise ResourceDoesNotExist(f"No finished webhook delivery {delivery_id} in this project.")
    row.status, row.next_attempt_time, row.completion_time = PENDING, now_ms(), None
    send_after_commit(session, event_recorded, project_id=str(project_id))
    return row
