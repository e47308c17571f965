"""traces, spans and assessments (issue 15)

Revision ID: 0004
Revises: 0003

Reserved so that features built side by side share one chain; the feature fills it in.
"""

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
