"""run links to traces not stored yet (issue 16: MLflow's link-before-export case)

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    # Mirrors gl_ml_tracking.models.traces.PendingTraceLink.
    op.create_table('glml_pending_trace_links',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('trace_id', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['glml_runs.id'], name=op.f('fk_glml_pending_trace_links_run_id_glml_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'trace_id', 'run_id', name=op.f('pk_glml_pending_trace_links'))
    )


def downgrade():
    op.drop_table('glml_pending_trace_links')
