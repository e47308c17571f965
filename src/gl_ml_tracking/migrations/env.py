"""Alembic environment: runs on the engine of the current Flask app's
extension state, against our metadata only, with our own version table."""
from alembic import context
from flask import current_app

from gl_ml_tracking.extension import get_state
from gl_ml_tracking.migrate import VERSION_TABLE, include_object_on
from gl_ml_tracking.models import TABLE_PREFIX, metadata


def include_name(name, type_, parent_names):
    # Only our tables: a host sharing the database keeps its own.
    if type_ == "table":
        return name.startswith(TABLE_PREFIX) and name != VERSION_TABLE
    return True


def run_migrations_online():
    engine = get_state(current_app).db.engine
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=VERSION_TABLE,
            include_name=include_name,
            include_object=include_object_on(connection.dialect.name),
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
