"""The event path for real: events published to NATS JetStream with their envelope, the
service's durable consumers, its database, the sender and a maildir, and NotificationSent
published back through the outbox relay. Both databases.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import grpc
import nats
import pytest
from google.protobuf.message import Message
from google.type import money_pb2
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from agora.identity.v1 import events_pb2 as identity_events
from agora.identity.v1 import user_pb2
from agora.notifications.v1 import events_pb2 as notification_events
from agora.notifications.v1 import notification_pb2, notification_service_pb2_grpc
from agora.notifications.v1 import notification_service_pb2 as pb
from agora.orders.v1 import events_pb2 as order_events
from agora.orders.v1 import order_pb2
from notifications.bootstrap import build
from notifications.config import NotificationsSettings
from runtime.broker import DEAD_LETTER_STREAM, Broker, stream_name
from runtime.config import load_server_settings
from runtime.consumer import REASON_HEADER
from runtime.outbox import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    MSG_ID_HEADER,
    SOURCE_HEADER,
    TIME_HEADER,
    TRACEPARENT_HEADER,
    new_traceparent,
)
from runtime.server import running
from tests.support.nats import NatsServer

if TYPE_CHECKING:
    from agora.notifications.v1.notification_service_pb2_grpc import NotificationServiceAsyncStub

WAIT_S = 30.0
POLL_S = 0.05
T = TypeVar("T")

SIGNED_UP = identity_events.UserSignedUp(
    user=user_pb2.User(name="users/alice", email="alice@example.com", display_name="Alice")
)
CONFIRMED = order_events.OrderConfirmed(
    order=order_pb2.Order(
        name="orders/o-1",
        user="users/alice",
        lines=[
            order_pb2.OrderLine(
                product="products/tea",
                display_name="Green tea",
                quantity=2,
                unit_price=money_pb2.Money(currency_code="EUR", units=4, nanos=500_000_000),
                line_total=money_pb2.Money(currency_code="EUR", units=9),
            )
        ],
        total=money_pb2.Money(currency_code="EUR", units=9),
        state=order_pb2.ORDER_STATE_CONFIRMED,
    )
)


@dataclass
class Shop:
    """The notifications service with a broker, and a client of each."""

    stub: NotificationServiceAsyncStub
    maildir: Path
    jetstream: JetStreamContext
    #: Where the broker is, for the publishers.
    nats_url: str
    #: One publisher per emitting service, closed by the fixture.
    brokers: dict[str, Broker]

    async def publish(
        self, source: str, message: Message, event_id: str, msg_id: str | None = None
    ) -> None:
        """Publishes ``message`` as ``source`` does, with the full event envelope."""
        subject = message.DESCRIPTOR.full_name
        headers = {
            MSG_ID_HEADER: msg_id or event_id,
            EVENT_ID_HEADER: event_id,
            EVENT_TYPE_HEADER: subject,
            SOURCE_HEADER: source,
            TIME_HEADER: datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            TRACEPARENT_HEADER: new_traceparent(),
        }
        broker = self.brokers.setdefault(source, Broker(self.nats_url, source))
        assert await broker.publish(subject, message.SerializeToString(), headers)

    async def notifications(self, event_type: str = "") -> list[notification_pb2.Notification]:
        response = await self.stub.ListNotifications(
            pb.ListNotificationsRequest(event_type=event_type)
        )
        return list(response.notifications)

    def messages(self) -> list[str]:
        new = self.maildir / "new"
        return sorted(p.name for p in new.iterdir()) if new.exists() else []

    async def consumed_everything(self, source: str, durable: str) -> bool:
        """True once the durable consumer acknowledged every message of the stream."""
        stream = await self.jetstream.stream_info(stream_name(source))
        try:
            consumer = await self.jetstream.consumer_info(stream_name(source), durable)
        except NotFoundError:
            return False
        return consumer.ack_floor is not None and (
            consumer.ack_floor.stream_seq == stream.state.last_seq
        )


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Polls ``probe`` until it returns something truthy, for at most WAIT_S."""
    async with asyncio.timeout(WAIT_S):
        while True:
            result = await probe()
            if result:
                return result
            await asyncio.sleep(POLL_S)
    raise AssertionError(f"never happened: {what}")  # pragma: no cover - timeout raises


@pytest.fixture
async def shop(database_url: str, tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[Shop]:
    settings = load_server_settings(
        "notifications",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    options = NotificationsSettings(
        maildir=tmp_path / "mail",
        nats_url=nats_server.url,
        poll_interval=0.1,
        max_deliver=3,
        redelivery_backoff=(0.2,),
    )
    service = await build(settings, options=options)
    client: Client = await nats.connect(nats_server.url)
    brokers: dict[str, Broker] = {}
    try:
        async with (
            running(service, settings) as port,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            yield Shop(
                notification_service_pb2_grpc.NotificationServiceStub(channel),
                tmp_path / "mail",
                client.jetstream(),
                nats_server.url,
                brokers,
            )
    finally:
        for broker in brokers.values():
            await broker.close()
        await client.close()


async def test_a_sign_up_then_an_order_gives_one_notification_and_one_message_each(
    shop: Shop,
) -> None:
    await shop.publish("identity", SIGNED_UP, "event-signup")
    await shop.publish("orders", CONFIRMED, "event-confirmed")

    async def sent_confirmation() -> list[notification_pb2.Notification]:
        found = await shop.notifications("agora.orders.v1.OrderConfirmed")
        return [n for n in found if n.state == notification_pb2.NOTIFICATION_STATE_SENT]

    [confirmation] = await eventually(sent_confirmation, "the confirmation is sent")
    assert confirmation.recipient_address == "alice@example.com"
    assert confirmation.event_id == "event-confirmed"
    assert "2 x Green tea at 4.50 EUR: 9.00 EUR" in confirmation.body
    assert confirmation.attempt_count == 1
    assert confirmation.HasField("send_time")
    everything = await shop.notifications()
    assert sorted(n.event_type for n in everything) == [
        "agora.identity.v1.UserSignedUp",
        "agora.orders.v1.OrderConfirmed",
    ]
    confirmation_id = confirmation.name.removeprefix("notifications/")
    assert confirmation_id in shop.messages()
    assert len([m for m in shop.messages() if m == confirmation_id]) == 1

    async def published() -> bytes | None:
        try:
            message = await shop.jetstream.get_last_msg(
                stream_name("notifications"), "agora.notifications.v1.NotificationSent"
            )
        except NotFoundError:
            return None
        return message.data

    data = await eventually(published, "NotificationSent is published")
    event = notification_events.NotificationSent.FromString(data)
    assert event.notification.state == notification_pb2.NOTIFICATION_STATE_SENT


async def test_the_same_event_delivered_twice_is_notified_once(shop: Shop) -> None:
    await shop.publish("identity", SIGNED_UP, "event-signup")
    # The same event id twice, as a republishing relay after the broker's duplicate window
    # would send it: JetStream keeps both messages, the service must notify once.
    await shop.publish("orders", CONFIRMED, "event-confirmed", msg_id="publish-1")
    await shop.publish("orders", CONFIRMED, "event-confirmed", msg_id="publish-2")
    stream = await shop.jetstream.stream_info(stream_name("orders"))
    assert stream.state.messages == 2

    async def all_consumed() -> bool:
        return await shop.consumed_everything("orders", "notifications-orders")

    await eventually(all_consumed, "both deliveries are acknowledged")

    async def everything_sent() -> list[notification_pb2.Notification]:
        found = await shop.notifications()
        done = all(n.state == notification_pb2.NOTIFICATION_STATE_SENT for n in found)
        return found if done and len(found) == 2 else []

    found = await eventually(everything_sent, "both notifications are sent")
    assert [n.event_id for n in found if n.event_type.endswith("OrderConfirmed")] == [
        "event-confirmed"
    ]
    assert len(shop.messages()) == 2  # the welcome and one confirmation


async def test_an_order_before_its_sign_up_waits_for_it(shop: Shop) -> None:
    await shop.publish("orders", CONFIRMED, "event-confirmed")

    async def redelivered() -> bool:
        try:
            consumer = await shop.jetstream.consumer_info(
                stream_name("orders"), "notifications-orders"
            )
        except NotFoundError:
            return False
        return (consumer.num_redelivered or 0) >= 1

    await eventually(redelivered, "the order event is redelivered after failing once")
    assert await shop.notifications() == []
    await shop.publish("identity", SIGNED_UP, "event-signup")

    async def confirmation() -> list[notification_pb2.Notification]:
        return await shop.notifications("agora.orders.v1.OrderConfirmed")

    [found] = await eventually(confirmation, "the confirmation is created")
    assert found.recipient_address == "alice@example.com"


async def test_an_order_of_a_user_never_seen_becomes_a_dead_letter(shop: Shop) -> None:
    await shop.publish("orders", CONFIRMED, "event-confirmed")

    async def dead_letter() -> dict[str, str] | None:
        try:
            message = await shop.jetstream.get_last_msg(
                DEAD_LETTER_STREAM, "agora.deadletters.notifications-orders"
            )
        except NotFoundError:
            return None
        return message.headers

    headers = await eventually(dead_letter, "the event is dead-lettered")
    assert headers[EVENT_ID_HEADER] == "event-confirmed"
    assert headers[REASON_HEADER].startswith("RecipientUnknown: ")
    assert "users/alice" in headers[REASON_HEADER]
    assert await shop.notifications() == []
    assert shop.messages() == []


async def test_stopping_the_service_closes_every_broker_connection(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    settings = load_server_settings(
        "notifications",
        environ={"AGORA_PORT": "0", "AGORA_DATA_DIR": str(tmp_path), "AGORA_GRACE_SECONDS": "1"},
    )
    options = NotificationsSettings(maildir=tmp_path / "mail", nats_url=nats_server.url)
    service = await build(settings, options=options)

    def connections() -> int:
        with urllib.request.urlopen(f"{nats_server.monitor_url}/connz", timeout=5) as response:
            count: int = json.load(response)["num_connections"]
        return count

    async with running(service, settings):

        async def consumers_connected() -> bool:
            # The three consumers and the relay share the service's one connection.
            return await asyncio.to_thread(connections) == 1

        await eventually(consumers_connected, "the consumers' shared connection is open")

    async def none_left() -> bool:
        return await asyncio.to_thread(connections) == 0

    await eventually(none_left, "every connection is closed")
