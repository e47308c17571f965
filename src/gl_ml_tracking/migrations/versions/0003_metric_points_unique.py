"""identical metric points stored once (issue 18)

Revision ID: 0003
Revises: 0002

MLflow's primary key of a metric point is (run, key, timestamp, step, value, is_nan):
a resent point is stored once. Removes the exact duplicates already stored (keeping
the first), then adds the unique index the writes rely on (``ON CONFLICT DO NOTHING``).
NaN is stored as NULL with ``is_nan``; ``coalesce(value, 0)`` makes two NaN points equal.
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Mirrors gl_ml_tracking.models.tracking.Metric's ux_glml_metrics_point.
POINT = 'run_id, key, step, timestamp, is_nan, coalesce(value, 0)'


def upgrade():
    op.execute(
        'DELETE FROM glml_metrics WHERE id IN ('
        ' SELECT id FROM ('
        f'  SELECT id, row_number() OVER (PARTITION BY {POINT} ORDER BY id) AS n FROM glml_metrics'
        ' ) AS numbered WHERE n > 1)'
    )
    op.create_index('ux_glml_metrics_point', 'glml_metrics',
                    ['run_id', 'key', 'step', 'timestamp', 'is_nan', sa.text('coalesce(value, 0)')], unique=True)


def downgrade():
    op.drop_index('ux_glml_metrics_point', table_name='glml_metrics')
