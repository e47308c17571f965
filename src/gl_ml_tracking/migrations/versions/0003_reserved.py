"""identical metric points stored once (issue 18)

Revision ID: 0003
Revises: 0002

Reserved so that features built side by side share one chain; the feature fills it in.
"""

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
