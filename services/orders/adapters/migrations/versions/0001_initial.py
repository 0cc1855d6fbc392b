"""Orders, their lines and step history, and the request log.

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
        "orders",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("user_id", sa.String(63), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_units", sa.BigInteger, nullable=False),
        sa.Column("total_nanos", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cancellation_reason", sa.String(32), nullable=True),
        sa.Column("reservation_id", sa.String(63), nullable=False),
        sa.Column("payment_id", sa.String(63), nullable=False),
        sa.Column("payment_token", sa.String(512), nullable=False),
        sa.Column("reservation_ttl_seconds", sa.Integer, nullable=False),
        sa.Column("checkout_deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("in_flight", sa.String(32), nullable=True),
        sa.Column("undo", sa.String(128), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "total_units >= 0 AND total_nanos >= 0", name="orders_total_not_negative"
        ),
    )
    op.create_index("orders_by_user", "orders", ["user_id", "create_time", "id"])
    op.create_index("orders_by_state", "orders", ["state", "update_time"])
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(63), sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("product_id", sa.String(63), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_units", sa.BigInteger, nullable=False),
        sa.Column("unit_nanos", sa.Integer, nullable=False),
        sa.CheckConstraint("quantity BETWEEN 1 AND 1000", name="order_lines_quantity_in_range"),
    )
    op.create_table(
        "order_steps",
        sa.Column("order_id", sa.String(63), sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("finish_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(1000), nullable=False),
    )
    db.create_request_log_table()


def downgrade() -> None:
    op.drop_table("request_log")
    op.drop_table("order_steps")
    op.drop_table("order_lines")
    op.drop_index("orders_by_state", "orders")
    op.drop_index("orders_by_user", "orders")
    op.drop_table("orders")
