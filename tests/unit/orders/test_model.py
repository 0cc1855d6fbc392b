"""Orders' model: pricing, the checkout plan and the order's state changes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from orders.domain.model import (
    Action,
    CancellationReason,
    LineItem,
    Money,
    Order,
    OrderState,
    Outcome,
    PricedProduct,
    Step,
)
from tests.unit.orders.fakes import NOON, TEAPOT, TTL

CUP = PricedProduct("cup", "Cup", Money.of("EUR", 0, 100_000_000))
LATER = NOON + timedelta(minutes=1)
SUCCEEDED, COMPENSATED = Outcome.SUCCEEDED, Outcome.COMPENSATED


def placed(token: str = "tok_visa") -> Order:
    items = [LineItem("teapot", 3), LineItem("cup", 7)]
    return Order.place("o1", "u1", items, [CUP, TEAPOT], token, TTL, NOON)


def test_money_splits_into_units_and_nanos_of_the_same_sign() -> None:
    amount = Money.of("EUR", 12, 340_000_000)
    assert (amount.units, amount.fractional_nanos) == (12, 340_000_000)
    negative = Money("EUR", -1_500_000_000)
    assert (negative.units, negative.fractional_nanos) == (-1, -500_000_000)
    assert [str(Money.of("EUR", 25)), str(amount), str(negative)] == [
        "25.00 EUR",
        "12.34 EUR",
        "-1.50 EUR",
    ]


def test_an_order_is_priced_per_line_and_in_total_in_nanos() -> None:
    order = placed()
    assert [(line.product_id, line.display_name, line.quantity) for line in order.lines] == [
        ("teapot", "Teapot", 3),
        ("cup", "Cup", 7),
    ]
    assert [line.unit_price for line in order.lines] == [TEAPOT.price, CUP.price]
    assert [line.line_total.nanos for line in order.lines] == [37_500_000_000, 700_000_000]
    assert order.total == Money("EUR", 38_200_000_000)
    assert (order.state, order.revision, order.name) == (OrderState.PENDING, 1, "orders/o1")
    first = order.history[0]
    assert (first.step, first.outcome, first.finish_time) == (Step.PRICE_PRODUCTS, SUCCEEDED, NOON)
    assert order.checkout_deadline == NOON + TTL
    assert "tok_visa" not in repr(order)


def test_request_ids_are_uuids_fixed_by_order_and_purpose() -> None:
    order = placed()
    rid = order.request_id("reserve-stock")
    assert uuid.UUID(rid).version == 5
    assert rid == order.started(Step.RESERVE_STOCK, LATER).request_id("reserve-stock")
    assert rid != order.request_id("authorize-payment")
    assert rid != replace(order, id="o2").request_id("reserve-stock")


def test_the_etag_changes_with_every_change() -> None:
    order = placed()
    started = order.started(Step.RESERVE_STOCK, LATER)
    assert (started.revision, started.update_time) == (2, LATER)
    assert order.etag != started.etag
    assert order.etag == placed().etag


def test_the_plan_walks_the_forward_steps_to_completed() -> None:
    order = placed()
    seen = []
    while (action := order.next_action()) is not None:
        assert not action.undo
        seen.append((action.step, order.state))
        order = order.started(action.step, LATER)
        assert order.in_flight is action.step
        order = order.succeeded(
            action.step,
            LATER,
            "done",
            reservation_id="r1" if action.step is Step.RESERVE_STOCK else "",
            payment_id="p1" if action.step is Step.AUTHORIZE_PAYMENT else "",
            reservation_expiry=LATER + TTL,
        )
        assert order.in_flight is None
    P, C = OrderState.PENDING, OrderState.CONFIRMED
    assert seen == [
        (Step.RESERVE_STOCK, P),
        (Step.AUTHORIZE_PAYMENT, P),
        (Step.CONFIRM_ORDER, P),
        (Step.CAPTURE_PAYMENT, C),
        (Step.COMMIT_RESERVATION, C),
    ]
    assert order.state is OrderState.COMPLETED
    assert (order.reservation_id, order.payment_id, order.payment_token) == ("r1", "p1", "")
    assert order.checkout_deadline == LATER + TTL
    assert [r.step for r in order.history] == [Step.PRICE_PRODUCTS, *(s for s, _ in seen)]


def test_an_order_is_overdue_only_while_pending_from_its_deadline_on() -> None:
    order = placed()
    deadline = order.checkout_deadline
    assert not order.is_overdue(deadline - timedelta(microseconds=1))
    assert order.is_overdue(deadline)
    confirmed = replace(order, state=OrderState.CONFIRMED)
    assert not confirmed.is_overdue(deadline + TTL)


def test_a_cancellation_undoes_the_payment_then_the_stock_including_a_step_in_flight() -> None:
    reserved = placed().succeeded(Step.RESERVE_STOCK, LATER, "ok", reservation_id="r1")
    cancelling = reserved.started(Step.AUTHORIZE_PAYMENT, LATER).cancelled(
        CancellationReason.CUSTOMER_REQUESTED, LATER
    )
    assert cancelling.state is OrderState.CANCELLING
    assert cancelling.undo == (Step.AUTHORIZE_PAYMENT, Step.RESERVE_STOCK)
    assert cancelling.next_action() == Action(Step.AUTHORIZE_PAYMENT, undo=True)
    assert cancelling.cancelled(CancellationReason.OUT_OF_STOCK, LATER) is cancelling
    half = cancelling.undone(Step.AUTHORIZE_PAYMENT, LATER, [])
    assert half.next_action() == Action(Step.RESERVE_STOCK, undo=True)
    done = half.undone(Step.RESERVE_STOCK, LATER, [(Step.RESERVE_STOCK, "released")])
    assert (done.state, done.next_action()) == (OrderState.CANCELLED, None)
    assert done.cancellation_reason is CancellationReason.CUSTOMER_REQUESTED
    assert [(r.step, r.outcome) for r in done.history[2:]] == [(Step.RESERVE_STOCK, COMPENSATED)]
