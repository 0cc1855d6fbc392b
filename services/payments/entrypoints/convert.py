"""Protobuf <-> domain conversion for payments, including every check of request shape.

``field_behavior`` annotations document intent but enforce nothing, so required fields,
name formats, amounts and page sizes are checked here; every problem in a request is
reported at once as a ``BadRequest`` field violation.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2

from agora.payments.v1 import payment_pb2, payment_service_pb2
from payments.domain import model
from payments.domain.commands import (
    AuthorizePayment,
    CapturePayment,
    RefundPayment,
    VoidPayment,
)
from payments.domain.model import Money, PaymentQuery, PaymentState
from runtime import paging, requests
from runtime.errors import InvalidArgument
from runtime.requests import parse_name, read_idempotency, require_name

MAX_PAYMENT_TOKEN = 512

STATE_TO_PROTO = {
    PaymentState.AUTHORIZED: payment_pb2.PAYMENT_STATE_AUTHORIZED,
    PaymentState.CAPTURED: payment_pb2.PAYMENT_STATE_CAPTURED,
    PaymentState.VOIDED: payment_pb2.PAYMENT_STATE_VOIDED,
    PaymentState.PARTIALLY_REFUNDED: payment_pb2.PAYMENT_STATE_PARTIALLY_REFUNDED,
    PaymentState.REFUNDED: payment_pb2.PAYMENT_STATE_REFUNDED,
    PaymentState.DECLINED: payment_pb2.PAYMENT_STATE_DECLINED,
    PaymentState.FAILED: payment_pb2.PAYMENT_STATE_FAILED,
}


class Violations(requests.Violations):
    """Collects field violations; payments give a wrong amount its own reason."""

    def raise_if_any(self, reason: str | None = None) -> None:
        """Raises every violation; reason ``INVALID_AMOUNT`` when only the amount is wrong."""
        if not self.items:
            return
        error = InvalidArgument.for_fields(self.items, reason=reason)
        if all(_is_amount(v.field) for v in self.items):
            error.reason = "INVALID_AMOUNT"
        raise error


def _is_amount(field_path: str) -> bool:
    return field_path == "amount" or field_path.startswith("amount.")


def parse_payment_name(name: str, field_path: str = "name") -> str:
    return require_name(name, "payments", field_path)


def money_to_proto(money: Money) -> money_pb2.Money:
    return money_pb2.Money(
        currency_code=money.currency_code, units=money.units, nanos=money.fractional_nanos
    )


def payment_to_proto(payment: model.Payment) -> payment_pb2.Payment:
    return payment_pb2.Payment(
        name=payment.name,
        order=f"orders/{payment.order_id}",
        user=f"users/{payment.user_id}",
        amount=money_to_proto(payment.amount),
        captured_amount=money_to_proto(payment.captured),
        refunded_amount=money_to_proto(payment.refunded),
        state=STATE_TO_PROTO[payment.state],
        card_last4=payment.card_last4,
        failure_reason=payment.failure_reason,
        create_time=_timestamp(payment.create_time),
        update_time=_timestamp(payment.update_time),
        capture_time=_timestamp(payment.capture_time),
    )


def authorize_payment_command(
    request: payment_service_pb2.AuthorizePaymentRequest,
) -> AuthorizePayment:
    violations = Violations()
    order_id = parse_name(request.order, "orders", "order", violations, model.FOREIGN_ID_PATTERN)
    user_id = parse_name(request.user, "users", "user", violations, model.FOREIGN_ID_PATTERN)
    amount = None
    if request.HasField("amount"):
        amount = _amount(request.amount, "amount", violations)
    else:
        violations.add("amount", "is required")
    if not request.payment_token:
        violations.add("payment_token", "is required")
    elif len(request.payment_token) > MAX_PAYMENT_TOKEN:
        violations.add("payment_token", f"must be at most {MAX_PAYMENT_TOKEN} characters")
    idempotency = read_idempotency(request, violations, required=True, redact=_without_token)
    violations.raise_if_any()
    assert amount is not None
    assert idempotency is not None
    return AuthorizePayment(order_id, user_id, amount, request.payment_token, idempotency)


def capture_payment_command(
    request: payment_service_pb2.CapturePaymentRequest,
) -> CapturePayment:
    violations = Violations()
    payment_id = parse_name(request.name, "payments", "name", violations)
    idempotency = read_idempotency(request, violations, required=True)
    violations.raise_if_any()
    assert idempotency is not None
    return CapturePayment(payment_id, idempotency)


def void_payment_command(request: payment_service_pb2.VoidPaymentRequest) -> VoidPayment:
    violations = Violations()
    payment_id = parse_name(request.name, "payments", "name", violations)
    idempotency = read_idempotency(request, violations, required=True)
    violations.raise_if_any()
    assert idempotency is not None
    return VoidPayment(payment_id, idempotency)


def refund_payment_command(request: payment_service_pb2.RefundPaymentRequest) -> RefundPayment:
    violations = Violations()
    payment_id = parse_name(request.name, "payments", "name", violations)
    amount = None
    if request.HasField("amount"):
        amount = _amount(request.amount, "amount", violations)
    idempotency = read_idempotency(request, violations, required=True)
    violations.raise_if_any()
    assert idempotency is not None
    return RefundPayment(payment_id, amount, idempotency)


def payment_query(request: payment_service_pb2.ListPaymentsRequest) -> PaymentQuery:
    violations = Violations()
    order_id = user_id = None
    if request.order:
        order_id = parse_name(
            request.order, "orders", "order", violations, model.FOREIGN_ID_PATTERN
        )
    if request.user:
        user_id = parse_name(request.user, "users", "user", violations, model.FOREIGN_ID_PATTERN)
    if request.page_size < 0:
        violations.add("page_size", "must be >= 0")
    violations.raise_if_any()
    size = paging.page_size(request.page_size)
    query = PaymentQuery(size, order_id, user_id)
    after = paging.decode_time_position(request.page_token, query.fingerprint())
    return PaymentQuery(size, order_id, user_id, after)


def next_page_token(after: tuple[datetime, str] | None, query: PaymentQuery) -> str:
    return paging.encode_time_position(after, query.fingerprint())


def _amount(money: money_pb2.Money, field_path: str, violations: Violations) -> Money | None:
    problems = model.amount_violations(money.currency_code, money.units, money.nanos, field_path)
    violations.extend(problems)
    return None if problems else Money.of(money.currency_code, money.units, money.nanos)


def _without_token(request: Message) -> None:
    """Keeps only the card's last four characters in what the fingerprint hashes.

    The fingerprint is stored; a hash of a whole card number could be reversed by trying
    every number, so the token is not part of it.
    """
    assert isinstance(request, payment_service_pb2.AuthorizePaymentRequest)
    request.payment_token = request.payment_token.replace(" ", "").replace("-", "")[-4:]


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
