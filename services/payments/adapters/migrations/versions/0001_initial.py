"""Payments and the request log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from runtime import db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("order_id", sa.String(63), nullable=False),
        sa.Column("user_id", sa.String(63), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_units", sa.BigInteger, nullable=False),
        sa.Column("amount_nanos", sa.Integer, nullable=False),
        sa.Column("captured_units", sa.BigInteger, nullable=False),
        sa.Column("captured_nanos", sa.Integer, nullable=False),
        sa.Column("refunded_units", sa.BigInteger, nullable=False),
        sa.Column("refunded_nanos", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("card_last4", sa.String(4), nullable=False),
        sa.Column("failure_reason", sa.String(64), nullable=False),
        sa.Column("processor_reference", sa.String(128), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capture_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.CheckConstraint(
            "refunded_units < captured_units "
            "OR (refunded_units = captured_units AND refunded_nanos <= captured_nanos)",
            name="payments_refunds_within_captured",
        ),
    )
    op.create_index("payments_by_time", "payments", ["create_time", "id"])
    op.create_index("payments_by_order", "payments", ["order_id", "create_time", "id"])
    op.create_index("payments_by_user", "payments", ["user_id", "create_time", "id"])
    db.create_request_log_table()


def downgrade() -> None:
    op.drop_table("request_log")
    op.drop_index("payments_by_user", "payments")
    op.drop_index("payments_by_order", "payments")
    op.drop_index("payments_by_time", "payments")
    op.drop_table("payments")
