"""The orders contract's ``buf.validate`` rules state what orders itself enforces.

Each bad request below breaks a rule of the contract; orders' own conversion must
reject it too, naming the same fields. Two checks stay with orders alone: the payment
token, whose problems the contract answers with their own reason
(``INVALID_PAYMENT_TOKEN``), and that an order names each product once, which a rule
could only report on the whole list rather than on the repeated line item.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from agora.orders.v1 import order_pb2
from agora.orders.v1 import order_service_pb2 as pb
from orders.entrypoints import convert
from tests.support.contract_rules import (
    ServiceCheck,
    assert_accepted_alike,
    assert_left_to_service,
    assert_rejected_alike,
    request_types,
    requests_with_rules,
)

SERVICE = pb.DESCRIPTOR.services_by_name["OrderService"]
CARD = "4242 4242 4242 4242"
REQUEST_ID = "6f1c7f3e-2b1d-4d7a-9c55-0d8f5b7a1e20"
TOO_LONG_REQUEST_ID = "r" * 65

#: What orders runs on each request type before any use case.
SERVICE_CHECKS: dict[type[Message], ServiceCheck] = {
    pb.PlaceOrderRequest: convert.place_order_command,
    pb.GetOrderRequest: lambda r: convert.parse_order_name(r.name),
    pb.ListOrdersRequest: convert.order_query,
    pb.CancelOrderRequest: convert.cancel_order_command,
}


def line(product: str = "products/tea", quantity: int = 1) -> pb.LineItem:
    return pb.LineItem(product=product, quantity=quantity)


def place(
    user: str = "users/u1",
    line_items: list[pb.LineItem] | None = None,
    payment_token: str = CARD,
    request_id: str = REQUEST_ID,
) -> pb.PlaceOrderRequest:
    return pb.PlaceOrderRequest(
        user=user,
        line_items=[line()] if line_items is None else line_items,
        payment_token=payment_token,
        request_id=request_id,
    )


BAD_REQUESTS: list[tuple[str, Message, list[str]]] = [
    ("an empty order", pb.PlaceOrderRequest(), ["user", "line_items", "request_id"]),
    ("an order for a malformed user", place(user="users/U1"), ["user"]),
    ("an order for a customer name", place(user="customers/u1"), ["user"]),
    (
        "an order of too many line items",
        place(line_items=[line(f"products/p{i}") for i in range(101)]),
        ["line_items"],
    ),
    (
        "line items malformed",
        place(line_items=[line(), line(""), line("products/cake", 1001), line("products/c", 0)]),
        ["line_items[1].product", "line_items[2].quantity", "line_items[3].quantity"],
    ),
    ("request id too long", place(request_id=TOO_LONG_REQUEST_ID), ["request_id"]),
    ("order name missing", pb.GetOrderRequest(), ["name"]),
    ("order name of a payment", pb.GetOrderRequest(name="payments/p1"), ["name"]),
    ("orders of nobody", pb.ListOrdersRequest(), ["user"]),
    ("orders of a malformed user", pb.ListOrdersRequest(user="users/"), ["user"]),
    # The service checks these two before it reads the page size: one request each.
    (
        "negative page size",
        pb.ListOrdersRequest(user="users/u1", page_size=-1),
        ["page_size"],
    ),
    (
        "unknown state",
        pb.ListOrdersRequest(user="users/u1", state=42),  # type: ignore[arg-type]
        ["state"],
    ),
    ("cancel without a name", pb.CancelOrderRequest(), ["name"]),
    (
        "cancel of a malformed name",
        pb.CancelOrderRequest(name="orders/-o1", request_id=TOO_LONG_REQUEST_ID),
        ["name", "request_id"],
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
    place(),
    place(
        user="users/u0123456789abcdef0123456789abcdef",
        line_items=[line(f"products/p{i}", 1000) for i in range(100)],
        request_id="r" * 64,
    ),
    pb.GetOrderRequest(name="orders/o0123456789abcdef0123456789abcdef"),
    pb.ListOrdersRequest(user="users/u1"),
    pb.ListOrdersRequest(user="users/u1", page_size=5000, state=order_pb2.ORDER_STATE_CANCELLED),
    pb.CancelOrderRequest(name="orders/o1", etag="e1", request_id="r-1"),
]


@pytest.mark.parametrize("request_message", GOOD_REQUESTS, ids=lambda r: type(r).__name__)
def test_requests_the_service_accepts_break_no_rule(request_message: Message) -> None:
    assert_accepted_alike(request_message, SERVICE_CHECKS[type(request_message)])


LEFT_TO_THE_SERVICE: list[tuple[str, Message, list[str], str]] = [
    ("no payment token", place(payment_token=""), ["payment_token"], "INVALID_PAYMENT_TOKEN"),
    (
        "a card number failing its check digit",
        place(payment_token="4242 4242 4242 4241"),
        ["payment_token"],
        "INVALID_PAYMENT_TOKEN",
    ),
    (
        "a payment token too long for a card",
        place(payment_token="4" * 513),
        ["payment_token"],
        "INVALID_PAYMENT_TOKEN",
    ),
    (
        "a product listed twice",
        place(line_items=[line(), line("products/cake"), line()]),
        ["line_items[2].product"],
        "INVALID_ARGUMENT",
    ),
    (
        "a page token of another service",
        pb.ListOrdersRequest(user="users/u1", page_token="not-a-token"),
        ["page_token"],
        "INVALID_PAGE_TOKEN",
    ),
]


@pytest.mark.parametrize(
    ("request_message", "fields", "reason"),
    [pytest.param(r, f, why, id=case) for case, r, f, why in LEFT_TO_THE_SERVICE],
)
def test_the_service_keeps_the_checks_with_reasons_of_their_own(
    request_message: Message, fields: list[str], reason: str
) -> None:
    assert_left_to_service(request_message, fields, reason, SERVICE_CHECKS[type(request_message)])


def test_every_orders_request_carries_rules() -> None:
    assert request_types(SERVICE) == {t.DESCRIPTOR.full_name for t in SERVICE_CHECKS}
    assert requests_with_rules(SERVICE) == {t.DESCRIPTOR.name for t in SERVICE_CHECKS}
