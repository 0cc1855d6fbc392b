"""Notifications, the user directory, the inbox and the outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from runtime import db, outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("recipient_id", sa.String(63), nullable=False),
        sa.Column("recipient_address", sa.String(254), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt_count", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("send_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("attempt_count >= 0", name="notifications_attempts_not_negative"),
    )
    op.create_index("notifications_by_time", "notifications", ["create_time", "id"])
    op.create_index(
        "notifications_by_recipient", "notifications", ["recipient_id", "create_time", "id"]
    )
    op.create_index(
        "notifications_by_event_type", "notifications", ["event_type", "create_time", "id"]
    )
    op.create_index("notifications_due", "notifications", ["state", "next_attempt_time"])
    op.create_table(
        "users",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
    )
    db.create_inbox_table()
    outbox.create_outbox_table()


def downgrade() -> None:
    outbox.drop_outbox_table()
    op.drop_table("inbox")
    op.drop_table("users")
    op.drop_index("notifications_due", "notifications")
    op.drop_index("notifications_by_event_type", "notifications")
    op.drop_index("notifications_by_recipient", "notifications")
    op.drop_index("notifications_by_time", "notifications")
    op.drop_table("notifications")
