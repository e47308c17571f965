"""prompts and model inputs (issue 16)

Revision ID: 0005
Revises: 0004

Reserved so that features built side by side share one chain; the feature fills it in.
"""

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
