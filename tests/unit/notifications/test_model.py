"""The notification's delivery states, its retry schedule and money in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifications.domain.model import (
    Contact,
    EventType,
    Money,
    Notification,
    NotificationState,
    RetryPolicy,
    notification_id,
)
from runtime.names import ID_PATTERN

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALICE = Contact("alice", "alice@example.com", "Alice")


def pending(event_id: str = "e1") -> Notification:
    return Notification.create(
        event_id=event_id,
        event_type=EventType.ORDER_CONFIRMED,
        contact=ALICE,
        subject="Your order o1 is confirmed",
        body="Hello",
        now=NOON,
    )


def test_the_same_event_always_gives_the_same_valid_notification_id() -> None:
    assert notification_id("e1") == notification_id("e1") != notification_id("e2")
    assert ID_PATTERN.match(notification_id("e1"))


def test_a_new_notification_is_pending_and_due_at_once() -> None:
    notification = pending()
    assert notification.state is NotificationState.PENDING
    assert (notification.attempt_count, notification.last_error) == (0, "")
    assert notification.next_attempt_time == NOON
    assert notification.recipient == "users/alice"
    assert notification.recipient_address == "alice@example.com"
    assert notification.name == f"notifications/{notification_id('e1')}"


def test_the_subject_is_one_line_of_at_most_200_characters() -> None:
    notification = Notification.create(
        event_id="e1",
        event_type=EventType.USER_SIGNED_UP,
        contact=ALICE,
        subject="line\n" + "x" * 300,
        body="b",
        now=NOON,
    )
    assert len(notification.subject) == 200
    assert "\n" not in notification.subject


def test_sending_records_the_attempt_and_the_send_time() -> None:
    sent = pending().sent(NOON + timedelta(seconds=1))
    assert sent.state is NotificationState.SENT
    assert sent.attempt_count == 1
    assert sent.send_time == NOON + timedelta(seconds=1)
    assert sent.next_attempt_time is None


def test_failed_attempts_back_off_then_give_up_after_the_last_one() -> None:
    policy = RetryPolicy(max_attempts=3, initial=timedelta(seconds=2))
    first = pending().attempt_failed("refused", NOON, policy)
    assert (first.state, first.attempt_count, first.last_error) == (
        NotificationState.PENDING,
        1,
        "refused",
    )
    assert first.next_attempt_time == NOON + timedelta(seconds=2)
    second = first.attempt_failed("refused again", NOON, policy)
    assert second.next_attempt_time == NOON + timedelta(seconds=4)
    third = second.attempt_failed("still refused", NOON, policy)
    assert third.state is NotificationState.FAILED
    assert (third.attempt_count, third.last_error) == (3, "still refused")
    assert third.next_attempt_time is None
    assert third.send_time is None


def test_the_retry_delay_is_capped() -> None:
    policy = RetryPolicy(initial=timedelta(seconds=2), maximum=timedelta(seconds=10))
    assert [policy.delay(n).total_seconds() for n in range(1, 6)] == [2, 4, 8, 10, 10]


@pytest.mark.parametrize(
    "final", [pending().sent(NOON), pending().attempt_failed("x", NOON, RetryPolicy(1))]
)
def test_a_final_notification_cannot_change(final: Notification) -> None:
    with pytest.raises(ValueError, match="final"):
        final.sent(NOON)
    with pytest.raises(ValueError, match="final"):
        final.attempt_failed("again", NOON, RetryPolicy())


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money("EUR", 12, 500_000_000), "12.50 EUR"),
        (Money("EUR", 3), "3.00 EUR"),
        (Money("USD", 0, 5_000_000), "0.005 USD"),
        (Money("EUR", 1_234_567, 990_000_000), "1234567.99 EUR"),
    ],
)
def test_money_reads_with_at_least_two_decimals(money: Money, text: str) -> None:
    assert str(money) == text
