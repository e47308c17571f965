"""The forge's SECRET_KEY: sessions, CSRF tokens, page tokens and the signed
multipart part URLs all depend on it, and every host and worker must share one.

Outside debug and testing the forge refuses to start without an explicit key
(:class:`MissingSecretKey`): a key invented per checkout made each host of a
deployment sign with its own, and a part URL handed out by one host was refused by
the next. In debug (``flask --debug``, ``make dev``) a key kept in the instance
folder is used, so the development server's restarts keep their sessions.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask


class MissingSecretKey(RuntimeError):
    """The forge was started for real (not debug, not testing) without a SECRET_KEY."""


MESSAGE = ("SECRET_KEY is not set. Give every host and worker the same key, e.g. "
           "export SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') "
           "(stored once, shared by all hosts); `make run` passes a demo key, `make dev` "
           "(debug) keeps one in the instance folder.")


def _instance_key(instance_path: Path) -> str:
    """A key kept in the instance folder, so that every worker process and every
    restart of a development server signs alike."""
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        # O_EXCL: when two workers start at once only one key is written.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def choose_secret_key(app: Flask, instance_path: Path) -> str:
    """The key the app runs with: the configured one, ``$SECRET_KEY``, a throwaway one
    for tests, the instance folder's in debug; else :class:`MissingSecretKey`."""
    if app.config.get("SECRET_KEY"):
        return app.config["SECRET_KEY"]
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    if app.testing:
        return secrets.token_hex(32)
    if app.debug:
        return _instance_key(instance_path)
    raise MissingSecretKey(MESSAGE)
