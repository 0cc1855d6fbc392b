"""Orders' use cases over fakes: placing, reading, listing and cancelling orders."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import grpc
import pytest

from orders.domain import usecases
from orders.domain.commands import CancelOrder, PlaceOrder
from orders.domain.errors import (
    ActingForAnotherUser,
    EtagMismatch,
    NotOrderOwner,
    OrderNotCancellable,
    OrderNotFound,
)
from orders.domain.model import (
    CancellationReason,
    LineItem,
    Money,
    Order,
    OrderQuery,
    OrderState,
    Outcome,
    PricedProduct,
    Step,
)
from runtime.errors import AgoraError, FailedPrecondition, InvalidArgument, PermissionDenied
from runtime.idempotency import Idempotency
from tests.unit.orders.fakes import TEAPOT, TTL, FakeCatalog, Shop, ended

PENDING = OrderState.PENDING
CUP = PricedProduct("cup", "Cup", Money.of("EUR", 0, 100_000_000))
BOOK = PricedProduct("book", "Book", Money.of("USD", 10))
ITEMS = (LineItem("teapot", 3), LineItem("cup", 7))
BY_CUSTOMER = (OrderState.CANCELLED, CancellationReason.CUSTOMER_REQUESTED)


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog(TEAPOT, CUP, BOOK)


def placing(request_id: str = "req-1", items: tuple[LineItem, ...] = ITEMS) -> PlaceOrder:
    return PlaceOrder("u1", items, "tok_visa", Idempotency(request_id, repr(items)))


async def place(
    shop: Shop,
    catalog: FakeCatalog,
    command: PlaceOrder | None = None,
    restricted_to: str | None = None,
) -> Order:
    return await usecases.place_order(
        shop.uow(), catalog, command or placing(), TTL, shop.clock(), restricted_to=restricted_to
    )


async def cancel(
    shop: Shop,
    etag: str = "",
    request_id: str | None = None,
    order_id: str = "o1",
    restricted_to: str | None = None,
) -> Order:
    once = Idempotency(request_id, "f") if request_id else None
    return await usecases.cancel_order(
        shop.uow(), CancelOrder(order_id, etag, once), shop.clock(), restricted_to=restricted_to
    )


def visible(order: Order) -> Order:
    """The order without what the contract never shows."""
    return replace(order, payment_token="", checkout_deadline=order.create_time)


# --- place ----------------------------------------------------------------------------------


async def test_an_order_is_priced_from_the_catalog_and_stored_pending(
    shop: Shop, catalog: FakeCatalog
) -> None:
    order = await place(shop, catalog)
    assert shop.store.orders == {order.id: order}
    assert shop.store.requests["req-1"].resource == order.name
    assert [line.unit_price for line in order.lines] == [TEAPOT.price, CUP.price]
    assert order.total == Money("EUR", 38_200_000_000)
    assert (order.state, order.payment_token, len(order.history)) == (PENDING, "tok_visa", 1)
    catalog.products["teapot"] = PricedProduct("teapot", "Teapot", Money.of("EUR", 99))
    assert (await usecases.get_order(shop.uow(), order.id, restricted_to=None)).total == order.total


@pytest.mark.parametrize(
    ("other", "down", "reason", "metadata"),
    [
        ("book", False, "CURRENCY_MISMATCH", {"currencies": "EUR,USD"}),
        ("kettle", False, "PRODUCT_NOT_FOUND", {"products": "products/kettle"}),
        ("cup", True, "CATALOG_UNAVAILABLE", {}),
    ],
)
async def test_an_order_that_cannot_be_priced_is_not_stored(
    shop: Shop, catalog: FakeCatalog, other: str, down: bool, reason: str, metadata: object
) -> None:
    catalog.down = down
    with pytest.raises(AgoraError) as caught:
        await place(shop, catalog, placing(items=(LineItem("teapot", 1), LineItem(other, 1))))
    assert (caught.value.reason, caught.value.metadata) == (reason, metadata)
    assert (shop.store.orders, shop.store.requests) == ({}, {})


async def test_a_repeated_placement_returns_the_order_as_accepted_after_it_moved_on(
    shop: Shop, catalog: FakeCatalog
) -> None:
    first = await place(shop, catalog)
    shop.clock.advance(timedelta(minutes=1))
    done = await shop.drive(order_id=first.id)
    assert done is not None
    assert done.state is OrderState.COMPLETED
    again = await place(shop, catalog)
    assert visible(again) == visible(first)
    assert (again.state, again.etag, len(again.history)) == (PENDING, first.etag, 1)
    assert catalog.calls == 1
    assert list(shop.store.orders.values()) == [done]


async def test_a_request_id_reused_for_another_order_is_refused(
    shop: Shop, catalog: FakeCatalog
) -> None:
    await place(shop, catalog)
    with pytest.raises(InvalidArgument) as caught:
        await place(shop, catalog, placing(items=(LineItem("teapot", 4),)))
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert len(shop.store.orders) == 1


# --- get and list ---------------------------------------------------------------------------


async def test_an_unknown_order_is_not_found(shop: Shop) -> None:
    with pytest.raises(OrderNotFound) as caught:
        await usecases.get_order(shop.uow(), "nope", restricted_to=None)
    assert caught.value.code is grpc.StatusCode.NOT_FOUND
    assert caught.value.reason == "ORDER_NOT_FOUND"
    assert caught.value.metadata == {"order": "orders/nope"}


async def test_orders_are_listed_newest_first_per_user_and_state(shop: Shop) -> None:
    for order_id in ("o1", "o2", "o3"):
        shop.place(order_id)
        shop.clock.advance(timedelta(seconds=1))
    shop.store.orders["o2"] = shop.order("o2").cancelled_by_customer(shop.clock())
    first = await usecases.list_orders(shop.uow(), OrderQuery("u1", 2), restricted_to=None)
    assert [o.id for o in first.items] == ["o3", "o2"]
    rest = await usecases.list_orders(
        shop.uow(), OrderQuery("u1", 2, after=first.next_after), restricted_to=None
    )
    assert ([o.id for o in rest.items], rest.next_after) == (["o1"], None)
    pending = await usecases.list_orders(
        shop.uow(), OrderQuery("u1", 5, OrderState.PENDING), restricted_to=None
    )
    assert [o.id for o in pending.items] == ["o3", "o1"]
    assert (
        await usecases.list_orders(shop.uow(), OrderQuery("u2", 5), restricted_to=None)
    ).items == []


# --- cancel ---------------------------------------------------------------------------------


async def test_a_pending_order_with_nothing_started_is_cancelled_at_once(shop: Shop) -> None:
    shop.place()
    order = await cancel(shop)
    assert order == shop.order()
    assert ended(order) == BY_CUSTOMER
    assert order.payment_token == ""
    assert await shop.drive() == order
    assert shop.inventory.calls == shop.payments.calls == []


async def test_a_cancellation_with_a_reserve_in_doubt_finds_and_releases_it(shop: Shop) -> None:
    async def crash(point: str) -> None:
        if point == "reserve_stock:after":
            raise RuntimeError(point)

    placed = shop.place()
    with pytest.raises(RuntimeError):
        await shop.drive(crash)
    cancelling = await cancel(shop)
    assert (cancelling.state, cancelling.undo) == (OrderState.CANCELLING, (Step.RESERVE_STOCK,))
    order = await shop.drive()
    assert ended(order) == BY_CUSTOMER
    assert [(r.step, r.outcome) for r in order.history[1:]] == [
        (Step.RESERVE_STOCK, Outcome.COMPENSATED)
    ]
    assert shop.inventory.methods() == ["reserve", "reserve", "release"]
    assert shop.inventory.reservations["r1"].state == "RELEASED"
    shop.assert_request_ids(placed)


async def test_a_cancellation_while_authorizing_voids_the_payment_and_releases_stock(
    shop: Shop,
) -> None:
    answers: list[Order] = []

    async def customer_cancels(point: str) -> None:
        if point == "authorize_payment:after":
            answers.append(await cancel(shop))

    shop.place()
    order = await shop.drive(customer_cancels)
    assert answers[0].state is OrderState.CANCELLING
    assert ended(order) == BY_CUSTOMER
    S, C = Outcome.SUCCEEDED, Outcome.COMPENSATED
    assert [(r.step, r.outcome) for r in order.history[1:]] == [
        (Step.RESERVE_STOCK, S),
        (Step.AUTHORIZE_PAYMENT, S),
        (Step.AUTHORIZE_PAYMENT, C),
        (Step.RESERVE_STOCK, C),
    ]
    assert shop.payments.payments["p1"].state == "VOIDED"
    assert "capture" not in shop.payments.methods()
    assert shop.inventory.reservations["r1"].state == "RELEASED"


@pytest.mark.parametrize("state", [OrderState.CONFIRMED, OrderState.COMPLETED])
async def test_a_confirmed_or_completed_order_is_not_cancellable(
    shop: Shop, state: OrderState
) -> None:
    shop.store.orders["o1"] = before = replace(shop.place(), state=state)
    with pytest.raises(OrderNotCancellable) as caught:
        await cancel(shop, request_id="c-1")
    assert caught.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "ORDER_NOT_CANCELLABLE"
    assert caught.value.metadata == {"order": "orders/o1", "state": f"ORDER_STATE_{state.value}"}
    assert (shop.order(), shop.store.requests) == (before, {})


async def test_a_stale_etag_is_refused_and_the_current_one_accepted(shop: Shop) -> None:
    stale = shop.place().etag
    shop.store.orders["o1"] = shop.order().started(Step.RESERVE_STOCK, shop.clock())
    with pytest.raises(EtagMismatch) as caught:
        await cancel(shop, etag=stale)
    assert caught.value.code is grpc.StatusCode.ABORTED
    assert caught.value.reason == "ETAG_MISMATCH"
    assert caught.value.metadata["current_etag"] == shop.order().etag
    assert shop.order().state is OrderState.PENDING
    assert (await cancel(shop, etag=shop.order().etag)).state is OrderState.CANCELLING


async def test_a_repeated_cancellation_returns_the_order_and_changes_nothing(shop: Shop) -> None:
    shop.place()
    first = await cancel(shop, request_id="c-1")
    assert shop.store.requests["c-1"].resource == "orders/o1"
    again = await cancel(shop, etag="stale", request_id="c-1")
    assert again == first == shop.order()


async def test_an_order_already_cancelled_keeps_its_reason(shop: Shop) -> None:
    shop.inventory.fail("reserve", FailedPrecondition("none", reason="INSUFFICIENT_STOCK"))
    shop.place()
    cancelled = await shop.drive()
    assert await cancel(shop) == cancelled
    assert shop.order().cancellation_reason is CancellationReason.OUT_OF_STOCK


async def test_cancelling_an_unknown_order_is_not_found(shop: Shop) -> None:
    with pytest.raises(OrderNotFound):
        await cancel(shop, order_id="nope")


# --- who may act on which order -------------------------------------------------------------
#
# ``restricted_to`` is the user a caller is, when it may act for no one else (a customer);
# None is an admin or another service, who act for every user (the tests above).


def refusal(caught: pytest.ExceptionInfo[PermissionDenied]) -> tuple[object, ...]:
    return (caught.value.code, caught.value.reason, caught.value.metadata)


def not_owner(**metadata: str) -> tuple[object, ...]:
    return (grpc.StatusCode.PERMISSION_DENIED, "NOT_RESOURCE_OWNER", metadata)


async def test_a_user_places_orders_for_themselves_only(shop: Shop, catalog: FakeCatalog) -> None:
    with pytest.raises(ActingForAnotherUser) as caught:
        await place(shop, catalog, restricted_to="u2")
    assert refusal(caught) == not_owner(user="users/u1")
    assert (shop.store.orders, shop.store.requests, catalog.calls) == ({}, {}, 0)
    order = await place(shop, catalog, restricted_to="u1")
    assert order.user_id == "u1"


async def test_a_user_reads_their_own_orders_and_no_one_elses(shop: Shop) -> None:
    shop.place()
    assert await usecases.get_order(shop.uow(), "o1", restricted_to="u1") == shop.order()
    with pytest.raises(NotOrderOwner) as caught:
        await usecases.get_order(shop.uow(), "o1", restricted_to="u2")
    assert refusal(caught) == not_owner(order="orders/o1")


async def test_a_user_asking_for_a_missing_order_is_denied_not_told_it_is_missing(
    shop: Shop,
) -> None:
    # AIP-211: permission is checked before existence, so no user can probe for orders.
    with pytest.raises(NotOrderOwner) as caught:
        await usecases.get_order(shop.uow(), "nope", restricted_to="u1")
    assert refusal(caught) == not_owner(order="orders/nope")
    with pytest.raises(NotOrderOwner):
        await cancel(shop, order_id="nope", restricted_to="u1")


async def test_a_user_lists_their_own_orders_and_no_one_elses(shop: Shop) -> None:
    shop.place()
    mine = await usecases.list_orders(shop.uow(), OrderQuery("u1", 5), restricted_to="u1")
    assert [o.id for o in mine.items] == ["o1"]
    with pytest.raises(ActingForAnotherUser) as caught:
        await usecases.list_orders(shop.uow(), OrderQuery("u1", 5), restricted_to="u2")
    assert refusal(caught) == not_owner(user="users/u1")


async def test_a_user_cancels_their_own_orders_and_no_one_elses(shop: Shop) -> None:
    placed = shop.place()
    with pytest.raises(NotOrderOwner) as caught:
        await cancel(shop, request_id="c-1", restricted_to="u2")
    assert refusal(caught) == not_owner(order="orders/o1")
    assert (shop.order(), shop.store.requests) == (placed, {})
    cancelled = await cancel(shop, request_id="c-1", restricted_to="u1")
    assert ended(cancelled) == BY_CUSTOMER
    # Replaying the owner's request id does not hand the order to someone else either.
    with pytest.raises(NotOrderOwner):
        await cancel(shop, request_id="c-1", restricted_to="u2")
