"""Notifications' use cases over in-memory fakes: one notification per event, delivery, reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from notifications.domain import usecases
from notifications.domain.commands import (
    NotifyCommand,
    NotifyOrderCancelled,
    NotifyOrderConfirmed,
    NotifyPaymentRefunded,
    OrderLine,
    OrderSummary,
    WelcomeUser,
)
from notifications.domain.errors import (
    ActingForAnotherUser,
    NotificationNotFound,
    NotNotificationRecipient,
    RecipientUnknown,
)
from notifications.domain.events import NotificationSent
from notifications.domain.model import (
    EventType,
    Money,
    Notification,
    NotificationQuery,
    NotificationState,
    RetryPolicy,
)
from runtime.errors import PermissionDenied
from tests.unit.notifications.fakes import FakeMailSink, FakeStore, FakeUnitOfWork

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WELCOME_ALICE = WelcomeUser("signup-1", "alice", "alice@example.com", "Alice")
TEA_ORDER = OrderSummary(
    order_id="o-42",
    user_id="alice",
    lines=(
        OrderLine("Green tea", 2, Money("EUR", 4, 500_000_000), Money("EUR", 9)),
        OrderLine("Teapot", 1, Money("EUR", 30), Money("EUR", 30)),
    ),
    total=Money("EUR", 39),
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def handle(store: FakeStore, command: NotifyCommand, now: datetime = NOON) -> Notification:
    """What an event handler does: notify inside a writing unit of work, then commit."""
    async with FakeUnitOfWork(store).writing() as uow:
        notification = await usecases.notify(uow, command, now)
        await uow.commit()
    return notification


def units(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


async def test_a_sign_up_records_the_address_and_greets_the_user() -> None:
    store = FakeStore()
    notification = await handle(store, WELCOME_ALICE)
    assert store.users["alice"].email == "alice@example.com"
    assert notification.event_type is EventType.USER_SIGNED_UP
    assert notification.recipient_address == "alice@example.com"
    assert notification.subject == "Welcome to Agora"
    assert "Hello Alice" in notification.body
    assert list(store.notifications.values()) == [notification]


async def test_an_order_confirmation_lists_the_lines_and_the_total() -> None:
    store = FakeStore()
    await handle(store, WELCOME_ALICE)
    notification = await handle(store, NotifyOrderConfirmed("confirmed-1", TEA_ORDER))
    assert notification.recipient == "users/alice"
    assert notification.subject == "Your order o-42 is confirmed"
    assert "2 x Green tea at 4.50 EUR: 9.00 EUR" in notification.body
    assert "1 x Teapot at 30.00 EUR: 30.00 EUR" in notification.body
    assert "Total: 39.00 EUR" in notification.body


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("OUT_OF_STOCK", "because some of the items were out of stock"),
        ("CUSTOMER_REQUESTED", "because you asked us to cancel it"),
        ("", "because of a problem during checkout"),
    ],
)
async def test_a_cancellation_says_why_in_words(reason: str, words: str) -> None:
    store = FakeStore()
    await handle(store, WELCOME_ALICE)
    notification = await handle(store, NotifyOrderCancelled("cancelled-1", TEA_ORDER, reason))
    assert notification.subject == "Your order o-42 was cancelled"
    assert words in notification.body
    assert "OUT_OF_STOCK" not in notification.body


async def test_a_refund_notice_gives_the_amount_refunded() -> None:
    store = FakeStore()
    await handle(store, WELCOME_ALICE)
    refund = NotifyPaymentRefunded(
        "refund-1", "p-1", "o-42", "alice", Money("EUR", 9), Money("EUR", 9), False
    )
    notification = await handle(store, refund)
    assert notification.subject == "You have been refunded 9.00 EUR"
    assert "refunded 9.00 EUR of your payment payments/p-1 for order orders/o-42" in (
        notification.body
    )
    full = NotifyPaymentRefunded(
        "refund-2", "p-1", "o-42", "alice", Money("EUR", 30), Money("EUR", 39), True
    )
    assert "fully refunded (39.00 EUR in all)" in (await handle(store, full)).body


async def test_the_same_event_twice_creates_one_notification() -> None:
    store = FakeStore()
    await handle(store, WELCOME_ALICE)
    first = await handle(store, NotifyOrderConfirmed("confirmed-1", TEA_ORDER))
    again = await handle(
        store, NotifyOrderConfirmed("confirmed-1", TEA_ORDER), NOON + timedelta(minutes=1)
    )
    assert again == first
    assert len(store.notifications) == 2  # the welcome and the confirmation


async def test_an_event_for_a_user_not_signed_up_yet_fails_and_changes_nothing() -> None:
    store = FakeStore()
    with pytest.raises(RecipientUnknown) as caught:
        await handle(store, NotifyOrderConfirmed("confirmed-1", TEA_ORDER))
    assert caught.value.reason == "RECIPIENT_UNKNOWN"
    assert "users/alice" in str(caught.value)
    assert store.notifications == {}
    # Redelivered after the sign-up arrived, the same event succeeds.
    await handle(store, WELCOME_ALICE)
    notification = await handle(store, NotifyOrderConfirmed("confirmed-1", TEA_ORDER))
    assert notification.recipient_address == "alice@example.com"


async def test_get_and_list_notifications() -> None:
    store = FakeStore()
    await handle(store, WELCOME_ALICE, NOON)
    await handle(store, WelcomeUser("signup-2", "bob", "bob@example.com", "Bob"), NOON)
    confirmed = await handle(
        store, NotifyOrderConfirmed("confirmed-1", TEA_ORDER), NOON + timedelta(seconds=1)
    )
    assert (
        await usecases.get_notification(units(store), confirmed.id, restricted_to=None) == confirmed
    )
    with pytest.raises(NotificationNotFound):
        await usecases.get_notification(units(store), "n-missing", restricted_to=None)

    page = await usecases.list_notifications(units(store), NotificationQuery(2), restricted_to=None)
    assert page.items[0] == confirmed  # newest first
    assert page.next_after is not None
    rest = await usecases.list_notifications(
        units(store), NotificationQuery(2, after=page.next_after), restricted_to=None
    )
    assert len(rest.items) == 1
    assert rest.next_after is None

    alice = await usecases.list_notifications(
        units(store), NotificationQuery(10, "alice"), restricted_to=None
    )
    assert {n.event_type for n in alice.items} == {
        EventType.USER_SIGNED_UP,
        EventType.ORDER_CONFIRMED,
    }
    sign_ups = NotificationQuery(10, event_type=EventType.USER_SIGNED_UP)
    assert (
        len((await usecases.list_notifications(units(store), sign_ups, restricted_to=None)).items)
        == 2
    )


def refusal(caught: pytest.ExceptionInfo[PermissionDenied]) -> tuple[object, ...]:
    return (caught.value.code, caught.value.reason, caught.value.metadata)


def not_owner(**metadata: str) -> tuple[object, ...]:
    return (grpc.StatusCode.PERMISSION_DENIED, "NOT_RESOURCE_OWNER", metadata)


async def test_a_user_sees_only_the_notifications_sent_to_them() -> None:
    # ``restricted_to`` is the user a caller is, when it may see no one else's
    # notifications; None (the test above) is an admin or another service.
    store = FakeStore()
    alice = await handle(store, WELCOME_ALICE, NOON)
    bob = await handle(store, WelcomeUser("signup-2", "bob", "bob@example.com", "Bob"), NOON)
    assert await usecases.get_notification(units(store), alice.id, restricted_to="alice") == alice
    with pytest.raises(NotNotificationRecipient) as caught:
        await usecases.get_notification(units(store), bob.id, restricted_to="alice")
    assert refusal(caught) == not_owner(notification=bob.name)
    # Permission before existence (AIP-211): a missing notification is no different.
    with pytest.raises(NotNotificationRecipient):
        await usecases.get_notification(units(store), "n-missing", restricted_to="alice")

    for query in (NotificationQuery(10), NotificationQuery(10, "alice")):
        page = await usecases.list_notifications(units(store), query, restricted_to="alice")
        assert page.items == [alice]
    with pytest.raises(ActingForAnotherUser) as listing:
        await usecases.list_notifications(
            units(store), NotificationQuery(10, "bob"), restricted_to="alice"
        )
    assert refusal(listing) == not_owner(recipient="users/bob")


async def test_delivery_marks_sent_and_publishes_notification_sent_once() -> None:
    store = FakeStore()
    notification = await handle(store, WELCOME_ALICE)
    sink = FakeMailSink()
    clock = Clock(NOON + timedelta(seconds=3))
    assert await usecases.deliver_due(lambda: units(store), sink, clock, RetryPolicy()) == 1
    sent = store.notifications[notification.id]
    assert (sent.state, sent.attempt_count, sent.send_time) == (
        NotificationState.SENT,
        1,
        NOON + timedelta(seconds=3),
    )
    assert [n.id for n in sink.accepted] == [notification.id]
    published = units(store).published
    assert published == [NotificationSent(sent)]
    # Nothing is due any more: a second pass sends nothing.
    assert await usecases.deliver_due(lambda: units(store), sink, clock, RetryPolicy()) == 0
    assert len(sink.accepted) == 1


async def test_a_failing_sink_is_retried_then_the_notification_fails_after_five_attempts() -> None:
    store = FakeStore()
    notification = await handle(store, WELCOME_ALICE)
    sink = FakeMailSink(failures=-1)
    clock = Clock()
    policy = RetryPolicy(initial=timedelta(seconds=1), maximum=timedelta(seconds=4))
    for attempt in range(1, 6):
        assert await usecases.deliver_due(lambda: units(store), sink, clock, policy) == 1
        current = store.notifications[notification.id]
        assert current.attempt_count == attempt
        # Not due again before its backoff has passed.
        assert await usecases.deliver_due(lambda: units(store), sink, clock, policy) == 0
        clock.now += timedelta(seconds=4)
    failed = store.notifications[notification.id]
    assert failed.state is NotificationState.FAILED
    assert failed.last_error == "ConnectionRefusedError: mail server refused attempt 5"
    assert failed.send_time is None
    assert sink.attempts == 5
    assert units(store).published == []
    assert await usecases.deliver_due(lambda: units(store), sink, clock, policy) == 0


async def test_a_sink_that_recovers_sends_on_a_later_attempt() -> None:
    store = FakeStore()
    notification = await handle(store, WELCOME_ALICE)
    sink = FakeMailSink(failures=2)
    clock = Clock()
    policy = RetryPolicy(initial=timedelta(seconds=1))
    for _ in range(3):
        await usecases.deliver_due(lambda: units(store), sink, clock, policy)
        clock.now += timedelta(minutes=1)
    sent = store.notifications[notification.id]
    assert (sent.state, sent.attempt_count) == (NotificationState.SENT, 3)
    assert sent.last_error == "ConnectionRefusedError: mail server refused attempt 2"


async def test_an_outcome_recorded_by_another_sender_meanwhile_is_not_overwritten() -> None:
    store = FakeStore()
    notification = await handle(store, WELCOME_ALICE)

    class RacingSink(FakeMailSink):
        async def send(self, sent: Notification) -> None:
            await super().send(sent)
            # Another sender records SENT first.
            store.notifications[sent.id] = sent.sent(NOON)

    sink = RacingSink()
    await usecases.deliver_due(lambda: units(store), sink, Clock(), RetryPolicy())
    assert store.notifications[notification.id].attempt_count == 1
    assert units(store).published == []  # the other sender published it, not this one


async def test_two_senders_at_once_attempt_a_notification_once() -> None:
    store = FakeStore()
    notification = await handle(store, WELCOME_ALICE)

    class SlowSink(FakeMailSink):
        async def send(self, sent: Notification) -> None:
            await asyncio.sleep(0.01)  # the other sender reads meanwhile
            await super().send(sent)

    sink = SlowSink()
    attempts = await asyncio.gather(
        *(usecases.deliver_due(lambda: units(store), sink, Clock(), RetryPolicy()) for _ in "ab")
    )
    assert sorted(attempts) == [0, 1]
    assert [n.id for n in sink.accepted] == [notification.id]
    assert store.notifications[notification.id].state is NotificationState.SENT


async def test_a_claimed_notification_is_retried_after_its_sender_vanished() -> None:
    store = FakeStore()
    notification = await handle(store, WELCOME_ALICE)
    policy = RetryPolicy(claim=timedelta(seconds=30))
    async with units(store).writing() as uow:
        assert await uow.notifications.claim(notification, NOON + policy.claim)
        await uow.commit()
    # The claiming sender crashed before recording anything.
    sink = FakeMailSink()
    assert await usecases.deliver_due(lambda: units(store), sink, Clock(), policy) == 0
    later = Clock(NOON + timedelta(seconds=31))
    assert await usecases.deliver_due(lambda: units(store), sink, later, policy) == 1
    assert store.notifications[notification.id].state is NotificationState.SENT
