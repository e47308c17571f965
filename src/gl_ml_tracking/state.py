"""What one app's extension holds, and how code finds it.

A leaf module: it imports nothing of this package, so every layer (services,
blueprints, the CLI) can reach the state without reaching up to the extension.
The extension object fills it in ``init_app`` (as Flask-SQLAlchemy does with
``app.extensions["sqlalchemy"]``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from flask import Flask, current_app

EXTENSION_KEY = "gl_ml_tracking"


@dataclass
class TrackingState:
    """One app's extension: ``app.extensions["gl_ml_tracking"]``."""

    db: Any  # a flask_sqlalchemy.SQLAlchemy
    config: Any  # a config.Settings, read once from app.config by init_app
    hooks: dict  # the extension's registered hooks (the same dict: later registrations count)
    default_hooks: dict  # what answers when a hook is not registered
    storage_factory: Callable[[], Any]  # makes the file storage on first use
    extension: Any = None  # the MLTracking object
    storage: Any = None  # a registry storage, made on first use
    extra: dict = field(default_factory=dict)

    def hook(self, name: str) -> Callable[..., Any]:
        return self.hooks.get(name) or self.default_hooks[name]

    @property
    def session(self):
        return self.db.session

    def get_storage(self):
        if self.storage is None:
            self.storage = self.storage_factory()
        return self.storage


def get_state(app: Optional[Flask] = None) -> TrackingState:
    """The extension state of ``app`` (default: the current app)."""
    app = app or current_app
    return app.extensions[EXTENSION_KEY]
