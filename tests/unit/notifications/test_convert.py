"""Request checks, page tokens, and the handled events turned into commands."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.type import money_pb2

from agora.identity.v1 import events_pb2 as identity_events
from agora.identity.v1 import user_pb2
from agora.notifications.v1 import notification_pb2
from agora.notifications.v1 import notification_service_pb2 as pb
from agora.orders.v1 import events_pb2 as order_events
from agora.orders.v1 import order_pb2
from agora.payments.v1 import events_pb2 as payment_events
from agora.payments.v1 import payment_pb2
from notifications.domain.commands import OrderLine, WelcomeUser
from notifications.domain.model import Contact, EventType, Money, Notification
from notifications.entrypoints import convert
from runtime.errors import InvalidArgument

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def eur(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units, nanos=nanos)


def violations(error: InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


def test_a_list_request_with_every_filter() -> None:
    query = convert.notification_query(
        pb.ListNotificationsRequest(
            page_size=5000, recipient="users/alice", event_type="agora.orders.v1.OrderConfirmed"
        )
    )
    assert (query.page_size, query.recipient_id, query.event_type) == (
        1000,
        "alice",
        EventType.ORDER_CONFIRMED,
    )
    assert convert.notification_query(pb.ListNotificationsRequest()).page_size == 50


def test_every_problem_of_a_list_request_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.notification_query(
            pb.ListNotificationsRequest(
                page_size=-1, recipient="people/alice", event_type="agora.orders.v1.OrderPlaced"
            )
        )
    assert caught.value.reason == "INVALID_ARGUMENT"
    assert violations(caught.value) == ["recipient", "event_type", "page_size"]


def test_a_page_token_only_works_with_its_own_filter() -> None:
    query = convert.notification_query(pb.ListNotificationsRequest(recipient="users/alice"))
    token = convert.next_page_token((NOON, "n-1"), query)
    again = convert.notification_query(
        pb.ListNotificationsRequest(recipient="users/alice", page_token=token)
    )
    assert again.after == (NOON, "n-1")
    with pytest.raises(InvalidArgument) as caught:
        convert.notification_query(
            pb.ListNotificationsRequest(recipient="users/bob", page_token=token)
        )
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgument) as garbage:
        convert.notification_query(pb.ListNotificationsRequest(page_token="not-a-token"))
    assert garbage.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize("name", ["", "notifications/", "orders/n-1", "notifications/N_1"])
def test_a_malformed_notification_name_is_invalid(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.parse_notification_name(name)
    assert violations(caught.value) == ["name"]


def test_a_pending_notification_has_no_send_time() -> None:
    notification = Notification.create(
        event_id="e1",
        event_type=EventType.USER_SIGNED_UP,
        contact=Contact("alice", "alice@example.com", "Alice"),
        subject="s",
        body="b",
        now=NOON,
    )
    message = convert.notification_to_proto(notification)
    assert message.state == notification_pb2.NOTIFICATION_STATE_PENDING
    assert message.channel == notification_pb2.NOTIFICATION_CHANNEL_EMAIL
    assert (message.recipient, message.event_type) == (
        "users/alice",
        "agora.identity.v1.UserSignedUp",
    )
    assert not message.HasField("send_time")
    assert message.create_time.ToDatetime(UTC) == NOON
    sent = convert.notification_to_proto(notification.sent(NOON))
    assert sent.send_time.ToDatetime(UTC) == NOON


def test_a_sign_up_becomes_a_welcome() -> None:
    event = identity_events.UserSignedUp(
        user=user_pb2.User(name="users/0a1b", email="alice@example.com", display_name=" Alice ")
    )
    assert convert.welcome_user("e1", event) == WelcomeUser(
        "e1", "0a1b", "alice@example.com", "Alice"
    )


def test_an_order_event_keeps_its_lines_total_and_reason() -> None:
    order = order_pb2.Order(
        name="orders/o-1",
        user="users/alice",
        lines=[
            order_pb2.OrderLine(
                product="products/tea",
                display_name="Green tea",
                quantity=2,
                unit_price=eur(4, 500_000_000),
                line_total=eur(9),
            )
        ],
        total=eur(9),
        cancellation_reason=order_pb2.CANCELLATION_REASON_OUT_OF_STOCK,
    )
    confirmed = convert.notify_order_confirmed("e1", order_events.OrderConfirmed(order=order))
    assert confirmed.order.lines == (
        OrderLine("Green tea", 2, Money("EUR", 4, 500_000_000), Money("EUR", 9)),
    )
    assert (confirmed.order.order_id, confirmed.order.user_id) == ("o-1", "alice")
    cancelled = convert.notify_order_cancelled(
        "e2",
        order_events.OrderCancelled(order=order, reason=order_pb2.CANCELLATION_REASON_OUT_OF_STOCK),
    )
    assert cancelled.reason == "OUT_OF_STOCK"


def test_a_refund_event_gives_this_refund_and_the_total() -> None:
    event = payment_events.PaymentRefunded(
        payment=payment_pb2.Payment(
            name="payments/p-1",
            order="orders/o-1",
            user="users/alice",
            refunded_amount=eur(39),
            state=payment_pb2.PAYMENT_STATE_REFUNDED,
        ),
        amount=eur(30),
    )
    command = convert.notify_payment_refunded("e1", event)
    assert (command.payment_id, command.order_id, command.user_id) == ("p-1", "o-1", "alice")
    assert (command.amount, command.refunded_total, command.fully_refunded) == (
        Money("EUR", 30),
        Money("EUR", 39),
        True,
    )


def test_an_event_about_a_malformed_user_name_is_refused() -> None:
    event = order_events.OrderConfirmed(order=order_pb2.Order(name="orders/o-1", user="alice"))
    with pytest.raises(ValueError, match="users/"):
        convert.notify_order_confirmed("e1", event)
