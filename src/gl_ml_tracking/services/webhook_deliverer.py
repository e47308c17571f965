"""The in-process deliverer: one daemon thread per process that delivers the
outbox, woken right after a transaction that recorded an event commits (the
``event_recorded`` signal) and otherwise every poll interval.

Only when ``GL_ML_TRACKING_WEBHOOKS_DELIVERER`` is on, and only in processes that
serve requests (never in a forking server's master, nor in a ``flask`` command):
a process starts its thread when it records its first event, or at its first
request if the outbox holds unfinished deliveries then (left by a process that
stopped). A host whose projects have no webhooks runs no thread at all. Several
processes each run one; the claims keep them from sending a delivery twice (see
``webhook_delivery``).
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Optional

from sqlalchemy import select

from ..models import WebhookDelivery
from ..models.webhooks import DELIVERING, PENDING
from ..state import get_state
from . import webhook_delivery
from .webhook_events import event_recorded

log = logging.getLogger("gl_ml_tracking.webhooks")
STATE_KEY = "webhook_deliverer"
CHECKED_KEY = "webhook_deliverer_checked"  # the pid whose first request looked at the outbox


class Deliverer:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.pid = os.getpid()
        self.thread: Optional[threading.Thread] = None
        self.rounds = 0

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="gl-ml-tracking-webhooks", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        poll = float(get_state(self.app).config.webhooks_poll_interval)
        while not self.stopping.is_set():
            wait = poll
            try:
                with self.app.app_context():
                    session = get_state().session
                    try:
                        while not self.stopping.is_set() and webhook_delivery.deliver_round(session).claimed:
                            self.rounds += 1
                        due = webhook_delivery.next_due_in_ms(session)
                    finally:
                        session.rollback()
                if due is not None:
                    wait = min(poll, max(due / 1000.0, 0.05))
            except Exception:  # noqa: BLE001 - a database hiccup must not end the thread
                log.exception("webhook deliverer round failed; retrying in %.1f s", poll)
            self.wake.wait(wait)
            self.wake.clear()


def install(app: Any) -> None:
    """Called by ``init_app`` when the setting is on: start (or wake) this process's
    deliverer after each commit that recorded an event, and look at the outbox once
    at a process's first request."""
    def on_event(_sender: Any, **_kwargs: Any) -> None:
        deliverer = ensure_started(app)
        if deliverer is not None:
            deliverer.wake.set()

    def first_request() -> None:
        state = get_state(app)
        if state.extra.get(CHECKED_KEY) == os.getpid():
            return
        state.extra[CHECKED_KEY] = os.getpid()
        try:
            with state.db.engine.connect() as conn:
                unfinished = conn.execute(select(WebhookDelivery.id).where(
                    WebhookDelivery.status.in_((PENDING, DELIVERING))).limit(1)).first()
        except Exception:  # noqa: BLE001 - e.g. tables not migrated yet: the next event starts it
            log.warning("could not look at the webhook outbox", exc_info=True)
            return
        if unfinished is not None:
            ensure_started(app)

    event_recorded.connect(on_event, sender=app, weak=False)
    app.before_request(first_request)


def ensure_started(app: Any) -> Optional[Deliverer]:
    """Start this process's deliverer if the setting asks for one and none runs here."""
    state = get_state(app)
    if not state.config.webhooks_deliverer:
        return None
    current = state.extra.get(STATE_KEY)
    if current is not None and current.pid == os.getpid() and current.thread is not None and current.thread.is_alive():
        return current
    with _START_LOCK:
        current = state.extra.get(STATE_KEY)
        if current is not None and current.pid == os.getpid() and current.thread is not None and current.thread.is_alive():
            return current
        deliverer = Deliverer(app)
        state.extra[STATE_KEY] = deliverer
        deliverer.start()
        return deliverer


def stop(app: Any) -> None:
    deliverer = get_state(app).extra.pop(STATE_KEY, None)
    if deliverer is not None:
        deliverer.stop()


_START_LOCK = threading.Lock()
