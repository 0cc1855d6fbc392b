"""The payments database's tables. Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from runtime.db import request_log_table
from runtime.outbox import outbox_table

metadata = sa.MetaData()

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("order_id", sa.String(63), nullable=False),
    sa.Column("user_id", sa.String(63), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    # Every amount is whole units plus nanos, as google.type.Money: exact, never a float.
    sa.Column("amount_units", sa.BigInteger, nullable=False),
    sa.Column("amount_nanos", sa.Integer, nullable=False),
    sa.Column("captured_units", sa.BigInteger, nullable=False),
    sa.Column("captured_nanos", sa.Integer, nullable=False),
    sa.Column("refunded_units", sa.BigInteger, nullable=False),
    sa.Column("refunded_nanos", sa.Integer, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    # Only the last four digits of a card are ever stored.
    sa.Column("card_last4", sa.String(4), nullable=False),
    sa.Column("failure_reason", sa.String(64), nullable=False),
    sa.Column("processor_reference", sa.String(128), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("capture_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.CheckConstraint(
        # Compared part by part: units * 1e9 overflows BIGINT for large amounts.
        "refunded_units < captured_units "
        "OR (refunded_units = captured_units AND refunded_nanos <= captured_nanos)",
        name="payments_refunds_within_captured",
    ),
    sa.Index("payments_by_time", "create_time", "id"),
    sa.Index("payments_by_order", "order_id", "create_time", "id"),
    sa.Index("payments_by_user", "user_id", "create_time", "id"),
)

request_log = request_log_table(metadata)
outbox = outbox_table(metadata)
