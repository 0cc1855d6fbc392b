"""Notifications as a real process: events in through NATS JetStream, mail out to a maildir.

One ``python -m notifications`` process with its own data directory and a real nats-server;
the test publishes events as identity and orders do (the full envelope) and reads what
came out: the messages in the maildir and the notifications through the gRPC API.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.type import money_pb2

from agora.identity.v1 import events_pb2 as identity_events
from agora.identity.v1 import user_pb2
from agora.notifications.v1 import notification_pb2, notification_service_pb2_grpc
from agora.notifications.v1 import notification_service_pb2 as pb
from agora.orders.v1 import events_pb2 as order_events
from agora.orders.v1 import order_pb2
from tests.support.nats import NatsServer, publish_event
from tests.support.processes import ServiceProcess, running_service
from tests.support.status import error_info

if TYPE_CHECKING:
    from agora.notifications.v1.notification_service_pb2_grpc import NotificationServiceAsyncStub

WAIT_S = 30.0


@pytest.fixture
def notifications_process(tmp_path: Path, nats_server: NatsServer) -> Iterator[ServiceProcess]:
    env = {"NATS_URL": nats_server.url, "NOTIFICATIONS_POLL_SECONDS": "0.2"}
    with running_service("notifications", tmp_path / "data", env=env) as service:
        yield service


@pytest.fixture
async def notifications(
    notifications_process: ServiceProcess,
) -> AsyncIterator[NotificationServiceAsyncStub]:
    async with grpc.aio.insecure_channel(notifications_process.address) as channel:
        yield notification_service_pb2_grpc.NotificationServiceStub(channel)


async def test_a_cancelled_order_reaches_the_maildir_once_and_reads_back_as_sent(
    notifications: NotificationServiceAsyncStub,
    notifications_process: ServiceProcess,
    nats_server: NatsServer,
    tmp_path: Path,
) -> None:
    user = user_pb2.User(name="users/ada", email="ada@example.com", display_name="Ada")
    await publish_event(nats_server.url, "identity", identity_events.UserSignedUp(user=user))
    order = order_pb2.Order(
        name="orders/o-7",
        user="users/ada",
        total=money_pb2.Money(currency_code="EUR", units=12, nanos=500_000_000),
        state=order_pb2.ORDER_STATE_CANCELLED,
        cancellation_reason=order_pb2.CANCELLATION_REASON_PAYMENT_DECLINED,
    )
    cancelled = order_events.OrderCancelled(
        order=order, reason=order_pb2.CANCELLATION_REASON_PAYMENT_DECLINED
    )
    event_id = await publish_event(nats_server.url, "orders", cancelled)

    maildir = tmp_path / "data" / "mail" / "new"
    async with asyncio.timeout(WAIT_S):
        while True:
            if maildir.exists() and len(list(maildir.iterdir())) >= 2:
                break
            await asyncio.sleep(0.05)
    response = await notifications.ListNotifications(
        pb.ListNotificationsRequest(event_type="agora.orders.v1.OrderCancelled")
    )
    [notice] = response.notifications
    assert notice.event_id == event_id
    assert notice.recipient_address == "ada@example.com"
    assert "because the payment was declined" in notice.body
    assert "Total: 12.50 EUR" in notice.body
    message = (maildir / notice.name.removeprefix("notifications/")).read_text()
    assert "Subject: Your order o-7 was cancelled" in message

    async with asyncio.timeout(WAIT_S):
        while True:
            got = await notifications.GetNotification(pb.GetNotificationRequest(name=notice.name))
            if got.notification.state == notification_pb2.NOTIFICATION_STATE_SENT:
                break
            await asyncio.sleep(0.05)
    assert len(list(maildir.iterdir())) == 2  # the welcome and the cancellation, once each
    assert notifications_process.stop(signal.SIGTERM) == 0


async def test_a_missing_notification_is_not_found(
    notifications: NotificationServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await notifications.GetNotification(pb.GetNotificationRequest(name="notifications/n-0"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(caught.value)
    assert (info.domain, info.reason) == ("notifications.agora", "NOTIFICATION_NOT_FOUND")
