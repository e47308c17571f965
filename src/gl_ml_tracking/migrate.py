"""Alembic migrations shipped inside the package.

They keep their own version table (``glml_alembic_version``) and see only our
tables, so they never touch the host's schema or its own Flask-Migrate history.
"""
from __future__ import annotations

import os

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")
VERSION_TABLE = "glml_alembic_version"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    return cfg


def upgrade(revision: str = "head") -> None:
    """Run inside an app context: migrates the extension's database to ``revision``."""
    command.upgrade(alembic_config(), revision)


def downgrade(revision: str) -> None:
    command.downgrade(alembic_config(), revision)


def current() -> None:
    command.current(alembic_config(), verbose=True)


def revision(message: str, autogenerate: bool = True) -> None:
    command.revision(alembic_config(), message=message, autogenerate=autogenerate)


def include_object_on(dialect_name: str):
    """Alembic ``include_object`` for autogenerate on ``dialect_name``: leaves out the
    indexes declared for another database only (``Index(...).ddl_if(dialect=...)``),
    which Alembic's comparison would otherwise report as missing."""

    def include_object(obj, name, type_, reflected, compare_to):
        ddl_if = getattr(obj, "_ddl_if", None)
        if type_ == "index" and not reflected and ddl_if is not None and ddl_if.dialect:
            wanted = ddl_if.dialect
            return dialect_name == wanted if isinstance(wanted, str) else dialect_name in wanted
        return True

    return include_object
