"""The checkout saga across real processes: catalog, inventory, payments and orders.

Each test places orders through the SDK and waits for the checkout to finish, then checks
the saga's promises with :meth:`ShopClients.invariant_violations`: a final state, stock
conserved with nothing left reserved, one capture per completed order and no money held
for a cancelled one.

The shop runs with short limits so the failure paths finish quickly: a checkout has
6 seconds (the reservation's time to live), a call from orders 1.5 seconds, and the
simulated card processor answers "timeout" after 3.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agora.orders.v1 import order_pb2
from agora.orders.v1 import order_service_pb2 as orders_pb
from agora_sdk import FailedPrecondition, InvalidArgument, OrdersClient, Unavailable
from tests.support.processes import free_port, running_service
from tests.support.shop import (
    CALL_TIMEOUT_S,
    DECLINED_CARD,
    INSUFFICIENT_FUNDS_CARD,
    TIMEOUT_CARD,
    UNAVAILABLE_CARD,
    Shop,
    running_shop,
)

SUCCEEDED = order_pb2.STEP_OUTCOME_SUCCEEDED
FAILED = order_pb2.STEP_OUTCOME_FAILED
COMPENSATED = order_pb2.STEP_OUTCOME_COMPENSATED


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(
        tmp_path_factory.mktemp("shop"),
        orders_env={
            "ORDERS_RESERVATION_TTL_SECONDS": "6",
            "ORDERS_STEP_TIMEOUT_SECONDS": "1.5",
        },
        payments_env={"PAYMENTS_PROCESSOR_TIMEOUT_SECONDS": "3"},
    ) as shop:
        yield shop


def history(order: order_pb2.Order) -> list[tuple[str, str, str]]:
    """The step history as (step, outcome, reason) names, for readable assertions."""
    return [
        (
            order_pb2.CheckoutStep.Name(record.step).removeprefix("CHECKOUT_STEP_"),
            order_pb2.StepOutcome.Name(record.outcome).removeprefix("STEP_OUTCOME_"),
            record.reason,
        )
        for record in order.step_history
    ]


async def test_an_order_is_priced_reserved_paid_and_completed(shop: Shop) -> None:
    async with shop.clients() as clients:
        await clients.stock({"tea": 10, "cup": 4})
        placed = await clients.place({"tea": 3, "cup": 1})
        assert placed.state == order_pb2.ORDER_STATE_PENDING
        # 3 x 4.50 + 12.00, from the catalog's prices.
        assert (placed.total.currency_code, placed.total.units, placed.total.nanos) == (
            "EUR",
            25,
            500_000_000,
        )
        final = await clients.wait_final(placed.name)
        assert final.state == order_pb2.ORDER_STATE_COMPLETED
        assert history(final) == [
            ("PRICE_PRODUCTS", "SUCCEEDED", ""),
            ("RESERVE_STOCK", "SUCCEEDED", ""),
            ("AUTHORIZE_PAYMENT", "SUCCEEDED", ""),
            ("CONFIRM_ORDER", "SUCCEEDED", ""),
            ("CAPTURE_PAYMENT", "SUCCEEDED", ""),
            ("COMMIT_RESERVATION", "SUCCEEDED", ""),
        ]
        assert final.reservation.startswith("reservations/")
        assert final.payment.startswith("payments/")
        assert (await clients.stock_of("tea")).on_hand == 7
        assert await clients.invariant_violations([final], {"tea": 10, "cup": 4}) == []


async def test_an_order_beyond_the_stock_is_cancelled_with_nothing_held(shop: Shop) -> None:
    async with shop.clients() as clients:
        await clients.stock({"tea": 2, "cup": 5})
        placed = await clients.place({"cup": 1, "tea": 3})
        final = await clients.wait_final(placed.name)
        assert final.state == order_pb2.ORDER_STATE_CANCELLED
        assert final.cancellation_reason == order_pb2.CANCELLATION_REASON_OUT_OF_STOCK
        assert history(final)[-1] == ("RESERVE_STOCK", "FAILED", "INSUFFICIENT_STOCK")
        assert await clients.payments_of(placed.name) == []
        assert await clients.invariant_violations([final], {"tea": 2, "cup": 5}) == []


@pytest.mark.parametrize("card", [DECLINED_CARD, INSUFFICIENT_FUNDS_CARD])
async def test_a_declined_card_cancels_the_order_and_returns_the_stock(
    shop: Shop, card: str
) -> None:
    async with shop.clients() as clients:
        await clients.stock({"pot": 3})
        placed = await clients.place({"pot": 2}, card)
        final = await clients.wait_final(placed.name)
        assert final.state == order_pb2.ORDER_STATE_CANCELLED
        assert final.cancellation_reason == order_pb2.CANCELLATION_REASON_PAYMENT_DECLINED
        steps = history(final)
        assert steps[2][:2] == ("AUTHORIZE_PAYMENT", "FAILED")
        assert steps[2][2] in ("PAYMENT_DECLINED", "INSUFFICIENT_FUNDS")
        assert steps[-1] == ("RESERVE_STOCK", "COMPENSATED", "")
        assert await clients.invariant_violations([final], {"pot": 3}) == []
        assert (await clients.stock_of("pot")).on_hand == 3


async def test_an_unreachable_processor_cancels_the_order_at_its_deadline(shop: Shop) -> None:
    async with shop.clients() as clients:
        await clients.stock({"tea": 5})
        placed = await clients.place({"tea": 1}, UNAVAILABLE_CARD)
        final = await clients.wait_final(placed.name)
        assert final.state == order_pb2.ORDER_STATE_CANCELLED
        assert final.cancellation_reason == order_pb2.CANCELLATION_REASON_RESERVATION_EXPIRED
        # Retried until the deadline, then recorded once with the last error's reason.
        assert ("AUTHORIZE_PAYMENT", "FAILED", "PROCESSOR_UNAVAILABLE") in history(final)
        assert ("RESERVE_STOCK", "COMPENSATED", "") in history(final)
        assert await clients.invariant_violations([final], {"tea": 5}) == []


async def test_a_payment_slower_than_the_call_deadline_ends_cancelled(shop: Shop) -> None:
    async with shop.clients() as clients:
        await clients.stock({"cup": 5})
        placed = await clients.place({"cup": 2}, TIMEOUT_CARD)
        final = await clients.wait_final(placed.name)
        assert final.state == order_pb2.ORDER_STATE_CANCELLED
        assert final.cancellation_reason == order_pb2.CANCELLATION_REASON_RESERVATION_EXPIRED
        # orders gives up on each call after 1.5 s; the processor would answer after 3.
        assert ("AUTHORIZE_PAYMENT", "FAILED", "DEADLINE_EXCEEDED") in history(final)
        assert await clients.invariant_violations([final], {"cup": 5}) == []


async def test_placing_again_with_the_same_request_id_places_and_charges_once(
    shop: Shop,
) -> None:
    async with shop.clients() as clients:
        await clients.stock({"pot": 10})
        request_id = str(uuid.uuid4())
        user = f"users/u{uuid.uuid4().hex[:12]}"
        first = await clients.place({"pot": 1}, user=user, request_id=request_id)
        final = await clients.wait_final(first.name)
        again = await clients.place({"pot": 1}, user=user, request_id=request_id)
        # The order as it was accepted, not as it is now.
        assert again == first
        assert again.state == order_pb2.ORDER_STATE_PENDING
        assert len(await clients.payments_of(first.name)) == 1
        listed = [
            o async for o in clients.orders.list_orders(orders_pb.ListOrdersRequest(user=user))
        ]
        assert [o.name for o in listed] == [first.name]
        with pytest.raises(InvalidArgument) as reused:
            await clients.place({"pot": 2}, user=user, request_id=request_id)
        assert reused.value.reason == "REQUEST_ID_REUSED"
        assert await clients.invariant_violations([final], {"pot": 10}) == []


async def test_a_customer_cancels_a_pending_order_and_its_steps_are_undone(shop: Shop) -> None:
    async with shop.clients() as clients:
        await clients.stock({"tea": 4})
        # A slow card keeps the checkout in AUTHORIZE_PAYMENT long enough to cancel.
        placed = await clients.place({"tea": 2}, TIMEOUT_CARD)
        await clients.wait_for(placed.name, order_pb2.CHECKOUT_STEP_RESERVE_STOCK, SUCCEEDED)
        cancelled = await clients.orders.cancel_order(
            orders_pb.CancelOrderRequest(name=placed.name, request_id=str(uuid.uuid4())),
            timeout=CALL_TIMEOUT_S,
        )
        assert cancelled.state in (
            order_pb2.ORDER_STATE_CANCELLING,
            order_pb2.ORDER_STATE_CANCELLED,
        )
        final = await clients.wait_final(placed.name)
        assert final.cancellation_reason == order_pb2.CANCELLATION_REASON_CUSTOMER_REQUESTED
        assert ("RESERVE_STOCK", "COMPENSATED", "") in history(final)
        assert await clients.invariant_violations([final], {"tea": 4}) == []

        completed = await clients.wait_final((await clients.place({"tea": 1})).name)
        with pytest.raises(FailedPrecondition) as refused:
            await clients.orders.cancel_order(
                orders_pb.CancelOrderRequest(name=completed.name), timeout=CALL_TIMEOUT_S
            )
        assert refused.value.reason == "ORDER_NOT_CANCELLABLE"
        assert refused.value.metadata["state"] == "ORDER_STATE_COMPLETED"


async def test_an_order_cannot_be_placed_while_the_catalog_is_down(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    env = {"AGORA_CATALOG_ADDR": nowhere, "AGORA_INVENTORY_ADDR": nowhere}
    with running_service("orders", tmp_path, env=env) as orders:
        async with OrdersClient(orders.address) as client:
            with pytest.raises(Unavailable) as down:
                await client.place_order(
                    orders_pb.PlaceOrderRequest(
                        user="users/alice",
                        line_items=[orders_pb.LineItem(product="products/tea", quantity=1)],
                        payment_token="4242424242424242",
                        request_id=str(uuid.uuid4()),
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
            assert down.value.reason == "CATALOG_UNAVAILABLE"
            stored = [
                o
                async for o in client.list_orders(
                    orders_pb.ListOrdersRequest(user="users/alice"), timeout=CALL_TIMEOUT_S
                )
            ]
            assert stored == []


async def test_a_checkout_publishes_its_events_in_order_on_one_trace(shop: Shop) -> None:
    async with shop.clients() as clients:
        await clients.stock({"cup": 5})
        completed = await clients.wait_final((await clients.place({"cup": 1})).name)
        declined = await clients.wait_final((await clients.place({"cup": 1}, DECLINED_CARD)).name)

    async def published(order: str) -> list[tuple[str, str]]:
        events = [e for e in await shop.events("orders") if e.order_name() == order]
        return [(e.event_type.rsplit(".", 1)[-1], e.traceparent) for e in events]

    async with asyncio.timeout(CALL_TIMEOUT_S):  # the relay publishes within moments
        while True:
            happy, sad = await published(completed.name), await published(declined.name)
            if len(happy) >= 3 and len(sad) >= 2:
                break
            await asyncio.sleep(0.1)
    assert [kind for kind, _ in happy] == ["OrderPlaced", "OrderConfirmed", "OrderCompleted"]
    assert [kind for kind, _ in sad] == ["OrderPlaced", "OrderCancelled"]
    # The checkout runs in the background, yet its events continue PlaceOrder's trace.
    assert len({trace for _, trace in happy}) == 1
    assert happy[0][1] != sad[0][1]
