"""indexes on (key, value) of params and run tags, for equality search filters

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Mirrors gl_ml_tracking.models.tracking._value_indexes: PostgreSQL indexes a prefix of
# the value (its btree entries are limited to ~2.7 kB), SQLite the whole value.
VALUE_PREFIX_CHARS = 200
TABLES = ('glml_params', 'glml_run_tags')


def upgrade():
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        if dialect == 'postgresql':
            op.execute(f'CREATE INDEX ix_{table}_key_value_prefix_run ON {table} '
                       f'(key, left(value, {VALUE_PREFIX_CHARS}), run_id)')
        else:
            op.create_index(f'ix_{table}_key_value_run', table, ['key', 'value', 'run_id'])


def downgrade():
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        suffix = 'key_value_prefix_run' if dialect == 'postgresql' else 'key_value_run'
        op.drop_index(f'ix_{table}_{suffix}', table_name=table)
