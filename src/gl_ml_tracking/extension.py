"""The ``MLTracking`` Flask extension object."""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Optional

from flask import Flask

from . import hooks as hooks_module
from .blueprints import register_blueprints
from .blueprints.ops import register_operations
from .cli import ml_tracking_cli
from .config import DEFAULTS, Settings
from .http.proxies import trust_forwarded_headers
from .registry.storage import storage_from_config
from .search.sql import sqlite_regexp
from .state import EXTENSION_KEY, TrackingState, get_state

__all__ = ["MLTracking", "TrackingState", "get_state", "EXTENSION_KEY"]


def _tune_sqlite(engine: Any) -> None:
    """WAL lets readers run beside a writer, a busy timeout makes a writer
    wait for the lock instead of failing at once with "database is locked",
    and foreign keys make SQLite honour ON DELETE CASCADE as PostgreSQL does."""
    if engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event

    def on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()
        # RLIKE in trace filters: SQLite's REGEXP operator calls this function.
        dbapi_connection.create_function("regexp", 2, sqlite_regexp, deterministic=True)

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before the listener get the pragmas too


class MLTracking:
    """Per-project, MLflow-compatible experiment tracking for a Flask forge.

    ``MLTracking(app, db=db)`` or ``ml = MLTracking(); ml.init_app(app, db=db)``.
    ``db`` is the host's Flask-SQLAlchemy instance; without one the extension
    uses the app's existing Flask-SQLAlchemy, or makes its own.

    Hooks are registered with decorators (``@ml.project_loader`` ...); see
    :mod:`gl_ml_tracking.hooks` for their signatures and defaults.
    """

    def __init__(self, app: Optional[Flask] = None, db: Any = None) -> None:
        self._hooks: dict[str, Callable[..., Any]] = {}
        self._db = db
        if app is not None:
            self.init_app(app, db=db)

    # -- hooks -----------------------------------------------------------------
    def _register(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._hooks[name] = fn
        return fn

    def project_loader(self, fn: hooks_module.ProjectLoader) -> hooks_module.ProjectLoader:
        """``fn(ref: str) -> Project | None``; ``ref`` is a numeric id or a full path."""
        return self._register("project_loader", fn)

    def user_loader(self, fn: hooks_module.UserLoader) -> hooks_module.UserLoader:
        """``fn(request) -> User | None``: who is calling (token, basic auth, session)."""
        return self._register("user_loader", fn)

    def permission_checker(self, fn: hooks_module.PermissionChecker) -> hooks_module.PermissionChecker:
        """``fn(user | None, project, permission: str) -> bool``."""
        return self._register("permission_checker", fn)

    def ci_job_loader(self, fn: hooks_module.CiJobLoader) -> hooks_module.CiJobLoader:
        """``fn(project, job_id) -> CiJob | None``."""
        return self._register("ci_job_loader", fn)

    def ci_jobs_loader(self, fn: hooks_module.CiJobsLister) -> hooks_module.CiJobsLister:
        """``fn(project, pipeline_id=None, merge_request_iid=None, ref=None) -> job ids | None``:
        which jobs belong to a pipeline, a merge request or a branch (see
        ``hooks.default_ci_jobs_for``); powers the CI filters and the MR view."""
        return self._register("ci_jobs_for", fn)

    def user_presenter(self, fn: hooks_module.UserPresenter) -> hooks_module.UserPresenter:
        """``fn(user_id) -> UserRef | None``: how to display a user."""
        return self._register("user_presenter", fn)

    # -- wiring ----------------------------------------------------------------
    def init_app(self, app: Flask, db: Any = None) -> None:
        if EXTENSION_KEY in app.extensions:
            # As Flask-SQLAlchemy: a second registration would mount every blueprint twice.
            raise RuntimeError("gl-ml-tracking is already registered on this Flask app; call init_app once per app.")
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        settings = Settings(app.config)
        trust_forwarded_headers(app, settings.trusted_proxies)  # absolute URLs behind proxies (issue 18)
        db = db or self._db or self._find_or_make_db(app)
        state = TrackingState(
            db=db,
            config=settings,
            hooks=self._hooks,
            default_hooks=hooks_module.DEFAULT_HOOKS,
            storage_factory=functools.partial(storage_from_config, app.config, app.instance_path),
            extension=self,
        )
        app.extensions[EXTENSION_KEY] = state
        if settings.sqlite_pragmas:
            with app.app_context():
                _tune_sqlite(db.engine)

        register_blueprints(app, settings)
        register_operations(app, settings)  # health check, request log, metrics (issue 18)
        if settings.webhooks_deliverer:  # webhooks: each serving process's deliverer thread, started when needed
            from .services.webhook_deliverer import install

            install(app)
        if "ml-tracking" not in app.cli.commands:
            app.cli.add_command(ml_tracking_cli)

    @staticmethod
    def _find_or_make_db(app: Flask) -> Any:
        existing = app.extensions.get("sqlalchemy")
        if existing is not None:
            return existing
        from flask_sqlalchemy import SQLAlchemy

        uri = app.config["GL_ML_TRACKING_DATABASE_URI"]
        if not uri:
            os.makedirs(app.instance_path, exist_ok=True)
            uri = "sqlite:///" + os.path.join(app.instance_path, "ml_tracking.db")
        app.config.setdefault("SQLALCHEMY_DATABASE_URI", uri)
        own = SQLAlchemy()
        own.init_app(app)
        return own
