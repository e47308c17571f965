"""``flask ml-tracking webhooks deliver [--loop]`` and ``... webhooks prune``: the
outbox delivered by a process of its own (or cron) instead of, or beside, the
in-process deliverer.

Registered on the ``ml-tracking`` group by :mod:`gl_ml_tracking.cli`.
"""
from __future__ import annotations

import threading
from typing import Optional

import click
from flask.cli import with_appcontext


@click.group("webhooks")
def webhooks_group():
    """Webhook deliveries (the outbox)."""


@webhooks_group.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering (a long-running deliverer) instead of stopping when nothing is due.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=None,
              help="With --loop: seconds between polls when idle (default: GL_ML_TRACKING_WEBHOOKS_POLL_INTERVAL).")
@click.option("--max-rounds", type=click.IntRange(min=1), default=None, hidden=True)
@with_appcontext
def deliver_command(loop: bool, interval: Optional[float], max_rounds: Optional[int]) -> None:
    """Send the deliveries that are due, with retries as configured."""
    from .services import webhook_delivery
    from .state import get_state

    state = get_state()
    session = state.session
    if not loop:
        done = webhook_delivery.deliver_all(session)
        click.echo(f"webhooks: {done.claimed} claimed, {done.succeeded} delivered, {done.retrying} to retry, "
                   f"{done.failed} failed")
        return
    pause = interval if interval is not None else float(state.config.webhooks_poll_interval)
    idle = threading.Event()
    rounds = 0
    try:
        while max_rounds is None or rounds < max_rounds:
            rounds += 1
            done = webhook_delivery.deliver_round(session)
            if done.claimed:
                click.echo(f"webhooks: {done.succeeded} delivered, {done.retrying} to retry, {done.failed} failed")
                continue
            due = webhook_delivery.next_due_in_ms(session)
            idle.wait(pause if due is None else min(pause, max(due / 1000.0, 0.05)))
    except KeyboardInterrupt:
        click.echo("webhooks: stopped")


@webhooks_group.command("prune")
@click.option("--older-than-days", type=click.FloatRange(min=0), default=None,
              help="Default: GL_ML_TRACKING_WEBHOOKS_RETENTION_DAYS.")
@with_appcontext
def prune_command(older_than_days: Optional[float]) -> None:
    """Delete finished deliveries (delivered or failed) and their attempts past the retention."""
    from .services import webhook_delivery
    from .state import get_state

    gone = webhook_delivery.prune(get_state().session, older_than_days)
    click.echo(f"webhooks: {gone} finished deliveries removed")
