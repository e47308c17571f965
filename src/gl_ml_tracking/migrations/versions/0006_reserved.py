"""GenAI evaluation datasets and scorers (issue 16)

Revision ID: 0006
Revises: 0005

Reserved so that features built side by side share one chain; the feature fills it in.
"""

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
