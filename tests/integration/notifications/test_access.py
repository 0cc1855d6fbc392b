"""Who may see which notifications, over a real socket.

Users see the notifications sent to them; admins and other Agora services see everyone's.
Notifications runs in-process with loopback trusted, as ``make run`` has it: a call with
an access token is the user the token names (tokens in identity's exact format, signed by
a key the service is handed instead of identity's), and a call without one is the local
operator, which counts as another Agora service. Notifications are created the way the
event handlers create them, in the service's own database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from agora.notifications.v1 import notification_service_pb2 as pb
from agora.notifications.v1 import notification_service_pb2_grpc
from identity.domain.model import ADMIN, CUSTOMER
from notifications.adapters.unit_of_work import SqlAlchemyUnitOfWork
from notifications.bootstrap import build
from notifications.config import NotificationsSettings
from notifications.domain import usecases
from notifications.domain.commands import WelcomeUser
from notifications.domain.model import Notification
from runtime import db
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.status import error_info
from tests.support.tokens import Tokens
from tests.unit.notifications.fakes import FakeMailSink

if TYPE_CHECKING:
    from agora.notifications.v1.notification_service_pb2_grpc import NotificationServiceAsyncStub

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Served:
    def __init__(self, stub: NotificationServiceAsyncStub, tokens: Tokens) -> None:
        self.stub = stub
        self.who = {
            "ada": tokens.of("users/ada", CUSTOMER),
            "bob": tokens.of("users/bob", CUSTOMER),
            "admin": tokens.of("users/root", CUSTOMER, ADMIN),
            "service": (),  # the local operator
        }

    async def get(self, name: str, caller: str) -> str:
        request = pb.GetNotificationRequest(name=name)
        response = await self.stub.GetNotification(request, metadata=self.who[caller])
        return response.notification.name

    async def listed(self, caller: str, recipient: str = "") -> list[str]:
        request = pb.ListNotificationsRequest(recipient=recipient)
        response = await self.stub.ListNotifications(request, metadata=self.who[caller])
        return [notification.name for notification in response.notifications]


async def welcome(database_url: str, user_id: str) -> Notification:
    engine = db.create_engine(database_url)
    try:
        command = WelcomeUser(f"s-{user_id}", user_id, f"{user_id}@example.com", user_id.title())
        async with SqlAlchemyUnitOfWork(engine).writing() as uow:
            notification = await usecases.notify(uow, command, NOON)
            await uow.commit()
    finally:
        await engine.dispose()
    return notification


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Access rules are the same on any database: SQLite only."""
    return f"sqlite+aiosqlite:///{tmp_path / 'notifications.db'}"


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
    # No broker, and a sink that always fails: the notifications stay as created.
    options = NotificationsSettings(maildir=tmp_path / "mail", nats_url="nats://127.0.0.1:1")
    service = await build(
        settings, options=options, sink=FakeMailSink(failures=-1), clock=lambda: NOON
    )
    tokens = Tokens()
    service.jwks = tokens.jwks
    async with (
        running(service, settings) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield Served(notification_service_pb2_grpc.NotificationServiceStub(channel), tokens)


def refusal(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[object, ...]:
    info = error_info(caught.value)
    return caught.value.code(), info.reason, info.domain, dict(info.metadata)


def not_owner(**metadata: str) -> tuple[object, ...]:
    return grpc.StatusCode.PERMISSION_DENIED, "NOT_RESOURCE_OWNER", "notifications.agora", metadata


async def test_a_user_gets_the_notifications_sent_to_them_and_no_one_elses(
    served: Served, database_url: str
) -> None:
    ada = (await welcome(database_url, "ada")).name
    for caller in ("ada", "admin", "service"):
        assert await served.get(ada, caller) == ada, caller
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.get(ada, "bob")
    assert refusal(caught) == not_owner(notification=ada)
    # Permission before existence (AIP-211): to a user, a missing notification is not theirs.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.get("notifications/nope", "bob")
    assert refusal(caught) == not_owner(notification="notifications/nope")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.get("notifications/nope", "admin")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_users_list_holds_only_the_notifications_sent_to_them(
    served: Served, database_url: str
) -> None:
    ada = (await welcome(database_url, "ada")).name
    bob = (await welcome(database_url, "bob")).name
    assert await served.listed("ada") == await served.listed("ada", "users/ada") == [ada]
    assert await served.listed("bob") == [bob]
    for caller in ("admin", "service"):
        assert sorted(await served.listed(caller)) == sorted([ada, bob]), caller
        assert await served.listed(caller, "users/bob") == [bob], caller
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.listed("ada", "users/bob")
    assert refusal(caught) == not_owner(recipient="users/bob")
