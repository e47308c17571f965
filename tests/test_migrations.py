"""The shipped migrations and the models agree, on SQLite and PostgreSQL, and
they never touch the host's tables or its Alembic version table."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from gl_ml_tracking import MLTracking, migrate
from gl_ml_tracking.extension import get_state
from gl_ml_tracking.models import TABLE_PREFIX, metadata
from tests.support.livedb import fresh_database


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrade_matches_models_and_spares_host_tables(kind, tmp_path):
    with fresh_database(kind, str(tmp_path)) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # the host's own schema, made before ours
            conn.execute(sa.text("CREATE TABLE host_things (id INTEGER PRIMARY KEY, name VARCHAR(10))"))
            conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(sa.text("INSERT INTO alembic_version VALUES ('host_rev_1')"))
        app = Flask("mig", instance_path=str(tmp_path))
        app.config["GL_ML_TRACKING_DATABASE_URI"] = url
        MLTracking(app)
        with app.app_context():
            migrate.upgrade()
            with get_state(app).db.engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={"include_name": lambda name, type_, parent: type_ != "table" or name.startswith(TABLE_PREFIX) and name != migrate.VERSION_TABLE, "compare_type": True,
                          "include_object": migrate.include_object_on(conn.dialect.name)}
                )
                diff = compare_metadata(context, metadata)
                assert diff == [], diff
                # The dialect's own (key, value) index for equality filters exists.
                suffix = "key_value_prefix_run" if conn.dialect.name == "postgresql" else "key_value_run"
                for table in ("glml_params", "glml_run_tags"):
                    names = {ix["name"] for ix in sa.inspect(conn).get_indexes(table)}
                    assert f"ix_{table}_{suffix}" in names, (table, names)
                # The history index: covering on PostgreSQL (0008; Alembic does not compare
                # INCLUDE columns); on SQLite none beside the unique point index (0010).
                history = {ix["name"]: ix for ix in sa.inspect(conn).get_indexes("glml_metrics")}
                if conn.dialect.name == "postgresql":
                    assert "ix_glml_metrics_run_key_step" not in history
                    definition = conn.execute(sa.text(
                        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_glml_metrics_run_key_step_cover'"
                    )).scalar()
                    assert definition.endswith("(run_id, key, step, \"timestamp\", id) INCLUDE (value, is_nan)"), \
                        definition
                else:
                    assert "ix_glml_metrics_run_key_step" not in history
                    assert "ix_glml_metrics_run_key_step_cover" not in history
                    plan = " ".join(str(row[-1]) for row in conn.execute(sa.text(
                        "EXPLAIN QUERY PLAN SELECT id FROM glml_metrics WHERE run_id = 1 AND key = 'k'"
                        " AND step >= 5 ORDER BY step, timestamp, id LIMIT 10")))
                    assert "USING INDEX ux_glml_metrics_point" in plan or "USING COVERING INDEX ux_glml_metrics_point" in plan, plan
                tables = set(sa.inspect(conn).get_table_names())
                assert {t.name for t in metadata.sorted_tables} <= tables
                assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "host_rev_1"
                assert conn.execute(sa.text(f"SELECT count(*) FROM {migrate.VERSION_TABLE}")).scalar() == 1
            migrate.downgrade("base")
            with get_state(app).db.engine.connect() as conn:
                left = set(sa.inspect(conn).get_table_names())
            assert "host_things" in left and not any(t.startswith(TABLE_PREFIX) and t != migrate.VERSION_TABLE for t in left)
            get_state(app).db.engine.dispose()
        engine.dispose()
