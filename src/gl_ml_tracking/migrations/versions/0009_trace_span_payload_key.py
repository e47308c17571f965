"""big span payloads in the file storage (issue 15: bounded server memory)

Revision ID: 0009
Revises: 0008

Mirrors gl_ml_tracking.models.traces.Span.payload_key: set when a span's payload is in the
configured storage (its row keeps a skeleton); indexed where set, for garbage collection.
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_WHERE = sa.text("payload_key IS NOT NULL")


def upgrade():
    op.add_column('glml_trace_spans', sa.Column('payload_key', sa.String(length=300), nullable=True))
    op.create_index('ix_glml_trace_spans_payload_key', 'glml_trace_spans', ['payload_key'], unique=False,
                    sqlite_where=_WHERE, postgresql_where=_WHERE)


def downgrade():
    op.drop_index('ix_glml_trace_spans_payload_key', table_name='glml_trace_spans')
    with op.batch_alter_table('glml_trace_spans') as batch:
        batch.drop_column('payload_key')
