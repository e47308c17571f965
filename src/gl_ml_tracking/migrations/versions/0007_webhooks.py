"""webhooks and their delivery outbox (issue 16)

Revision ID: 0007
Revises: 0006

Mirrors gl_ml_tracking.models.webhooks: webhooks, the events each subscribes to,
the deliveries (the outbox) and each delivery attempt.
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'glml_webhooks',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('webhook_id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=63), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('secret', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('creation_time', sa.BigInteger(), nullable=False),
        sa.Column('last_update_time', sa.BigInteger(), nullable=False),
        sa.Column('deleted_time', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_glml_webhooks'),
        sa.UniqueConstraint('webhook_id', name='uq_glml_webhooks_webhook_id'),
    )
    op.create_index('ix_glml_webhooks_project_created', 'glml_webhooks', ['project_id', 'creation_time'])

    op.create_table(
        'glml_webhook_events',
        sa.Column('webhook_pk', BigId, nullable=False),
        sa.Column('entity', sa.String(length=32), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['webhook_pk'], ['glml_webhooks.id'], ondelete='CASCADE',
                                name='fk_glml_webhook_events_webhook_pk_glml_webhooks'),
        sa.PrimaryKeyConstraint('webhook_pk', 'entity', 'action', name='pk_glml_webhook_events'),
    )
    op.create_index('ix_glml_webhook_events_event', 'glml_webhook_events', ['entity', 'action'])

    op.create_table(
        'glml_webhook_deliveries',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('delivery_id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=False),
        sa.Column('webhook_pk', BigId, nullable=False),
        sa.Column('entity', sa.String(length=32), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_time', sa.BigInteger(), nullable=False),
        sa.Column('lease_token', sa.String(length=36), nullable=True),
        sa.Column('lease_until', sa.BigInteger(), nullable=True),
        sa.Column('creation_time', sa.BigInteger(), nullable=False),
        sa.Column('completion_time', sa.BigInteger(), nullable=True),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['webhook_pk'], ['glml_webhooks.id'], ondelete='CASCADE',
                                name='fk_glml_webhook_deliveries_webhook_pk_glml_webhooks'),
        sa.PrimaryKeyConstraint('id', name='pk_glml_webhook_deliveries'),
        sa.UniqueConstraint('delivery_id', name='uq_glml_webhook_deliveries_delivery_id'),
    )
    op.create_index('ix_glml_webhook_deliveries_due', 'glml_webhook_deliveries', ['status', 'next_attempt_time'])
    op.create_index('ix_glml_webhook_deliveries_webhook', 'glml_webhook_deliveries', ['webhook_pk', 'id'])
    op.create_index('ix_glml_webhook_deliveries_project', 'glml_webhook_deliveries', ['project_id', 'id'])

    op.create_table(
        'glml_webhook_delivery_attempts',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('delivery_pk', BigId, nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('start_time', sa.BigInteger(), nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('response_body', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['delivery_pk'], ['glml_webhook_deliveries.id'], ondelete='CASCADE',
                                name='fk_glml_webhook_delivery_attempts_delivery'),
        sa.PrimaryKeyConstraint('id', name='pk_glml_webhook_delivery_attempts'),
    )
    op.create_index('ix_glml_webhook_delivery_attempts_delivery', 'glml_webhook_delivery_attempts',
                    ['delivery_pk', 'attempt'])


def downgrade():
    op.drop_index('ix_glml_webhook_delivery_attempts_delivery', table_name='glml_webhook_delivery_attempts')
    op.drop_table('glml_webhook_delivery_attempts')
    for name in ('ix_glml_webhook_deliveries_project', 'ix_glml_webhook_deliveries_webhook',
                 'ix_glml_webhook_deliveries_due'):
        op.drop_index(name, table_name='glml_webhook_deliveries')
    op.drop_table('glml_webhook_deliveries')
    op.drop_index('ix_glml_webhook_events_event', table_name='glml_webhook_events')
    op.drop_table('glml_webhook_events')
    op.drop_index('ix_glml_webhooks_project_created', table_name='glml_webhooks')
    op.drop_table('glml_webhooks')
