"""The event handlers: the service's other entrypoint, driven by the event consumers.

Each handler is as thin as a servicer method: convert the event into a command, await
:func:`~notifications.domain.usecases.notify` inside the consumer's transaction (the
consumer records the event in its inbox and commits), nothing more. One durable
consumer per source stream::

    for subscription in EventHandlers(clock).subscriptions():
        EventConsumer(broker, subscription, uow=units)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from agora.identity.v1 import events_pb2 as identity_events
from agora.orders.v1 import events_pb2 as order_events
from agora.payments.v1 import events_pb2 as payment_events
from notifications.domain import usecases
from notifications.domain.ports import UnitOfWork
from notifications.entrypoints import convert
from runtime.consumer import Event, Subscription


class EventHandlers:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def subscriptions(self) -> list[Subscription]:
        """What notifications listens to: one durable consumer per emitting service."""
        return [
            Subscription(
                "notifications-identity",
                source="identity",
                handlers={identity_events.UserSignedUp: self.user_signed_up},
            ),
            Subscription(
                "notifications-orders",
                source="orders",
                handlers={
                    order_events.OrderConfirmed: self.order_confirmed,
                    order_events.OrderCancelled: self.order_cancelled,
                },
            ),
            Subscription(
                "notifications-payments",
                source="payments",
                handlers={payment_events.PaymentRefunded: self.payment_refunded},
            ),
        ]

    async def user_signed_up(self, event: Event, uow: Any) -> None:
        assert isinstance(event.message, identity_events.UserSignedUp)
        command = convert.welcome_user(event.id, event.message)
        await usecases.notify(_unit(uow), command, self._clock())

    async def order_confirmed(self, event: Event, uow: Any) -> None:
        assert isinstance(event.message, order_events.OrderConfirmed)
        command = convert.notify_order_confirmed(event.id, event.message)
        await usecases.notify(_unit(uow), command, self._clock())

    async def order_cancelled(self, event: Event, uow: Any) -> None:
        assert isinstance(event.message, order_events.OrderCancelled)
        command = convert.notify_order_cancelled(event.id, event.message)
        await usecases.notify(_unit(uow), command, self._clock())

    async def payment_refunded(self, event: Event, uow: Any) -> None:
        assert isinstance(event.message, payment_events.PaymentRefunded)
        command = convert.notify_payment_refunded(event.id, event.message)
        await usecases.notify(_unit(uow), command, self._clock())


def _unit(uow: object) -> UnitOfWork:
    # The consumer types its unit of work as the runtime's; it is the one bootstrap gave it.
    assert isinstance(uow, UnitOfWork)
    return uow
