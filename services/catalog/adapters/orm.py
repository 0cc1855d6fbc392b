"""The catalog database's tables. Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from runtime.db import request_log_table
from runtime.outbox import outbox_table

metadata = sa.MetaData()

categories = sa.Table(
    "categories",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("category_id", sa.String(63), sa.ForeignKey("categories.id"), nullable=False),
    sa.Column("price_currency", sa.String(3), nullable=False),
    sa.Column("price_units", sa.BigInteger, nullable=False),
    sa.Column("price_nanos", sa.Integer, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Index("products_by_category", "category_id", "id"),
    sa.Index("products_by_price", "price_currency", "price_units", "price_nanos"),
)

request_log = request_log_table(metadata)
outbox = outbox_table(metadata)
