"""PostgreSQL: the metric history index carries value and is_nan (issue 17)

Revision ID: 0008
Revises: 0007

The charts' sampling makes up to 10,000 backward seeks on (run_id, key, step,
timestamp, id) per answer; with ``INCLUDE (value, is_nan)`` each is an index-only
scan instead of an index scan plus a table page (100 runs x 100,000 points: 50,000
buffer reads, 19,000 of them outside shared_buffers, became 40,000 hits). The new
index replaces the old one, so a write still updates three indexes of
glml_metrics. SQLite keeps its index: a covering one measured no faster there.

On a large table the build holds a lock that makes metric writes wait (about 25 s
per 10 million points on a small server). To avoid that, build it beforehand with
``CREATE INDEX CONCURRENTLY ix_glml_metrics_run_key_step_cover ON glml_metrics
(run_id, key, step, timestamp, id) INCLUDE (value, is_nan)``: the migration then
only drops the old index (docs/OPERATIONS.md).
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

COLUMNS = 'run_id, key, step, timestamp, id'


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(f'CREATE INDEX IF NOT EXISTS ix_glml_metrics_run_key_step_cover ON glml_metrics ({COLUMNS})'
               ' INCLUDE (value, is_nan)')
    op.execute('DROP INDEX IF EXISTS ix_glml_metrics_run_key_step')


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(f'CREATE INDEX IF NOT EXISTS ix_glml_metrics_run_key_step ON glml_metrics ({COLUMNS})')
    op.execute('DROP INDEX IF EXISTS ix_glml_metrics_run_key_step_cover')
