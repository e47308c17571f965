"""Signals a host can subscribe to (blinker, as Flask uses).

Each is sent with the Flask app as sender and keyword arguments naming what
happened, e.g. ``run_created.connect(fn)`` gets ``fn(app, project=..., run=...)``.

They are sent only after the request's transaction has committed, so a
subscriber never sees a run that is then rolled back: services queue a signal
with ``send_after_commit`` (on the SQLAlchemy session), and the request
pipeline calls ``send_pending`` after its commit or ``discard_pending`` after a
rollback. A leaf module: it imports nothing of this package.
"""
from __future__ import annotations

import logging
from typing import Any

from blinker import Namespace, Signal
from flask import current_app

_signals = Namespace()

experiment_created = _signals.signal("gl-ml-tracking.experiment-created")
run_created = _signals.signal("gl-ml-tracking.run-created")
run_finished = _signals.signal("gl-ml-tracking.run-finished")
artifact_stored = _signals.signal("gl-ml-tracking.artifact-stored")

# Where queued signals wait, in ``session.info`` (one list per session, so per request).
PENDING_KEY = "gl_ml_tracking.pending_signals"


def send_after_commit(session: Any, signal: Signal, **kwargs: Any) -> None:
    """Queue ``signal`` to be sent, with the current app as sender, once ``session`` commits."""
    session.info.setdefault(PENDING_KEY, []).append((signal, kwargs))


def send_pending(session: Any) -> None:
    """Send what this session queued; call right after a successful commit."""
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    app = current_app._get_current_object()
    for signal, kwargs in pending:
        try:
            signal.send(app, **kwargs)
        except Exception:  # noqa: BLE001 - the change is committed: a subscriber's bug must not turn it into an error answer
            logging.getLogger("gl_ml_tracking.signals").exception("a subscriber of %s failed", signal.name)


def discard_pending(session: Any) -> None:
    """Forget what this session queued; call after a rollback."""
    session.info.pop(PENDING_KEY, None)
