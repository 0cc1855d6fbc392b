"""The transactional outbox: events are written with the change that caused them.

A use case emits domain events on its unit of work; when (and only when) the transaction
commits, :class:`OutboxWriter` turns them into the service's contract messages
(``events.proto``) and inserts them into the ``outbox`` table *in the same transaction*::

    async with uow.writing():
        await uow.orders.update(confirmed, order.revision)
        uow.emit(OrderConfirmedEvent(confirmed))
        await uow.commit()          # the order and its event, or neither

:class:`runtime.relay.OutboxRelay` then publishes committed rows to NATS JetStream in the
order they were written (so per aggregate too), with the event id as ``Nats-Msg-Id``,
and marks a row sent only after the broker acknowledged it. A crash between the ack and
the mark republishes the row; the broker drops the duplicate within its window, and
consumers drop it for good through their inbox.

Each row carries the envelope every event has, sent as message headers (see
:func:`headers`): the event id, its type (the full message name, also the subject), the
source service, the time, and the W3C ``traceparent`` of the request that caused it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime import context

#: The envelope headers of every event.
EVENT_ID_HEADER = "Agora-Event-Id"
EVENT_TYPE_HEADER = "Agora-Event-Type"
SOURCE_HEADER = "Agora-Source"
TIME_HEADER = "Agora-Event-Time"
TRACEPARENT_HEADER = "traceparent"
#: JetStream's de-duplication header.
MSG_ID_HEADER = "Nats-Msg-Id"

OUTBOX_COLUMNS = (
    # Assigned in commit order within a database; the relay publishes in this order.
    sa.Column(
        "position",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("aggregate", sa.String(255), nullable=False),
    sa.Column("payload", sa.LargeBinary(), nullable=False),
    sa.Column("traceparent", sa.String(55), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_time", sa.DateTime(timezone=True), nullable=True),
)


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """Declares the ``outbox`` table in a service's metadata."""
    return sa.Table(
        "outbox",
        metadata,
        *(c._copy() for c in OUTBOX_COLUMNS),
        sa.Index("outbox_unsent", "sent_time", "position"),
    )


def create_outbox_table() -> None:
    """Creates the ``outbox`` table from inside an Alembic migration."""
    from alembic import op

    op.create_table("outbox", *(c._copy() for c in OUTBOX_COLUMNS))
    op.create_index("outbox_unsent", "outbox", ["sent_time", "position"])


def drop_outbox_table() -> None:
    """Drops it again, for the migration's downgrade."""
    from alembic import op

    op.drop_index("outbox_unsent", "outbox")
    op.drop_table("outbox")


def new_traceparent() -> str:
    """A W3C ``traceparent`` that starts a new trace (sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


#: Turns one domain event into the contract messages it publishes, each with the name
#: of the resource (aggregate) it is about, such as ``orders/o1``.
Mapper = Callable[[object], Sequence[tuple[Message, str]]]


@dataclass(frozen=True)
class OutboxWriter:
    """Writes a service's emitted events into its outbox table."""

    table: sa.Table
    #: The short name of the emitting service, such as ``orders``.
    source: str
    to_messages: Mapper

    async def write(
        self, connection: AsyncConnection, events: Sequence[object], now: datetime
    ) -> None:
        """Inserts a row per message of ``events``, inside the caller's transaction."""
        traceparent = context.traceparent() or new_traceparent()
        rows: list[dict[str, Any]] = [
            {
                "event_id": str(uuid.uuid4()),
                "event_type": message.DESCRIPTOR.full_name,
                "aggregate": aggregate,
                "payload": message.SerializeToString(deterministic=True),
                "traceparent": traceparent,
                "create_time": now,
            }
            for event in events
            for message, aggregate in self.to_messages(event)
        ]
        if rows:
            await connection.execute(sa.insert(self.table), rows)


def headers(row: sa.Row[Any], source: str) -> dict[str, str]:
    """The envelope of an outbox row, as the NATS headers it is published with."""
    create_time: datetime = row.create_time
    if create_time.tzinfo is None:  # SQLite hands back naive datetimes; all are UTC
        create_time = create_time.replace(tzinfo=UTC)
    return {
        MSG_ID_HEADER: row.event_id,
        EVENT_ID_HEADER: row.event_id,
        EVENT_TYPE_HEADER: row.event_type,
        SOURCE_HEADER: source,
        TIME_HEADER: create_time.isoformat().replace("+00:00", "Z"),
        TRACEPARENT_HEADER: row.traceparent,
    }
