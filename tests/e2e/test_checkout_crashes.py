"""Crash recovery: SIGKILL the orders process at every step of the checkout, then restart it.

For each named point of the saga (:data:`orders.domain.checkout.HOOK_POINTS`), orders is
started with ``ORDERS_FAULT_PAUSE_AT`` set to that point, an order is placed that passes
it, and once orders reports it is paused there it gets SIGKILL: no drain, no cleanup.
A new orders process on the same database must then finish or undo the order, and the
invariants hold: a final state, stock conserved with nothing reserved, exactly one
capture for a completed order, no money held for a cancelled one, and no step run twice
(each step succeeded at most once; one payment per order).

The reservation lives 60 seconds here, longer than any wait, so a reservation leaked by
a replayed step would still be held when the invariants are checked.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agora.orders.v1 import order_pb2
from agora.orders.v1 import order_service_pb2 as orders_pb
from orders.domain.checkout import HOOK_POINTS
from tests.support.processes import ProcessFailed, wait_until
from tests.support.shop import (
    APPROVED_CARD,
    CALL_TIMEOUT_S,
    DECLINED_CARD,
    TIMEOUT_CARD,
    Shop,
    running_shop,
)

#: Bound on the paused orders process reaching its point.
PAUSE_WAIT_S = 30.0

#: How each point is reached: the card to pay with, and whether the customer cancels.
SCENARIOS = {
    **{point: (APPROVED_CARD, False) for point in HOOK_POINTS if not point.startswith("undo_")},
    "undo_reserve_stock:before": (DECLINED_CARD, False),
    "undo_reserve_stock:after": (DECLINED_CARD, False),
    # A cancel while the slow card keeps AUTHORIZE_PAYMENT in doubt undoes the payment too.
    "undo_authorize_payment:before": (TIMEOUT_CARD, True),
    "undo_authorize_payment:after": (TIMEOUT_CARD, True),
}


def test_every_hook_point_has_a_crash_scenario() -> None:
    assert sorted(SCENARIOS) == sorted(HOOK_POINTS)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(
        tmp_path_factory.mktemp("crash-shop"),
        orders_env={"ORDERS_RESERVATION_TTL_SECONDS": "60", "ORDERS_STEP_TIMEOUT_SECONDS": "1"},
        payments_env={"PAYMENTS_PROCESSOR_TIMEOUT_SECONDS": "2"},
    ) as shop:
        yield shop


def paused_at(log: Path, point: str) -> bool:
    return log.is_file() and f"paused {point}" in log.read_text().splitlines()


@pytest.mark.parametrize("point", HOOK_POINTS)
async def test_orders_killed_at_a_step_resumes_it_after_a_restart(
    shop: Shop, point: str, tmp_path: Path
) -> None:
    card, customer_cancels = SCENARIOS[point]
    fault_log = tmp_path / "faults.log"
    shop.kill_orders()
    shop.start_orders({"ORDERS_FAULT_PAUSE_AT": point, "ORDERS_FAULT_LOG": str(fault_log)})
    async with shop.clients() as clients:
        await clients.stock({"tea": 10, "cup": 10})
        placed = await clients.place({"tea": 2, "cup": 1}, card)
        if customer_cancels:
            await clients.wait_for(
                placed.name, order_pb2.CHECKOUT_STEP_RESERVE_STOCK, order_pb2.STEP_OUTCOME_SUCCEEDED
            )
            await clients.orders.cancel_order(
                orders_pb.CancelOrderRequest(name=placed.name, request_id=str(uuid.uuid4())),
                timeout=CALL_TIMEOUT_S,
            )
        if not wait_until(lambda: paused_at(fault_log, point), PAUSE_WAIT_S):
            raise ProcessFailed(f"orders never paused at {point}:\n{shop.orders.tail()}")
        shop.kill_orders()

    shop.start_orders()  # without the hook: it resumes every unfinished order
    async with shop.clients() as clients:
        final = await clients.wait_final(placed.name)
        assert await clients.invariant_violations([final], {"tea": 10, "cup": 10}) == []
        successes = Counter(
            record.step
            for record in final.step_history
            if record.outcome == order_pb2.STEP_OUTCOME_SUCCEEDED
        )
        assert max(successes.values()) == 1, final.step_history
        assert len(await clients.payments_of(placed.name)) <= 1
        if card == APPROVED_CARD:
            assert final.state == order_pb2.ORDER_STATE_COMPLETED
        else:
            assert final.state == order_pb2.ORDER_STATE_CANCELLED
