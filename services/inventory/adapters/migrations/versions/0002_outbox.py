"""The outbox of inventory's events.

Revision ID: 0002
Revises: 0001
"""

from runtime import outbox

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox.create_outbox_table()


def downgrade() -> None:
    outbox.drop_outbox_table()
