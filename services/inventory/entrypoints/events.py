"""The events inventory consumes: OrderCancelled, to release what a cancelled order holds.

The checkout releases the reservation itself when it cancels an order; this consumer is
the second line of defence (for instance if the saga's release keeps failing), and is
harmless when the saga got there first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from agora.orders.v1 import events_pb2
from inventory.domain import usecases
from inventory.domain.ports import UnitOfWork
from runtime.consumer import Event, Subscription

#: The durable consumer's name, which the inbox records handled events under.
CONSUMER = "inventory-orders"


def subscription(clock: Callable[[], datetime]) -> Subscription:
    async def on_order_cancelled(event: Event, uow: UnitOfWork) -> None:
        assert isinstance(event.message, events_pb2.OrderCancelled)
        order_id = event.message.order.name.removeprefix("orders/")
        await usecases.release_for_cancelled_order(uow, order_id, clock())

    return Subscription(
        CONSUMER, source="orders", handlers={events_pb2.OrderCancelled: on_order_cancelled}
    )
