"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database
created on the server from TEST_DATABASE_URL and dropped afterwards."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator, Optional

import pytest

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("GLML_REQUIRE_POSTGRES") == "1"

_pg_ok: Optional[bool] = None
_pg_error = ""


def _admin_dsn() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


def postgres_available() -> bool:
    global _pg_ok, _pg_error
    if _pg_ok is None:
        try:
            import psycopg

            with psycopg.connect(_admin_dsn(), connect_timeout=3) as conn:
                conn.execute("select 1")
            _pg_ok = True
        except Exception as exc:  # noqa: BLE001 - any failure means "no server"
            _pg_ok, _pg_error = False, str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return _pg_ok


def skip_without_postgres() -> None:
    if not postgres_available():
        message = f"PostgreSQL at {PG_URL} does not answer: {_pg_error}"
        if REQUIRE_PG:
            pytest.fail(message + " (GLML_REQUIRE_POSTGRES=1: PostgreSQL tests must run)")
        pytest.skip(message)


@contextmanager
def fresh_database(kind: str, tmp_dir: str) -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty database of ``kind``."""
    if kind == "sqlite":
        yield f"sqlite:///{os.path.join(tmp_dir, 'test-' + uuid.uuid4().hex[:8] + '.db')}"
        return
    skip_without_postgres()
    import psycopg

    name = "glml_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = _admin_dsn().rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
