"""webhooks and their delivery outbox (issue 16)

Revision ID: 0007
Revises: 0006

Reserved so that features built side by side share one chain; the feature fills it in.
"""

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
