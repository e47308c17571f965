"""the logged models a run used (runs/log-inputs with models; issue 16)

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # Mirrors gl_ml_tracking.models.run_model_inputs.RunModelInput.
    op.create_table('glml_run_model_inputs',
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('model_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['glml_runs.id'], name=op.f('fk_glml_run_model_inputs_run_id_glml_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'model_id', name=op.f('pk_glml_run_model_inputs'))
    )


def downgrade():
    op.drop_table('glml_run_model_inputs')
