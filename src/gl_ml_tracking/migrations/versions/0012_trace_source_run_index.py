"""PostgreSQL: an index of the traces' source runs (issue 15: search_traces at 100k)

Revision ID: 0012
Revises: 0011

``metadata.mlflow.sourceRun = '<run>'`` (and ``run_id = '<run>'``) read every trace's
source-run row on PostgreSQL to keep the run's: ~100 ms at 100,000 traces. A partial
index of those rows (a prefix of the value, as the run value indexes of 0002, since a
value may pass the btree entry limit) finds the run's traces directly. SQLite walks
the traces newest first and probes the primary key instead (and would not match a
partial index to a bound key), so it gets none.
"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

VALUE_PREFIX_CHARS = 200  # models.tracking.VALUE_PREFIX_CHARS when written


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE INDEX IF NOT EXISTS ix_glml_trace_metadata_source_run ON glml_trace_metadata '
                   f"(left(value, {VALUE_PREFIX_CHARS}), trace_pk) WHERE key = 'mlflow.sourceRun'")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_glml_trace_metadata_source_run')
