"""Notifications' SQLAlchemy adapters against SQLite and PostgreSQL, through the use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from agora.notifications.v1 import events_pb2, notification_pb2
from notifications.adapters import orm
from notifications.adapters.sinks import SmtpSink
from notifications.adapters.unit_of_work import SqlAlchemyUnitOfWork
from notifications.bootstrap import MIGRATIONS
from notifications.domain import usecases
from notifications.domain.commands import (
    NotifyCommand,
    NotifyOrderConfirmed,
    OrderSummary,
    WelcomeUser,
)
from notifications.domain.errors import RecipientUnknown
from notifications.domain.model import (
    Contact,
    EventType,
    Money,
    Notification,
    NotificationQuery,
    NotificationState,
    RetryPolicy,
)
from runtime import db
from tests.integration.notifications.smtp_server import smtp_server
from tests.support.database import migrated_engine, schema_differences
from tests.unit.notifications.fakes import FakeMailSink

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WELCOME_ALICE = WelcomeUser("signup-alice", "alice", "alice@example.com", "Alice")
ORDER = OrderSummary("o-1", "alice", (), Money("EUR", 12, 500_000_000))


class Clock:
    def __init__(self, now: datetime = NOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


async def test_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    assert await schema_differences(engine, orm.metadata) == []


async def test_migrating_twice_changes_nothing(engine: AsyncEngine) -> None:
    await db.migrate(engine, MIGRATIONS)


async def handle(engine: AsyncEngine, command: NotifyCommand, now: datetime = NOON) -> Notification:
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        notification = await usecases.notify(uow, command, now)
        await uow.commit()
    return notification


async def test_a_notification_round_trips(engine: AsyncEngine) -> None:
    created = await handle(engine, WELCOME_ALICE)
    stored = await usecases.get_notification(
        SqlAlchemyUnitOfWork(engine), created.id, restricted_to=None
    )
    assert stored == created
    async with SqlAlchemyUnitOfWork(engine) as uow:
        assert await uow.users.get("alice") == Contact("alice", "alice@example.com", "Alice")
        assert await uow.notifications.get_by_event("signup-alice") == created


async def test_the_same_event_twice_stores_one_notification(engine: AsyncEngine) -> None:
    first = await handle(engine, WELCOME_ALICE)
    assert await handle(engine, WELCOME_ALICE, NOON + timedelta(minutes=1)) == first
    async with engine.connect() as connection:
        count = (
            await connection.execute(sa.select(sa.func.count()).select_from(orm.notifications))
        ).scalar_one()
    assert count == 1


async def test_the_database_refuses_a_second_notification_for_one_event(
    engine: AsyncEngine,
) -> None:
    first = await handle(engine, WELCOME_ALICE)
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        other = Notification.create(
            event_id=first.event_id,
            event_type=EventType.USER_SIGNED_UP,
            contact=Contact("bob", "bob@example.com", "Bob"),
            subject="s",
            body="b",
            now=NOON,
        )
        with pytest.raises(IntegrityError):
            await uow.notifications.add(replace(other, id="n-other"))


async def test_an_unknown_recipient_rolls_back_everything(engine: AsyncEngine) -> None:
    with pytest.raises(RecipientUnknown):
        await handle(engine, NotifyOrderConfirmed("confirmed-1", ORDER))
    page = await usecases.list_notifications(
        SqlAlchemyUnitOfWork(engine), NotificationQuery(10), restricted_to=None
    )
    assert page.items == []


async def test_a_later_sign_up_replaces_the_address(engine: AsyncEngine) -> None:
    await handle(engine, WELCOME_ALICE)
    await handle(engine, WelcomeUser("signup-again", "alice", "alice@new.example", "Al"))
    confirmed = await handle(engine, NotifyOrderConfirmed("confirmed-1", ORDER))
    assert confirmed.recipient_address == "alice@new.example"
    assert "Hello Al," in confirmed.body


async def test_listing_pages_newest_first_with_filters(engine: AsyncEngine) -> None:
    await handle(engine, WELCOME_ALICE, NOON)
    await handle(engine, WelcomeUser("signup-bob", "bob", "bob@example.com", "Bob"), NOON)
    for minute in range(1, 4):
        await handle(
            engine,
            NotifyOrderConfirmed(f"confirmed-{minute}", ORDER),
            NOON + timedelta(minutes=minute),
        )
    seen: list[Notification] = []
    query = NotificationQuery(2)
    while True:
        page = await usecases.list_notifications(
            SqlAlchemyUnitOfWork(engine), query, restricted_to=None
        )
        seen.extend(page.items)
        if page.next_after is None:
            break
        query = NotificationQuery(2, after=page.next_after)
    assert len(seen) == 5
    assert [(n.create_time, n.id) for n in seen] == sorted(
        ((n.create_time, n.id) for n in seen), reverse=True
    )
    alice_orders = await usecases.list_notifications(
        SqlAlchemyUnitOfWork(engine),
        NotificationQuery(10, "alice", EventType.ORDER_CONFIRMED),
        restricted_to=None,
    )
    assert [n.event_id for n in alice_orders.items] == ["confirmed-3", "confirmed-2", "confirmed-1"]
    bob = await usecases.list_notifications(
        SqlAlchemyUnitOfWork(engine), NotificationQuery(10, "bob"), restricted_to=None
    )
    assert [n.event_id for n in bob.items] == ["signup-bob"]


async def unsent_events(engine: AsyncEngine) -> list[tuple[str, bytes]]:
    outbox = orm.outbox
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.event_type, outbox.c.payload)
            .where(outbox.c.sent_time.is_(None))
            .order_by(outbox.c.position)
        )
        return [(row.event_type, row.payload) for row in rows]


async def test_a_delivery_marks_sent_and_leaves_notification_sent_in_the_outbox(
    engine: AsyncEngine,
) -> None:
    created = await handle(engine, WELCOME_ALICE)
    sink = FakeMailSink()
    clock = Clock(NOON + timedelta(seconds=2))
    assert (
        await usecases.deliver_due(lambda: SqlAlchemyUnitOfWork(engine), sink, clock, RetryPolicy())
        == 1
    )
    assert (
        await usecases.deliver_due(lambda: SqlAlchemyUnitOfWork(engine), sink, clock, RetryPolicy())
        == 0
    )
    sent = await usecases.get_notification(
        SqlAlchemyUnitOfWork(engine), created.id, restricted_to=None
    )
    assert (sent.state, sent.attempt_count, sent.send_time) == (
        NotificationState.SENT,
        1,
        clock.now,
    )
    [(event_type, payload)] = await unsent_events(engine)
    assert event_type == "agora.notifications.v1.NotificationSent"
    event = events_pb2.NotificationSent.FromString(payload)
    assert event.notification.name == created.name
    assert event.notification.state == notification_pb2.NOTIFICATION_STATE_SENT


async def test_a_refusing_smtp_server_makes_the_notification_fail_after_five_attempts(
    engine: AsyncEngine,
) -> None:
    created = await handle(engine, WELCOME_ALICE)
    clock = Clock()
    policy = RetryPolicy(initial=timedelta(seconds=1), maximum=timedelta(seconds=8))
    async with smtp_server(refuse=True) as server:
        sink = SmtpSink("127.0.0.1", server.port, timeout=5.0)
        attempts = 0
        for _ in range(10):
            attempts += await usecases.deliver_due(
                lambda: SqlAlchemyUnitOfWork(engine), sink, clock, policy
            )
            clock.now += timedelta(seconds=8)
    assert attempts == 5
    failed = await usecases.get_notification(
        SqlAlchemyUnitOfWork(engine), created.id, restricted_to=None
    )
    assert (failed.state, failed.attempt_count) == (NotificationState.FAILED, 5)
    assert failed.last_error.startswith("SMTPSenderRefused")
    assert "sender refused" in failed.last_error
    assert failed.send_time is None
    assert server.messages == []
    assert await unsent_events(engine) == []
