"""Declarative base shared by every table of the extension.

The models live on their own ``MetaData`` (not the host's ``db.Model``) so the
extension can run on the host's Flask-SQLAlchemy session without touching its
tables, and so our migrations see only our tables. Every table name starts
with ``TABLE_PREFIX``.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase

TABLE_PREFIX = "glml_"

# Deterministic constraint names keep Alembic autogenerate stable across databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
