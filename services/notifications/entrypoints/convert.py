"""Protobuf <-> domain conversion for notifications, including every check of request shape.

``field_behavior`` annotations document intent but enforce nothing, so names, filters and
page sizes are checked here; every problem in a request is reported at once as a
``BadRequest`` field violation. The handled events are converted here too, into the
use cases' commands.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2

from agora.identity.v1 import events_pb2 as identity_events
from agora.notifications.v1 import notification_pb2, notification_service_pb2
from agora.orders.v1 import events_pb2 as order_events
from agora.orders.v1 import order_pb2
from agora.payments.v1 import events_pb2 as payment_events
from agora.payments.v1 import payment_pb2
from notifications.domain import model
from notifications.domain.commands import (
    NotifyOrderCancelled,
    NotifyOrderConfirmed,
    NotifyPaymentRefunded,
    OrderLine,
    OrderSummary,
    WelcomeUser,
)
from notifications.domain.model import EventType, Money, NotificationQuery, NotificationState
from runtime import paging
from runtime.requests import Violations, parse_name, require_name

STATE_TO_PROTO = {
    NotificationState.PENDING: notification_pb2.NOTIFICATION_STATE_PENDING,
    NotificationState.SENT: notification_pb2.NOTIFICATION_STATE_SENT,
    NotificationState.FAILED: notification_pb2.NOTIFICATION_STATE_FAILED,
}
CHANNEL_TO_PROTO = {model.Channel.EMAIL: notification_pb2.NOTIFICATION_CHANNEL_EMAIL}
_REASON_PREFIX = "CANCELLATION_REASON_"


def parse_notification_name(name: str, field_path: str = "name") -> str:
    return require_name(name, "notifications", field_path, variable="notification")


def notification_to_proto(notification: model.Notification) -> notification_pb2.Notification:
    return notification_pb2.Notification(
        name=notification.name,
        recipient=notification.recipient,
        recipient_address=notification.recipient_address,
        channel=CHANNEL_TO_PROTO[notification.channel],
        subject=notification.subject,
        body=notification.body,
        event_id=notification.event_id,
        event_type=notification.event_type.value,
        state=STATE_TO_PROTO[notification.state],
        attempt_count=notification.attempt_count,
        last_error=notification.last_error,
        create_time=_timestamp(notification.create_time),
        send_time=_timestamp(notification.send_time),
    )


def notification_query(
    request: notification_service_pb2.ListNotificationsRequest,
) -> NotificationQuery:
    violations = Violations()
    recipient_id = event_type = None
    if request.recipient:
        recipient_id = parse_name(
            request.recipient,
            "users",
            "recipient",
            violations,
            model.FOREIGN_ID_PATTERN,
            variable="user",
        )
    if request.event_type:
        try:
            event_type = EventType(request.event_type)
        except ValueError:
            handled = ", ".join(t.value for t in EventType)
            violations.add("event_type", f"must be one of the handled event types: {handled}")
    if request.page_size < 0:
        violations.add("page_size", "must be >= 0")
    violations.raise_if_any()
    size = paging.page_size(request.page_size)
    query = NotificationQuery(size, recipient_id, event_type)
    after = paging.decode_time_position(request.page_token, query.fingerprint())
    return NotificationQuery(size, recipient_id, event_type, after)


def next_page_token(after: tuple[datetime, str] | None, query: NotificationQuery) -> str:
    return paging.encode_time_position(after, query.fingerprint())


# --- events -> commands -------------------------------------------------------------------
#
# Events come from services that validated them, but a consumer trusts no message: a
# name of the wrong shape makes the event undeliverable (ValueError, redelivered and
# finally dead-lettered) rather than a notification for nobody.


def welcome_user(event_id: str, event: identity_events.UserSignedUp) -> WelcomeUser:
    user = event.user
    if not user.email:
        raise ValueError(f"UserSignedUp of {user.name!r} carries no email address")
    return WelcomeUser(
        event_id, _foreign_id(user.name, "users"), user.email, user.display_name.strip()
    )


def notify_order_confirmed(
    event_id: str, event: order_events.OrderConfirmed
) -> NotifyOrderConfirmed:
    return NotifyOrderConfirmed(event_id, _order(event.order))


def notify_order_cancelled(
    event_id: str, event: order_events.OrderCancelled
) -> NotifyOrderCancelled:
    reason = event.reason or event.order.cancellation_reason
    name = order_pb2.CancellationReason.Name(reason) if reason else ""
    return NotifyOrderCancelled(event_id, _order(event.order), name.removeprefix(_REASON_PREFIX))


def notify_payment_refunded(
    event_id: str, event: payment_events.PaymentRefunded
) -> NotifyPaymentRefunded:
    payment = event.payment
    return NotifyPaymentRefunded(
        event_id=event_id,
        payment_id=_foreign_id(payment.name, "payments"),
        order_id=_foreign_id(payment.order, "orders") if payment.order else "",
        user_id=_foreign_id(payment.user, "users"),
        amount=_money(event.amount),
        refunded_total=_money(payment.refunded_amount),
        fully_refunded=payment.state == payment_pb2.PAYMENT_STATE_REFUNDED,
    )


def _order(order: order_pb2.Order) -> OrderSummary:
    return OrderSummary(
        order_id=_foreign_id(order.name, "orders"),
        user_id=_foreign_id(order.user, "users"),
        lines=tuple(
            OrderLine(
                line.display_name or line.product,
                line.quantity,
                _money(line.unit_price),
                _money(line.line_total),
            )
            for line in order.lines
        ),
        total=_money(order.total),
    )


def _foreign_id(name: str, collection: str) -> str:
    found = name.removeprefix(f"{collection}/")
    if found == name or not model.FOREIGN_ID_PATTERN.match(found):
        raise ValueError(f"{name!r} is not a {collection}/{{id}} name")
    return found


def _money(money: money_pb2.Money) -> Money:
    return Money(money.currency_code, money.units, money.nanos)


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
