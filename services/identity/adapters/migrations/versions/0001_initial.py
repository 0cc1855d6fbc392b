"""Users, token families, refresh tokens, signing keys and the request log.

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
        "users",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_key", sa.String(254), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(512), nullable=False),
        sa.Column("roles", sa.String(256), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("users_by_email_key", "users", ["email_key"], unique=True)
    op.create_table(
        "token_families",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(63), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoke_time", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("token_families_by_user", "token_families", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family_id", sa.String(32), sa.ForeignKey("token_families.id"), nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("refresh_tokens_by_family", "refresh_tokens", ["family_id"])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("private_key", sa.Text, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retire_time", sa.DateTime(timezone=True), nullable=True),
    )
    db.create_request_log_table()


def downgrade() -> None:
    op.drop_table("request_log")
    op.drop_table("signing_keys")
    op.drop_index("refresh_tokens_by_family", "refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("token_families_by_user", "token_families")
    op.drop_table("token_families")
    op.drop_index("users_by_email_key", "users")
    op.drop_table("users")
