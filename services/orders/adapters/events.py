"""Orders' domain events as the contract's messages (``agora.orders.v1`` events.proto).

The unit of work writes them to the outbox at commit; the conversion of the order itself
is the servicer's (one ``Order`` message, whoever reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from agora.orders.v1 import events_pb2
from orders.adapters import orm
from orders.domain.model import OrderEvent, OrderEventType
from orders.entrypoints.convert import order_to_proto
from runtime.outbox import OutboxWriter


def to_messages(event: object) -> Sequence[tuple[Message, str]]:
    """The messages an event publishes, each with the order's name as its aggregate."""
    if not isinstance(event, OrderEvent):
        raise TypeError(f"orders does not publish {type(event).__name__}")
    order = order_to_proto(event.order)
    message: Message
    if event.type is OrderEventType.PLACED:
        message = events_pb2.OrderPlaced(order=order)
    elif event.type is OrderEventType.CONFIRMED:
        message = events_pb2.OrderConfirmed(order=order)
    elif event.type is OrderEventType.COMPLETED:
        message = events_pb2.OrderCompleted(order=order)
    else:
        # Only a CANCELLED order publishes this, and it always has its reason.
        message = events_pb2.OrderCancelled(order=order, reason=order.cancellation_reason)
    return [(message, event.order.name)]


#: Writes orders' events into its outbox table.
OUTBOX = OutboxWriter(orm.outbox, "orders", to_messages)
