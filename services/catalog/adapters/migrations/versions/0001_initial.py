"""Categories, products and the request log.

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
        "categories",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "products",
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
    )
    op.create_index("products_by_category", "products", ["category_id", "id"])
    op.create_index(
        "products_by_price", "products", ["price_currency", "price_units", "price_nanos"]
    )
    db.create_request_log_table()


def downgrade() -> None:
    op.drop_table("request_log")
    op.drop_index("products_by_price", "products")
    op.drop_index("products_by_category", "products")
    op.drop_table("products")
    op.drop_table("categories")
