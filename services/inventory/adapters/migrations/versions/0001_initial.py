"""Stocks, reservations with their items, and the request log.

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

LIVE = sa.text("state IN ('ACTIVE', 'COMMITTED')")


def upgrade() -> None:
    op.create_table(
        "stocks",
        sa.Column("product_id", sa.String(63), primary_key=True),
        sa.Column("on_hand", sa.BigInteger, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="stock_never_negative"),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("order_id", sa.String(63), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "reservations_one_live_per_order",
        "reservations",
        ["order_id"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index("reservations_by_expiry", "reservations", ["state", "expire_time"])
    op.create_table(
        "reservation_items",
        sa.Column(
            "reservation_id", sa.String(63), sa.ForeignKey("reservations.id"), primary_key=True
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("product_id", sa.String(63), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
    )
    db.create_request_log_table()


def downgrade() -> None:
    op.drop_table("request_log")
    op.drop_table("reservation_items")
    op.drop_index("reservations_by_expiry", "reservations")
    op.drop_index("reservations_one_live_per_order", "reservations")
    op.drop_table("reservations")
    op.drop_table("stocks")
