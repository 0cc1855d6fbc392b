"""The notifications contract's ``buf.validate`` rules state what notifications enforces.

Each bad request below breaks a rule of the contract; the service's own conversion must
reject it too, naming the same fields. Recipients are identity's users, recorded as
the events name them, so a recipient takes any id of the documented shape.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from agora.notifications.v1 import notification_service_pb2 as pb
from notifications.domain.model import EventType
from notifications.entrypoints import convert
from tests.support.contract_rules import (
    ServiceCheck,
    assert_accepted_alike,
    assert_left_to_service,
    assert_rejected_alike,
    request_types,
    requests_with_rules,
)

SERVICE = pb.DESCRIPTOR.services_by_name["NotificationService"]

#: What notifications runs on each request type before any use case.
SERVICE_CHECKS: dict[type[Message], ServiceCheck] = {
    pb.ListNotificationsRequest: convert.notification_query,
    pb.GetNotificationRequest: lambda r: convert.parse_notification_name(r.name),
}

BAD_REQUESTS: list[tuple[str, Message, list[str]]] = [
    (
        "negative page size, malformed recipient, unknown event type",
        pb.ListNotificationsRequest(
            page_size=-1, recipient="users/", event_type="agora.orders.v1.OrderPlaced"
        ),
        ["page_size", "recipient", "event_type"],
    ),
    (
        "a recipient named as an order",
        pb.ListNotificationsRequest(recipient="orders/o1"),
        ["recipient"],
    ),
    (
        "an event type in the wrong case",
        pb.ListNotificationsRequest(event_type="agora.identity.v1.usersignedup"),
        ["event_type"],
    ),
    ("notification name missing", pb.GetNotificationRequest(), ["name"]),
    (
        "notification id in capitals",
        pb.GetNotificationRequest(name="notifications/N-1"),
        ["name"],
    ),
    (
        "notification name of a user",
        pb.GetNotificationRequest(name="users/u1"),
        ["name"],
    ),
]


@pytest.mark.parametrize(
    ("request_message", "fields"),
    [pytest.param(request, fields, id=case) for case, request, fields in BAD_REQUESTS],
)
def test_the_service_rejects_what_the_contract_rejects_naming_the_same_fields(
    request_message: Message, fields: list[str]
) -> None:
    assert_rejected_alike(request_message, fields, SERVICE_CHECKS[type(request_message)])


GOOD_REQUESTS: list[Message] = [
    pb.ListNotificationsRequest(),
    pb.ListNotificationsRequest(page_size=5000, recipient="users/U_1"),
    *(pb.ListNotificationsRequest(event_type=event_type.value) for event_type in EventType),
    pb.GetNotificationRequest(name="notifications/n-5b0c3f0e-6a8e-4f47-9d5e-0b7f3c1e2a91"),
]


@pytest.mark.parametrize("request_message", GOOD_REQUESTS, ids=lambda r: type(r).__name__)
def test_requests_the_service_accepts_break_no_rule(request_message: Message) -> None:
    assert_accepted_alike(request_message, SERVICE_CHECKS[type(request_message)])


def test_a_page_token_is_left_to_the_service() -> None:
    request = pb.ListNotificationsRequest(page_token="not-a-token")
    assert_left_to_service(
        request, ["page_token"], "INVALID_PAGE_TOKEN", SERVICE_CHECKS[type(request)]
    )


def test_every_notifications_request_carries_rules() -> None:
    assert request_types(SERVICE) == {t.DESCRIPTOR.full_name for t in SERVICE_CHECKS}
    assert requests_with_rules(SERVICE) == {t.DESCRIPTOR.name for t in SERVICE_CHECKS}
