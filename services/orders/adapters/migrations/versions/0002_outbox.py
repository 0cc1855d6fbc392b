"""The outbox of orders' events, and each order's trace context.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from runtime import outbox

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox.create_outbox_table()
    op.add_column(
        "orders", sa.Column("traceparent", sa.String(55), nullable=False, server_default="")
    )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("traceparent")
    outbox.drop_outbox_table()
