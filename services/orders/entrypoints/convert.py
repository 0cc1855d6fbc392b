"""Protobuf <-> domain conversion for orders, including every check of request shape.

``field_behavior`` annotations document intent but enforce nothing, so required fields,
name formats, quantities and page sizes are checked here; every problem in a request is
reported at once as a ``BadRequest`` field violation.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2

from agora.orders.v1 import order_pb2, order_service_pb2
from orders.domain import model
from orders.domain.commands import CancelOrder, PlaceOrder
from orders.domain.model import LineItem, Money, OrderQuery, OrderState
from runtime import paging, requests
from runtime.errors import InvalidArgument
from runtime.requests import parse_name, read_idempotency, require_name

MAX_LINE_ITEMS = 100
MAX_QUANTITY = 1000
MAX_PAYMENT_TOKEN = 512
MIN_CARD_DIGITS, MAX_CARD_DIGITS = 12, 19

STATE_TO_PROTO = {
    OrderState.PENDING: order_pb2.ORDER_STATE_PENDING,
    OrderState.CONFIRMED: order_pb2.ORDER_STATE_CONFIRMED,
    OrderState.COMPLETED: order_pb2.ORDER_STATE_COMPLETED,
    OrderState.CANCELLING: order_pb2.ORDER_STATE_CANCELLING,
    OrderState.CANCELLED: order_pb2.ORDER_STATE_CANCELLED,
}
STATE_FROM_PROTO = {value: key for key, value in STATE_TO_PROTO.items()}
REASON_TO_PROTO = {
    reason: order_pb2.CancellationReason.Value(f"CANCELLATION_REASON_{reason.value}")
    for reason in model.CancellationReason
}
STEP_TO_PROTO = {
    step: order_pb2.CheckoutStep.Value(f"CHECKOUT_STEP_{step.value}") for step in model.Step
}
OUTCOME_TO_PROTO = {
    outcome: order_pb2.StepOutcome.Value(f"STEP_OUTCOME_{outcome.value}")
    for outcome in model.Outcome
}


class Violations(requests.Violations):
    """Collects field violations; a bad payment token alone gets its own reason."""

    def raise_if_any(self, reason: str | None = None) -> None:
        if not self.items:
            return
        error = InvalidArgument.for_fields(self.items, reason=reason)
        if all(v.field == "payment_token" for v in self.items):
            error.reason = "INVALID_PAYMENT_TOKEN"
        raise error


def parse_order_name(name: str, field_path: str = "name") -> str:
    return require_name(name, "orders", field_path)


def place_order_command(request: order_service_pb2.PlaceOrderRequest) -> PlaceOrder:
    violations = Violations()
    user_id = parse_name(request.user, "users", "user", violations, variable="user")
    if not request.line_items:
        violations.add("line_items", "is required: order at least one product")
    elif len(request.line_items) > MAX_LINE_ITEMS:
        violations.add("line_items", f"must hold at most {MAX_LINE_ITEMS} items")
    items: list[LineItem] = []
    seen: set[str] = set()
    for index, item in enumerate(request.line_items):
        path = f"line_items[{index}]"
        product_id = parse_name(
            item.product, "products", f"{path}.product", violations, variable="product"
        )
        if product_id and product_id in seen:
            violations.add(f"{path}.product", "names a product already listed; list each once")
        seen.add(product_id)
        if not 1 <= item.quantity <= MAX_QUANTITY:
            violations.add(f"{path}.quantity", f"must be from 1 to {MAX_QUANTITY}")
        items.append(LineItem(product_id, item.quantity))
    _check_payment_token(request.payment_token, violations)
    idempotency = read_idempotency(request, violations, required=True, redact=_without_token)
    violations.raise_if_any()
    assert idempotency is not None  # required=True reports a missing id above
    return PlaceOrder(user_id, tuple(items), request.payment_token, idempotency)


def cancel_order_command(request: order_service_pb2.CancelOrderRequest) -> CancelOrder:
    violations = Violations()
    order_id = parse_name(request.name, "orders", "name", violations)
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    return CancelOrder(order_id, request.etag, idempotency)


def order_query(request: order_service_pb2.ListOrdersRequest) -> OrderQuery:
    violations = Violations()
    user_id = parse_name(request.user, "users", "user", violations, variable="user")
    if request.page_size < 0:
        violations.add("page_size", "must be >= 0")
    state = None
    if request.state != order_pb2.ORDER_STATE_UNSPECIFIED:
        state = STATE_FROM_PROTO.get(request.state)
        if state is None:
            violations.add("state", "is not a known OrderState")
    violations.raise_if_any()
    size = paging.page_size(request.page_size)
    query = OrderQuery(user_id, size, state)
    after = paging.decode_time_position(request.page_token, query.fingerprint())
    return OrderQuery(user_id, size, state, after)


def next_page_token(after: tuple[datetime, str] | None, query: OrderQuery) -> str:
    return paging.encode_time_position(after, query.fingerprint())


def money_to_proto(money: Money) -> money_pb2.Money:
    return money_pb2.Money(
        currency_code=money.currency_code, units=money.units, nanos=money.fractional_nanos
    )


def order_to_proto(order: model.Order) -> order_pb2.Order:
    return order_pb2.Order(
        name=order.name,
        user=f"users/{order.user_id}",
        lines=[
            order_pb2.OrderLine(
                product=f"products/{line.product_id}",
                display_name=line.display_name,
                quantity=line.quantity,
                unit_price=money_to_proto(line.unit_price),
                line_total=money_to_proto(line.line_total),
            )
            for line in order.lines
        ],
        total=money_to_proto(order.total),
        state=STATE_TO_PROTO[order.state],
        cancellation_reason=(
            order_pb2.CANCELLATION_REASON_UNSPECIFIED
            if order.cancellation_reason is None
            else REASON_TO_PROTO[order.cancellation_reason]
        ),
        reservation=f"reservations/{order.reservation_id}" if order.reservation_id else "",
        payment=f"payments/{order.payment_id}" if order.payment_id else "",
        step_history=[
            order_pb2.CheckoutStepRecord(
                step=STEP_TO_PROTO[record.step],
                outcome=OUTCOME_TO_PROTO[record.outcome],
                finish_time=_timestamp(record.finish_time),
                reason=record.reason,
                detail=record.detail,
            )
            for record in order.history
        ],
        create_time=_timestamp(order.create_time),
        update_time=_timestamp(order.update_time),
        etag=order.etag,
    )


def _check_payment_token(token: str, violations: Violations) -> None:
    """A card number, as payments takes it: 12-19 digits (spaces, hyphens allowed), Luhn.

    The message never repeats the token.
    """
    if not token:
        violations.add("payment_token", "is required: the card number to charge")
        return
    digits = token.replace(" ", "").replace("-", "")
    if len(token) > MAX_PAYMENT_TOKEN or not (digits.isascii() and digits.isdigit()):
        violations.add("payment_token", "must be a card number: digits, spaces and hyphens")
    elif not MIN_CARD_DIGITS <= len(digits) <= MAX_CARD_DIGITS:
        violations.add(
            "payment_token", f"a card number has {MIN_CARD_DIGITS} to {MAX_CARD_DIGITS} digits"
        )
    elif not _passes_luhn(digits):
        violations.add("payment_token", "the card number fails its check digit (Luhn)")


def _passes_luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _without_token(request: Message) -> None:
    """Keeps only the card's last four digits in what the stored fingerprint hashes."""
    assert isinstance(request, order_service_pb2.PlaceOrderRequest)
    request.payment_token = request.payment_token.replace(" ", "").replace("-", "")[-4:]


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
