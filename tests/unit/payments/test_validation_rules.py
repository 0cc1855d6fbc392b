"""The payments contract's ``buf.validate`` rules state what payments itself enforces.

Each bad request below breaks a rule of the contract; payments' own conversion must
reject it too, naming the same fields. Amounts carry no rule: the contract answers a
wrong amount with its own reason (``INVALID_AMOUNT``), and payments gives it that reason
only when the amount is all that is wrong. Orders and users are other services'
resources, recorded as given, so their names take any id of their documented shape.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from google.type import money_pb2

from agora.payments.v1 import payment_service_pb2 as pb
from payments.entrypoints import convert
from runtime import validation
from tests.support.contract_rules import (
    ServiceCheck,
    assert_accepted_alike,
    assert_left_to_service,
    assert_rejected_alike,
    request_types,
    requests_with_rules,
)

SERVICE = pb.DESCRIPTOR.services_by_name["PaymentService"]
CARD = "4242 4242 4242 4242"
TEN_EUR = money_pb2.Money(currency_code="EUR", units=10)
TOO_LONG_REQUEST_ID = "r" * 65

#: What payments runs on each request type before any use case.
SERVICE_CHECKS: dict[type[Message], ServiceCheck] = {
    pb.AuthorizePaymentRequest: convert.authorize_payment_command,
    pb.CapturePaymentRequest: convert.capture_payment_command,
    pb.VoidPaymentRequest: convert.void_payment_command,
    pb.RefundPaymentRequest: convert.refund_payment_command,
    pb.GetPaymentRequest: lambda r: convert.parse_payment_name(r.name),
    pb.ListPaymentsRequest: convert.payment_query,
}


def authorize(
    order: str = "orders/o1",
    user: str = "users/u1",
    amount: money_pb2.Money | None = TEN_EUR,
    payment_token: str = CARD,
    request_id: str = "r-1",
) -> pb.AuthorizePaymentRequest:
    return pb.AuthorizePaymentRequest(
        order=order,
        user=user,
        amount=amount,
        payment_token=payment_token,
        request_id=request_id,
    )


BAD_REQUESTS: list[tuple[str, Message, list[str]]] = [
    (
        "an empty authorization",
        pb.AuthorizePaymentRequest(),
        ["order", "user", "payment_token", "request_id"],
    ),
    (
        "malformed order and user",
        authorize(order="orders/-o1", user="users/u 1"),
        ["order", "user"],
    ),
    ("an order named as a payment", authorize(order="payments/p1"), ["order"]),
    ("a payment token too long", authorize(payment_token="4" * 513), ["payment_token"]),
    (
        "request id too long",
        authorize(request_id=TOO_LONG_REQUEST_ID),
        ["request_id"],
    ),
    ("an empty capture", pb.CapturePaymentRequest(), ["name", "request_id"]),
    (
        "capture of a malformed name",
        pb.CapturePaymentRequest(name="payments/P1", request_id=TOO_LONG_REQUEST_ID),
        ["name", "request_id"],
    ),
    ("an empty void", pb.VoidPaymentRequest(), ["name", "request_id"]),
    (
        "void of an order",
        pb.VoidPaymentRequest(name="orders/o1", request_id="r-1"),
        ["name"],
    ),
    ("an empty refund", pb.RefundPaymentRequest(), ["name", "request_id"]),
    (
        "refund of a malformed name",
        pb.RefundPaymentRequest(name="payments/", amount=TEN_EUR, request_id="r" * 65),
        ["name", "request_id"],
    ),
    ("payment name missing", pb.GetPaymentRequest(), ["name"]),
    ("payment name with a slash", pb.GetPaymentRequest(name="payments/p1/x"), ["name"]),
    (
        "negative page size, malformed filters",
        pb.ListPaymentsRequest(page_size=-1, order="orders/", user="people/u1"),
        ["page_size", "order", "user"],
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
    authorize(),
    # Ids of other services' resources: capitals and underscores are recorded as given.
    authorize(
        order="orders/Order_1",
        user="users/U-" + "x" * 61,
        payment_token="4" * 512,
        request_id="r" * 64,
    ),
    pb.CapturePaymentRequest(name="payments/p0123456789abcdef0123456789abcdef", request_id="r"),
    pb.VoidPaymentRequest(name="payments/p1", request_id="r" * 64),
    pb.RefundPaymentRequest(name="payments/p1", request_id="r-2"),
    pb.RefundPaymentRequest(name="payments/p1", amount=TEN_EUR, request_id="r-3"),
    pb.GetPaymentRequest(name="payments/p1"),
    pb.ListPaymentsRequest(),
    pb.ListPaymentsRequest(page_size=5000, order="orders/O_1", user="users/u1"),
]


@pytest.mark.parametrize("request_message", GOOD_REQUESTS, ids=lambda r: type(r).__name__)
def test_requests_the_service_accepts_break_no_rule(request_message: Message) -> None:
    assert_accepted_alike(request_message, SERVICE_CHECKS[type(request_message)])


LEFT_TO_THE_SERVICE: list[tuple[str, Message, list[str], str]] = [
    ("no amount", authorize(amount=None), ["amount"], "INVALID_AMOUNT"),
    (
        "a negative amount",
        authorize(amount=money_pb2.Money(currency_code="EUR", units=-1)),
        ["amount"],
        "INVALID_AMOUNT",
    ),
    (
        "a refund in no currency",
        pb.RefundPaymentRequest(
            name="payments/p1", amount=money_pb2.Money(units=1), request_id="r-1"
        ),
        ["amount.currency_code"],
        "INVALID_AMOUNT",
    ),
    (
        "a page token of another service",
        pb.ListPaymentsRequest(page_token="not-a-token"),
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


def test_a_broken_rule_never_repeats_the_payment_token() -> None:
    token = "4242424242424242" * 33  # 528 characters
    found = validation.violations(authorize(payment_token=token))

    assert [v.field for v in found] == ["payment_token"]
    assert all("4242" not in v.description for v in found)


def test_every_payments_request_carries_rules() -> None:
    assert request_types(SERVICE) == {t.DESCRIPTOR.full_name for t in SERVICE_CHECKS}
    assert requests_with_rules(SERVICE) == {t.DESCRIPTOR.name for t in SERVICE_CHECKS}
