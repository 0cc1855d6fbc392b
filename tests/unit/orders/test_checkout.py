"""The checkout saga over fakes: outcomes, compensations, retries, the deadline, crashes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orders.domain.checkout import HOOK_POINTS, RetryPolicy, cancellation_for
from orders.domain.model import CancellationReason, Order, OrderState, Outcome, Step
from runtime.errors import (
    AgoraError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from tests.unit.orders.fakes import ALWAYS, Call, FakePayment, Shop, ended

S, F, C = Outcome.SUCCEEDED, Outcome.FAILED, Outcome.COMPENSATED
PRICE, RESERVE, AUTHORIZE = Step.PRICE_PRODUCTS, Step.RESERVE_STOCK, Step.AUTHORIZE_PAYMENT
CONFIRM, CAPTURE, COMMIT = Step.CONFIRM_ORDER, Step.CAPTURE_PAYMENT, Step.COMMIT_RESERVATION
HAPPY = [(s, S, "") for s in (PRICE, RESERVE, AUTHORIZE, CONFIRM, CAPTURE, COMMIT)]
NOT_CAPTURABLE = FailedPrecondition("authorization lapsed", reason="PAYMENT_NOT_CAPTURABLE")
EXPIRED = FailedPrecondition("the reservation expired", reason="RESERVATION_EXPIRED")

Record = tuple[Step, Outcome, str]


def history(order: Order) -> list[Record]:
    return [(r.step, r.outcome, r.reason) for r in order.history]


def decline(shop: Shop, reason: str = "PAYMENT_DECLINED") -> None:
    shop.payments.fail("authorize", FailedPrecondition("declined", reason=reason), ALWAYS)


@pytest.fixture
def shop() -> Shop:
    return Shop()


async def test_a_checkout_reserves_authorizes_confirms_captures_and_commits(shop: Shop) -> None:
    placed = shop.place()
    tokens: dict[str, str] = {}

    async def hook(point: str) -> None:
        tokens[point] = shop.order().payment_token

    order = await shop.drive(hook)
    assert order == shop.order()
    assert ended(order) == (OrderState.COMPLETED, None)
    assert history(order) == HAPPY
    assert list(tokens) == [p for p in HOOK_POINTS if not p.startswith("undo_")]
    assert tokens["authorize_payment:before"] == "tok_visa"
    assert tokens["authorize_payment:after"] == "tok_visa"
    assert tokens["confirm_order:before"] == order.payment_token == ""
    assert (order.reservation_id, order.payment_id) == ("r1", "p1")
    assert shop.inventory.calls == [
        Call("reserve", "o1", placed.request_id("reserve-stock")),
        Call("commit", "r1", placed.request_id("commit-reservation")),
    ]
    assert shop.payments.calls == [
        Call("authorize", "o1", placed.request_id("authorize-payment")),
        Call("capture", "p1", placed.request_id("capture-payment")),
    ]
    assert shop.payments.payments["p1"] == FakePayment(
        "p1", "o1", placed.total, "tok_visa", "CAPTURED"
    )
    assert shop.inventory.reservations["r1"].state == "COMMITTED"
    assert [r.finish_time for r in order.history] == sorted(r.finish_time for r in order.history)


async def test_an_unknown_order_has_no_checkout(shop: Shop) -> None:
    assert await shop.checkout().drive("nope") is None


async def test_out_of_stock_cancels_with_nothing_to_undo(shop: Shop) -> None:
    shop.inventory.fail("reserve", FailedPrecondition("1 left", reason="INSUFFICIENT_STOCK"))
    shop.place()
    order = await shop.drive()
    assert ended(order) == (OrderState.CANCELLED, CancellationReason.OUT_OF_STOCK)
    assert history(order) == [(PRICE, S, ""), (RESERVE, F, "INSUFFICIENT_STOCK")]
    assert (order.undo, order.payment_token) == ((), "")
    assert shop.inventory.methods() == ["reserve"]
    assert shop.payments.calls == []


@pytest.mark.parametrize("reason", ["PAYMENT_DECLINED", "INSUFFICIENT_FUNDS"])
async def test_a_declined_payment_releases_the_stock(shop: Shop, reason: str) -> None:
    decline(shop, reason)
    placed = shop.place()
    order = await shop.drive()
    assert ended(order) == (OrderState.CANCELLED, CancellationReason.PAYMENT_DECLINED)
    assert history(order) == [*HAPPY[:2], (AUTHORIZE, F, reason), (RESERVE, C, "")]
    assert shop.inventory.reservations["r1"].state == "RELEASED"
    assert shop.inventory.calls[-1] == Call("release", "r1", placed.request_id("release-stock"))
    assert shop.payments.methods() == ["authorize"]
    assert order.payment_token == ""


@pytest.mark.parametrize("error", [Unavailable("down"), DeadlineExceeded("slow")])
async def test_transient_failures_are_retried_with_the_same_request_id_unrecorded(
    shop: Shop, error: AgoraError
) -> None:
    shop.inventory.fail("reserve", error, 2, took=True)
    shop.payments.fail("authorize", error, 2, took=True)
    shop.payments.fail("capture", error, 1)
    shop.inventory.fail("commit", error, 1, took=True)
    placed = shop.place()
    order = await shop.drive()
    assert ended(order) == (OrderState.COMPLETED, None)
    assert history(order) == HAPPY
    assert shop.inventory.methods() == ["reserve"] * 3 + ["commit"] * 2
    assert shop.payments.methods() == ["authorize"] * 3 + ["capture"] * 2
    assert (len(shop.inventory.reservations), len(shop.payments.payments)) == (1, 1)
    shop.assert_request_ids(placed)


@pytest.mark.parametrize("stuck", ["reserve", "authorize"])
async def test_a_step_failing_until_the_deadline_is_given_up_and_undone_in_doubt(
    shop: Shop, stuck: str
) -> None:
    peer = shop.inventory if stuck == "reserve" else shop.payments
    peer.fail(stuck, DeadlineExceeded("slow"), 1, took=True)
    peer.fail(stuck, Unavailable("still down"), ALWAYS)
    point = "reserve_stock:before" if stuck == "reserve" else "authorize_payment:before"

    async def hook(at: str) -> None:
        if at == point:
            shop.clock.advance(timedelta(minutes=4))
        if at.startswith("undo_"):
            peer.heal()

    placed = shop.place()
    order = await shop.drive(hook)
    assert ended(order) == (OrderState.CANCELLED, CancellationReason.RESERVATION_EXPIRED)
    assert order.update_time >= placed.checkout_deadline
    if stuck == "reserve":
        assert history(order) == [(PRICE, S, ""), (RESERVE, F, "UNAVAILABLE"), (RESERVE, C, "")]
        assert shop.inventory.methods() == ["reserve"] * 5 + ["release"]
    else:
        undone = [(AUTHORIZE, F, "UNAVAILABLE"), (AUTHORIZE, C, ""), (RESERVE, C, "")]
        assert history(order) == [*HAPPY[:2], *undone]
        assert shop.payments.payments["p1"].state == "VOIDED"
    assert "still down" in next(r.detail for r in order.history if r.outcome is F)
    assert shop.inventory.reservations["r1"].state == "RELEASED"
    assert shop.payments.live() == []
    shop.assert_request_ids(placed)


@pytest.mark.parametrize("undo", ["undo-ok", "undo-refused", "undo-answer-lost"])
@pytest.mark.parametrize("failing", ["capture", "commit"])
async def test_a_failure_after_confirmation_settles_the_payment_and_releases_stock(
    shop: Shop, failing: str, undo: str
) -> None:
    if failing == "capture":
        shop.payments.fail("capture", NOT_CAPTURABLE)
        failed = [(CAPTURE, F, "PAYMENT_NOT_CAPTURABLE"), (CONFIRM, C, ""), (AUTHORIZE, C, "")]
        reason, settled = CancellationReason.PAYMENT_FAILED, "VOIDED"
    else:
        shop.inventory.fail("commit", EXPIRED)
        failed = [HAPPY[4], (COMMIT, F, "RESERVATION_EXPIRED"), (CONFIRM, C, ""), (CAPTURE, C, "")]
        reason, settled = CancellationReason.RESERVATION_EXPIRED, "REFUNDED"
    settle = "void" if settled == "VOIDED" else "refund"
    if undo != "undo-ok":  # each compensation fails twice (done or not), then succeeds
        lost = undo == "undo-answer-lost"
        shop.payments.fail(settle, Unavailable("down"), 2, took=lost)
        shop.inventory.fail("release", Unavailable("down"), 2, took=lost)
    placed = shop.place()
    order = await shop.drive()
    assert ended(order) == (OrderState.CANCELLED, reason)
    assert history(order) == [*HAPPY[:4], *failed, (RESERVE, C, "")]
    assert shop.payments.payments["p1"].state == settled
    assert shop.inventory.reservations["r1"].state == "RELEASED"
    assert shop.inventory.methods().count("release") == (1 if undo == "undo-ok" else 3)
    if undo == "undo-refused":
        assert shop.payments.methods().count(settle) == 3
    shop.assert_request_ids(placed)


@pytest.mark.parametrize(
    ("step", "reason", "expected"),
    [
        (AUTHORIZE, "INVALID_PAYMENT_TOKEN", CancellationReason.PAYMENT_FAILED),
        (RESERVE, "RESERVATION_EXPIRED", CancellationReason.RESERVATION_EXPIRED),
        (RESERVE, "PRODUCT_NOT_FOUND", CancellationReason.CHECKOUT_ERROR),
        (COMMIT, "RESERVATION_RELEASED", CancellationReason.CHECKOUT_ERROR),
    ],
)
def test_a_final_failure_names_why_the_order_is_cancelled(
    step: Step, reason: str, expected: CancellationReason
) -> None:
    assert cancellation_for(step, InvalidArgument("no", reason=reason)) is expected


def test_retry_delays_grow_with_jitter_up_to_the_maximum() -> None:
    policy = RetryPolicy(initial=0.2, maximum=1.0)
    for attempt, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (30, 1.0)]:
        assert all(ceiling / 2 <= policy.delay(attempt) <= ceiling for _ in range(20))


# --- crashes --------------------------------------------------------------------------------

PATHS = {
    "happy": [p for p in HOOK_POINTS if not p.startswith("undo_")],
    "declined": [
        "reserve_stock:before",
        "reserve_stock:after",
        "authorize_payment:before",
        "undo_reserve_stock:before",
        "undo_reserve_stock:after",
    ],
    # Not asked for, but it is the path that reaches undo_authorize_payment.
    "capture_failed": [
        *(p for p in HOOK_POINTS[:6]),
        "undo_authorize_payment:before",
        "undo_authorize_payment:after",
        "undo_reserve_stock:before",
        "undo_reserve_stock:after",
    ],
}


class Crash(Exception):
    """The process dies here."""


def peer_states(shop: Shop) -> tuple[list[str], list[str]]:
    reservations = [r.state for r in shop.inventory.reservations.values()]
    return reservations, [p.state for p in shop.payments.payments.values()]


def arrange(shop: Shop, path: str) -> Order:
    if path == "declined":
        decline(shop)
    if path == "capture_failed":
        shop.payments.fail("capture", NOT_CAPTURABLE)
    return shop.place()


@pytest.mark.parametrize("path", list(PATHS))
async def test_the_crash_points_are_those_each_path_reaches(path: str) -> None:
    shop, points = Shop(), list[str]()

    async def record(point: str) -> None:
        points.append(point)

    arrange(shop, path)
    await shop.drive(record)
    assert points == PATHS[path]
    assert set().union(*PATHS.values()) == set(HOOK_POINTS)


@pytest.mark.parametrize(
    ("path", "point"), [(path, point) for path, points in PATHS.items() for point in points]
)
async def test_a_checkout_resumed_after_a_crash_ends_as_an_uninterrupted_one(
    path: str, point: str
) -> None:
    calm = Shop()
    arrange(calm, path)
    expected = await calm.drive()
    shop = Shop()
    placed = arrange(shop, path)

    async def crash(at: str) -> None:
        if at == point:
            raise Crash(at)

    with pytest.raises(Crash):
        await shop.drive(crash)
    order = await shop.drive()
    assert (ended(order), history(order)) == (ended(expected), history(expected))
    assert peer_states(shop) == peer_states(calm)
    assert len(shop.payments.live()) == (1 if order.state is OrderState.COMPLETED else 0)
    shop.assert_request_ids(placed)
