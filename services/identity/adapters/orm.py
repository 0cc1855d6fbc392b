"""The identity database's tables. Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from runtime.db import request_log_table
from runtime.outbox import outbox_table

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    # As given at sign-up (stripped); email_key is the lowercased form that must be unique.
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("email_key", sa.String(254), nullable=False),
    sa.Column("display_name", sa.String(100), nullable=False),
    # An argon2id PHC string; never the password.
    sa.Column("password_hash", sa.String(512), nullable=False),
    # Sorted role names separated by single spaces.
    sa.Column("roles", sa.String(256), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Index("users_by_email_key", "email_key", unique=True),
)

token_families = sa.Table(
    "token_families",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(63), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoke_time", sa.DateTime(timezone=True), nullable=True),
    sa.Index("token_families_by_user", "user_id"),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    # SHA-256 of the token, hex; the token itself is never stored.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("family_id", sa.String(32), sa.ForeignKey("token_families.id"), nullable=False),
    sa.Column("used", sa.Boolean, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Index("refresh_tokens_by_family", "family_id"),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("algorithm", sa.String(16), nullable=False),
    # PKCS#8 PEM, unencrypted for now: encryption at rest is a later step.
    sa.Column("private_key", sa.Text, nullable=False),
    # The public key as a JWK JSON object.
    sa.Column("public_jwk", sa.Text, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("retire_time", sa.DateTime(timezone=True), nullable=True),
)

request_log = request_log_table(metadata)
outbox = outbox_table(metadata)
