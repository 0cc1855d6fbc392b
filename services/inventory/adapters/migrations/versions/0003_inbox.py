"""The inbox of the events inventory consumes (OrderCancelled).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from runtime import db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    db.create_inbox_table()


def downgrade() -> None:
    op.drop_table("inbox")
