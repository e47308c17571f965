"""The in-process deliverer: one daemon thread per process that delivers the
outbox, woken right after a transaction that recorded an event commits (the
``event_recorded`` signal) and otherwise every poll interval.

Started by the first request a process serves (not at ``init_app``: a forking
server's master, or a ``flask`` command, must not run it), only when
``GL_ML_TRACKING_WEBHOOKS_DELIVERER`` is on. Several processes each run one; the
claims keep them from sending a delivery twice (see ``webhook_delivery``).
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Optional

from ..state import get_state
from . import webhook_delivery
from .webhook_events import event_recorded

log = logging.getLogger("gl_ml_tracking.webhooks")
STATE_KEY = "webhook_deliverer"


class Deliverer:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.pid = os.getpid()
        self.thread: Optional[threading.Thread] = None
        self.rounds = 0

    def start(self) -> None:
        event_recorded.connect(self._on_event, sender=self.app, weak=False)
        self.thread = threading.Thread(target=self._run, name="gl-ml-tracking-webhooks", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        self.wake.set()
        event_recorded.disconnect(self._on_event, sender=self.app)
        if self.thread is not None:
            self.thread.join(timeout)

    def _on_event(self, _sender: Any, **_kwargs: Any) -> None:
        self.wake.set()

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
