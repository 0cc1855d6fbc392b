"""The inventory database's tables. Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from runtime.db import inbox_table, request_log_table
from runtime.outbox import outbox_table

metadata = sa.MetaData()

#: Reservations in these states count for their order; at most one per order.
_LIVE = sa.text("state IN ('ACTIVE', 'COMMITTED')")

stocks = sa.Table(
    "stocks",
    metadata,
    sa.Column("product_id", sa.String(63), primary_key=True),
    sa.Column("on_hand", sa.BigInteger, nullable=False),
    sa.Column("reserved", sa.BigInteger, nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    # The use cases never break it; the database refuses it anyway.
    sa.CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="stock_never_negative"),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("order_id", sa.String(63), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    sa.Index(
        "reservations_one_live_per_order",
        "order_id",
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    ),
    sa.Index("reservations_by_expiry", "state", "expire_time"),
)

reservation_items = sa.Table(
    "reservation_items",
    metadata,
    sa.Column(
        "reservation_id",
        sa.String(63),
        sa.ForeignKey("reservations.id"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.String(63), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
)

request_log = request_log_table(metadata)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
