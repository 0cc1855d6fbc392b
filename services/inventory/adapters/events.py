"""Inventory's domain events as the contract's messages (``agora.inventory.v1`` events.proto).

The unit of work writes them to the outbox at commit; the conversion of a reservation or
a stock itself is the servicer's (one message per resource, whoever reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from agora.inventory.v1 import events_pb2
from inventory.adapters import orm
from inventory.domain.model import ReservationEvent, ReservationEventType, StockLevelChanged
from inventory.entrypoints.convert import reservation_to_proto, stock_to_proto
from runtime.outbox import OutboxWriter


def to_messages(event: object) -> Sequence[tuple[Message, str]]:
    """The messages an event publishes, each with its reservation's or stock's name as the
    aggregate."""
    if isinstance(event, StockLevelChanged):
        changed = events_pb2.StockLevelChanged(
            stock=stock_to_proto(event.stock),
            previous_on_hand=event.previous_on_hand,
            previous_available=event.previous_available,
        )
        return [(changed, event.stock.name)]
    if not isinstance(event, ReservationEvent):
        raise TypeError(f"inventory does not publish {type(event).__name__}")
    reservation = reservation_to_proto(event.reservation)
    message: Message
    if event.type is ReservationEventType.RESERVED:
        message = events_pb2.StockReserved(reservation=reservation)
    elif event.type is ReservationEventType.COMMITTED:
        message = events_pb2.ReservationCommitted(reservation=reservation)
    elif event.type is ReservationEventType.RELEASED:
        message = events_pb2.ReservationReleased(reservation=reservation)
    else:
        message = events_pb2.ReservationExpired(reservation=reservation)
    return [(message, event.reservation.name)]


#: Writes inventory's events into its outbox table.
OUTBOX = OutboxWriter(orm.outbox, "inventory", to_messages)
