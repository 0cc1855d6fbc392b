"""The notifications database's tables. Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from runtime.db import inbox_table, request_log_table
from runtime.outbox import outbox_table

metadata = sa.MetaData()

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("recipient_id", sa.String(63), nullable=False),
    sa.Column("recipient_address", sa.String(254), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # One notification per event, whichever consumer delivered it.
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempt_count", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("send_time", sa.DateTime(timezone=True), nullable=True),
    # When the sender tries next; NULL once the state is final.
    sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("attempt_count >= 0", name="notifications_attempts_not_negative"),
    sa.Index("notifications_by_time", "create_time", "id"),
    sa.Index("notifications_by_recipient", "recipient_id", "create_time", "id"),
    sa.Index("notifications_by_event_type", "event_type", "create_time", "id"),
    sa.Index("notifications_due", "state", "next_attempt_time"),
)

#: The user directory: each user's address as their ``UserSignedUp`` event carried it.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("display_name", sa.String(100), nullable=False),
)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)

#: The runtime's unit of work needs a request log table; notifications has no mutating
#: RPC, so this one is declared outside ``metadata`` and never created or used.
request_log = request_log_table(sa.MetaData())
