"""Consuming events: durable pull consumers, the inbox, bounded redelivery, dead letters.

A consuming service declares what it listens to and how it handles each message::

    consumer = EventConsumer(
        broker,
        Subscription("notifications", source="orders", handlers={
            events_pb2.OrderConfirmed: notify_confirmed,   # async (event, uow) -> None
        }),
        uow=lambda: SqlAlchemyUnitOfWork(engine),
    )
    # Service(background=[consumer.run], ...)

and gets, for every message of those types in the source's stream:

- a durable JetStream consumer (named after the subscription, declared idempotently at
  start-up, with explicit acks) that remembers its position across restarts;
- the handler run inside a writing unit of work, with the event's id recorded in the
  inbox *in the same transaction*: a redelivered event is acknowledged without running
  the handler again, so side effects in the database happen once;
- on failure, a redelivery after a backoff (``backoff``), at most ``max_deliver`` times;
  then the event goes to the dead-letter stream (``AGORA_DEAD_LETTERS``, subject
  ``agora.deadletters.<consumer>``) with the reason, and the consumer moves on. A message
  that cannot be decoded goes there at once. ``python -m runtime.deadletters`` lists and
  replays them.

The handler runs with the event's ``traceparent`` as the trace context, so what it
emits continues the trace of the request that started it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from runtime import context
from runtime.broker import (
    DEAD_LETTER_STREAM,
    Broker,
    BrokerUnavailable,
    dead_letter_config,
    raise_if_cancelled,
    stream_config,
    stream_name,
)
from runtime.outbox import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    MSG_ID_HEADER,
    SOURCE_HEADER,
    TIME_HEADER,
    TRACEPARENT_HEADER,
)
from runtime.unit_of_work import UnitOfWork

log = logging.getLogger("agora.consumer")

#: Headers a dead letter carries on top of the event's own.
REASON_HEADER = "Agora-Dead-Letter-Reason"
CONSUMER_HEADER = "Agora-Dead-Letter-Consumer"
SUBJECT_HEADER = "Agora-Dead-Letter-Subject"
DELIVERIES_HEADER = "Agora-Dead-Letter-Deliveries"


@dataclass(frozen=True)
class Event:
    """A received event: its envelope and its decoded contract message."""

    id: str
    type: str
    source: str
    time: str
    traceparent: str
    message: Message
    #: How many times JetStream has delivered it, this time included.
    deliveries: int


Handler = Callable[[Event, Any], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """What one durable consumer listens to: some events of one source's stream."""

    #: The durable consumer's name, unique per consuming service and source, such as
    #: ``notifications-orders``; the inbox records handled events under it.
    name: str
    #: The emitting service, such as ``orders``.
    source: str
    #: A handler per message class, such as ``{events_pb2.OrderConfirmed: handle}``.
    handlers: Mapping[type[Message], Handler] = field(default_factory=dict)

    def subjects(self) -> list[str]:
        return [cls.DESCRIPTOR.full_name for cls in self.handlers]


class PoisonEvent(Exception):
    """A message that no retry can handle: no envelope, an unknown type, undecodable."""


class EventConsumer:
    def __init__(
        self,
        broker: Broker,
        subscription: Subscription,
        uow: Callable[[], UnitOfWork],
        *,
        max_deliver: int = 5,
        backoff: Sequence[float] = (0.5, 2.0, 5.0, 10.0),
        batch: int = 16,
        ack_wait: float = 30.0,
        fetch_wait: float = 1.0,
        retry_delay: float = 1.0,
    ) -> None:
        self._broker = broker
        self.subscription = subscription
        self._uow = uow
        self._max_deliver = max_deliver
        self._backoff = list(backoff)
        self._batch = batch
        self._ack_wait = ack_wait
        self._fetch_wait = fetch_wait
        self._retry_delay = retry_delay
        self._types = {cls.DESCRIPTOR.full_name: cls for cls in subscription.handlers}
        #: Events handled (duplicates dropped by the inbox not counted), and dead-lettered.
        self.handled = 0
        self.dead_lettered = 0

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.subscription.name,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            # One more than ours: the last delivery is the one that dead-letters it.
            max_deliver=self._max_deliver + 1,
            filter_subjects=self.subscription.subjects(),
            max_ack_pending=self._batch * 4,
        )

    async def run(self) -> None:
        """Consumes until cancelled; reconnects and carries on when the broker comes back."""
        while True:
            try:
                await self._consume()
            except BrokerUnavailable as error:
                raise_if_cancelled()
                log.warning(
                    "consumer waiting for the broker",
                    extra={"consumer": self.subscription.name, "error": str(error)},
                )
                await asyncio.sleep(self._retry_delay)

    async def _consume(self) -> None:
        source = self.subscription.source
        await self._broker.ensure_stream(stream_config(source))
        await self._broker.ensure_stream(dead_letter_config())
        jetstream = await self._broker.jetstream()
        try:
            await jetstream.add_consumer(stream_name(source), self.consumer_config())
            pull = await jetstream.pull_subscribe_bind(
                self.subscription.name, stream=stream_name(source)
            )
        except Exception as error:
            raise BrokerUnavailable(f"cannot bind consumer: {error}") from error
        try:
            while True:
                try:
                    messages = await pull.fetch(self._batch, timeout=self._fetch_wait)
                except TimeoutError:
                    continue
                except Exception as error:
                    raise BrokerUnavailable(f"fetch failed: {error}") from error
                for message in messages:
                    await self.handle(message)
        finally:
            # Left subscribed, its inbox would linger on the connection, and closing the
            # broker would wait for the drain timeout: the client library counts the
            # status replies a fetch discards as never processed.
            with contextlib.suppress(Exception):
                await pull.unsubscribe()

    async def handle(self, message: Msg) -> None:
        """Handles one delivery: once per event, redelivered on failure, then dead letter."""
        deliveries = message.metadata.num_delivered
        try:
            event = self._decode(message, deliveries)
        except PoisonEvent as error:
            await self._dead_letter(message, f"poison: {error}", deliveries)
            return
        handler = self.subscription.handlers[type(event.message)]
        try:
            await self._run_handler(handler, event)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            if deliveries >= self._max_deliver:
                await self._dead_letter(message, reason, deliveries)
                return
            delay = self._backoff[min(deliveries, len(self._backoff)) - 1]
            log.warning(
                "event handling failed; redelivering",
                extra={
                    "consumer": self.subscription.name,
                    "event_id": event.id,
                    "event_type": event.type,
                    "deliveries": deliveries,
                    "delay_seconds": delay,
                    "error": reason,
                },
            )
            with contextlib.suppress(Exception):  # unacked, it comes back after ack_wait
                await message.nak(delay=delay)
            return
        with contextlib.suppress(Exception):  # unacked, it comes back; the inbox drops it
            await message.ack()

    async def _run_handler(self, handler: Handler, event: Event) -> None:
        token = context.use_traceparent(event.traceparent)
        try:
            async with self._uow().writing() as uow:
                if await uow.inbox.seen(self.subscription.name, event.id):
                    return
                await handler(event, uow)
                await uow.inbox.add(self.subscription.name, event.id)
                await uow.commit()
                self.handled += 1
        finally:
            context.reset_traceparent(token)

    def _decode(self, message: Msg, deliveries: int) -> Event:
        headers = message.headers or {}
        event_id = headers.get(EVENT_ID_HEADER, "")
        event_type = headers.get(EVENT_TYPE_HEADER, message.subject)
        if not event_id:
            raise PoisonEvent(f"no {EVENT_ID_HEADER} header")
        cls = self._types.get(event_type)
        if cls is None:
            raise PoisonEvent(f"{event_type!r} is not an event this consumer handles")
        try:
            decoded = cls.FromString(message.data)
        except DecodeError as error:
            raise PoisonEvent(f"cannot decode {event_type}: {error}") from error
        return Event(
            id=event_id,
            type=event_type,
            source=headers.get(SOURCE_HEADER, ""),
            time=headers.get(TIME_HEADER, ""),
            traceparent=headers.get(TRACEPARENT_HEADER, ""),
            message=decoded,
            deliveries=deliveries,
        )

    async def _dead_letter(self, message: Msg, reason: str, deliveries: int) -> None:
        """Moves the event to the dead-letter stream, then stops its redelivery."""
        headers = dict(message.headers or {})
        sequence = message.metadata.sequence.stream
        event_id = headers.get(EVENT_ID_HEADER) or f"seq-{sequence}"
        headers.update(
            {
                # One dead letter per message and consumer, even if this publish repeats.
                # The stream sequence keeps a replayed event (a new message) that fails
                # again from being dropped as a duplicate of its first dead letter.
                MSG_ID_HEADER: f"{self.subscription.name}:{event_id}:{sequence}",
                REASON_HEADER: reason[:1000],
                CONSUMER_HEADER: self.subscription.name,
                SUBJECT_HEADER: message.subject,
                DELIVERIES_HEADER: str(deliveries),
            }
        )
        try:
            jetstream = await self._broker.jetstream()
            await jetstream.publish(
                f"agora.deadletters.{self.subscription.name}",
                message.data,
                stream=DEAD_LETTER_STREAM,
                headers=headers,
            )
        except Exception as error:
            log.warning(
                "cannot store a dead letter yet; redelivering",
                extra={"consumer": self.subscription.name, "error": str(error)},
            )
            with contextlib.suppress(Exception):
                await message.nak(delay=self._backoff[-1])
            return
        with contextlib.suppress(Exception):
            await message.term()
        self.dead_lettered += 1
        log.error(
            "event dead-lettered",
            extra={
                "consumer": self.subscription.name,
                "event_id": event_id,
                "subject": message.subject,
                "deliveries": deliveries,
                "reason": reason,
            },
        )
