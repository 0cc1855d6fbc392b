"""NotificationService over a real socket: production interceptors, generated client, both
databases. Notifications are created the way the event handlers create them, in the
service's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from agora.notifications.v1 import notification_pb2, notification_service_pb2_grpc
from agora.notifications.v1 import notification_service_pb2 as pb
from notifications.adapters.unit_of_work import SqlAlchemyUnitOfWork
from notifications.bootstrap import build
from notifications.config import NotificationsSettings
from notifications.domain import usecases
from notifications.domain.commands import (
    NotifyCommand,
    NotifyOrderConfirmed,
    OrderSummary,
    WelcomeUser,
)
from notifications.domain.model import Money, Notification
from runtime import db
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.status import error_info, field_violations
from tests.unit.notifications.fakes import FakeMailSink

if TYPE_CHECKING:
    from agora.notifications.v1.notification_service_pb2_grpc import NotificationServiceAsyncStub

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Served(NamedTuple):
    stub: NotificationServiceAsyncStub
    engine: AsyncEngine


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    settings = load_server_settings(
        "notifications",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    # No broker: the consumers wait for it in the background, as in production.
    options = NotificationsSettings(maildir=tmp_path / "mail", nats_url="nats://127.0.0.1:1")
    # A sink that always fails and a clock far in the past: nothing gets delivered, so the
    # notifications keep the state the tests create them in.
    service = await build(
        settings, options=options, sink=FakeMailSink(failures=-1), clock=lambda: NOON
    )
    engine = db.create_engine(database_url)
    try:
        async with (
            running(service, settings) as port,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            yield Served(notification_service_pb2_grpc.NotificationServiceStub(channel), engine)
    finally:
        await engine.dispose()


async def handle(engine: AsyncEngine, command: NotifyCommand, now: datetime) -> Notification:
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        notification = await usecases.notify(uow, command, now)
        await uow.commit()
    return notification


async def seed(engine: AsyncEngine) -> list[Notification]:
    """Two sign-ups and three order confirmations of alice, a minute apart."""
    created = [
        await handle(engine, WelcomeUser("s-alice", "alice", "alice@example.com", "Alice"), NOON),
        await handle(engine, WelcomeUser("s-bob", "bob", "bob@example.com", "Bob"), NOON),
    ]
    order = OrderSummary("o-1", "alice", (), Money("EUR", 5))
    for minute in range(1, 4):
        created.append(
            await handle(
                engine,
                NotifyOrderConfirmed(f"c-{minute}", order),
                NOON + timedelta(minutes=minute),
            )
        )
    return created


def failure(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[grpc.StatusCode, str]:
    info = error_info(caught.value)
    assert info.domain == "notifications.agora"
    return caught.value.code(), info.reason


async def test_get_notification_returns_it_as_created(served: Served) -> None:
    created = await handle(
        served.engine, WelcomeUser("s-alice", "alice", "alice@example.com", "Alice"), NOON
    )
    response = await served.stub.GetNotification(pb.GetNotificationRequest(name=created.name))
    got = response.notification
    assert got.name == created.name
    assert (got.recipient, got.recipient_address) == ("users/alice", "alice@example.com")
    assert got.channel == notification_pb2.NOTIFICATION_CHANNEL_EMAIL
    assert got.event_id == "s-alice"
    assert got.event_type == "agora.identity.v1.UserSignedUp"
    assert got.subject == "Welcome to Agora"
    assert got.create_time.ToDatetime(UTC) == NOON
    assert not got.HasField("send_time")


async def test_get_of_a_missing_notification_is_not_found(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.GetNotification(pb.GetNotificationRequest(name="notifications/n-nope"))
    assert failure(caught) == (grpc.StatusCode.NOT_FOUND, "NOTIFICATION_NOT_FOUND")
    assert error_info(caught.value).metadata["notification"] == "notifications/n-nope"


@pytest.mark.parametrize("name", ["", "users/alice", "notifications/Not_Valid"])
async def test_get_with_a_malformed_name_is_invalid(served: Served, name: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.GetNotification(pb.GetNotificationRequest(name=name))
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert field_violations(caught.value) == ["name"]


async def test_list_pages_through_everything_newest_first(served: Served) -> None:
    created = await seed(served.engine)
    names: list[str] = []
    token = ""
    for _ in range(10):
        response = await served.stub.ListNotifications(
            pb.ListNotificationsRequest(page_size=2, page_token=token)
        )
        assert len(response.notifications) <= 2
        names.extend(n.name for n in response.notifications)
        token = response.next_page_token
        if not token:
            break
    expected = sorted(created, key=lambda n: (n.create_time, n.id), reverse=True)
    assert names == [n.name for n in expected]


async def test_list_filters_by_recipient_and_event_type(served: Served) -> None:
    await seed(served.engine)
    bob = await served.stub.ListNotifications(pb.ListNotificationsRequest(recipient="users/bob"))
    assert [n.event_id for n in bob.notifications] == ["s-bob"]
    alice_orders = await served.stub.ListNotifications(
        pb.ListNotificationsRequest(
            recipient="users/alice", event_type="agora.orders.v1.OrderConfirmed"
        )
    )
    assert [n.event_id for n in alice_orders.notifications] == ["c-3", "c-2", "c-1"]
    sign_ups = await served.stub.ListNotifications(
        pb.ListNotificationsRequest(event_type="agora.identity.v1.UserSignedUp")
    )
    assert {n.event_id for n in sign_ups.notifications} == {"s-alice", "s-bob"}
    assert sign_ups.next_page_token == ""


async def test_a_page_token_of_another_filter_is_refused(served: Served) -> None:
    await seed(served.engine)
    first = await served.stub.ListNotifications(pb.ListNotificationsRequest(page_size=1))
    assert first.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ListNotifications(
            pb.ListNotificationsRequest(
                page_size=1, page_token=first.next_page_token, recipient="users/alice"
            )
        )
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")


async def test_a_bad_list_request_names_every_bad_field(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ListNotifications(
            pb.ListNotificationsRequest(
                page_size=-1, recipient="alice", event_type="agora.orders.v1.OrderPlaced"
            )
        )
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    # The contract's rules report the fields in the order the request declares them.
    assert field_violations(caught.value) == ["page_size", "recipient", "event_type"]
