"""Request checks and proto <-> domain conversion of the payments entrypoint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.type import money_pb2

from agora.payments.v1 import payment_pb2
from agora.payments.v1 import payment_service_pb2 as pb
from payments.domain.model import FailureReason, Money, Payment, PaymentQuery
from payments.entrypoints import convert
from runtime.errors import InvalidArgument

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def eur(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units, nanos=nanos)


def authorize_request(**changes: object) -> pb.AuthorizePaymentRequest:
    fields: dict[str, object] = {
        "order": "orders/o-1",
        "user": "users/alice",
        "amount": eur(12, 500_000_000),
        "payment_token": "4242 4242 4242 4242",
        "request_id": "6f1c1f7e-0b7e-4a53-9a51-35f0b3a2a001",
    }
    fields.update(changes)
    return pb.AuthorizePaymentRequest(**fields)  # type: ignore[arg-type]


def violated_fields(error: InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


def test_a_good_authorize_request_becomes_a_command() -> None:
    command = convert.authorize_payment_command(authorize_request())
    assert (command.order_id, command.user_id) == ("o-1", "alice")
    assert command.amount == Money.of("EUR", 12, 500_000_000)
    assert "4242" not in repr(command)


def test_an_authorize_request_reports_every_bad_field_at_once() -> None:
    request = pb.AuthorizePaymentRequest(order="o-1", user="users/", payment_token="x" * 513)
    with pytest.raises(InvalidArgument) as caught:
        convert.authorize_payment_command(request)
    assert caught.value.reason == "INVALID_ARGUMENT"
    assert violated_fields(caught.value) == [
        "order",
        "user",
        "amount",
        "payment_token",
        "request_id",
    ]


@pytest.mark.parametrize(
    "amount",
    [eur(0), eur(-3), money_pb2.Money(currency_code="euro", units=1), eur(1, 5_000_000)],
)
def test_a_bad_amount_alone_is_reported_as_invalid_amount(amount: money_pb2.Money) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.authorize_payment_command(authorize_request(amount=amount))
    assert caught.value.reason == "INVALID_AMOUNT"


def test_the_fingerprint_ignores_the_request_id_and_keeps_no_card_number() -> None:
    first = convert.authorize_payment_command(authorize_request())
    again = convert.authorize_payment_command(authorize_request(request_id="another"))
    spaced = convert.authorize_payment_command(authorize_request(payment_token="4242424242424242"))
    other_amount = convert.authorize_payment_command(authorize_request(amount=eur(13)))
    assert first.idempotency.fingerprint == again.idempotency.fingerprint
    assert first.idempotency.fingerprint == spaced.idempotency.fingerprint
    assert first.idempotency.fingerprint != other_amount.idempotency.fingerprint


def test_a_refund_amount_is_optional_but_checked_when_set() -> None:
    whole = convert.refund_payment_command(
        pb.RefundPaymentRequest(name="payments/p1", request_id="r")
    )
    assert whole.amount is None
    with pytest.raises(InvalidArgument) as caught:
        convert.refund_payment_command(
            pb.RefundPaymentRequest(name="payments/p1", amount=eur(0), request_id="r")
        )
    assert caught.value.reason == "INVALID_AMOUNT"


@pytest.mark.parametrize("name", ["", "p1", "payments/", "payments/P1", "orders/p1"])
def test_malformed_payment_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.capture_payment_command(pb.CapturePaymentRequest(name=name, request_id="r"))
    assert violated_fields(caught.value) == ["name"]


def test_capture_void_and_refund_require_a_request_id() -> None:
    for check in (
        lambda: convert.capture_payment_command(pb.CapturePaymentRequest(name="payments/p1")),
        lambda: convert.void_payment_command(pb.VoidPaymentRequest(name="payments/p1")),
        lambda: convert.refund_payment_command(pb.RefundPaymentRequest(name="payments/p1")),
    ):
        with pytest.raises(InvalidArgument) as caught:
            check()
        assert violated_fields(caught.value) == ["request_id"]


def test_page_tokens_round_trip_and_stay_with_their_filter() -> None:
    query = convert.payment_query(pb.ListPaymentsRequest(order="orders/o-1", page_size=5))
    token = convert.next_page_token((NOON, "p1"), query)
    following = convert.payment_query(
        pb.ListPaymentsRequest(order="orders/o-1", page_size=5, page_token=token)
    )
    assert following == PaymentQuery(5, "o-1", None, (NOON, "p1"))
    with pytest.raises(InvalidArgument) as caught:
        convert.payment_query(pb.ListPaymentsRequest(order="orders/o-2", page_token=token))
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgument) as forged:
        convert.payment_query(pb.ListPaymentsRequest(page_token="bm90LWEtdG9rZW4"))
    assert forged.value.reason == "INVALID_PAGE_TOKEN"


def test_a_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.payment_query(pb.ListPaymentsRequest(page_size=-1))
    assert (caught.value.reason, violated_fields(caught.value)) == (
        "INVALID_ARGUMENT",
        ["page_size"],
    )


def test_a_payment_converts_with_every_amount_and_state() -> None:
    payment = Payment.attempt("p1", "o-1", "alice", Money.of("EUR", 12, 500_000_000), NOON)
    proto = convert.payment_to_proto(payment.failed(FailureReason.TIMEOUT, NOON))
    assert proto.name == "payments/p1"
    assert (proto.order, proto.user) == ("orders/o-1", "users/alice")
    assert proto.amount == eur(12, 500_000_000)
    assert proto.captured_amount == money_pb2.Money(currency_code="EUR")
    assert proto.state == payment_pb2.PAYMENT_STATE_FAILED
    assert proto.failure_reason == "PROCESSOR_TIMEOUT"
    assert not proto.HasField("capture_time")
    assert proto.create_time.ToDatetime(tzinfo=UTC) == NOON
