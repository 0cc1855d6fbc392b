"""The orders database's tables. Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from runtime.db import request_log_table
from runtime.outbox import outbox_table

metadata = sa.MetaData()

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("user_id", sa.String(63), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    # Amounts are whole units plus nanos, as google.type.Money: exact, never a float.
    sa.Column("total_units", sa.BigInteger, nullable=False),
    sa.Column("total_nanos", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("cancellation_reason", sa.String(32), nullable=True),
    sa.Column("reservation_id", sa.String(63), nullable=False),
    sa.Column("payment_id", sa.String(63), nullable=False),
    # Kept only until the payment is authorized or the order cancelled.
    sa.Column("payment_token", sa.String(512), nullable=False),
    sa.Column("reservation_ttl_seconds", sa.Integer, nullable=False),
    sa.Column("checkout_deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("in_flight", sa.String(32), nullable=True),
    # Comma-separated steps still to undo, in order.
    sa.Column("undo", sa.String(128), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    # Which orders process drives the checkout, and until when.
    sa.Column("lease_owner", sa.String(255), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    # W3C trace context of the PlaceOrder call, for the checkout's events (migration 0002).
    sa.Column("traceparent", sa.String(55), nullable=False, server_default=""),
    sa.CheckConstraint("total_units >= 0 AND total_nanos >= 0", name="orders_total_not_negative"),
    sa.Index("orders_by_user", "user_id", "create_time", "id"),
    sa.Index("orders_by_state", "state", "update_time"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.String(63), sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.String(63), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_units", sa.BigInteger, nullable=False),
    sa.Column("unit_nanos", sa.Integer, nullable=False),
    sa.CheckConstraint("quantity BETWEEN 1 AND 1000", name="order_lines_quantity_in_range"),
)

order_steps = sa.Table(
    "order_steps",
    metadata,
    sa.Column("order_id", sa.String(63), sa.ForeignKey("orders.id"), primary_key=True),
    # Position in the step history; rows are only ever appended.
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("finish_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.String(1000), nullable=False),
)

request_log = request_log_table(metadata)
outbox = outbox_table(metadata)
