"""Inventory's use cases over in-memory fakes: stock rules, reservations, expiry, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inventory.domain import usecases
from inventory.domain.commands import (
    CommitReservation,
    ReleaseReservation,
    ReserveStock,
    SetStock,
)
from inventory.domain.errors import (
    CatalogUnavailable,
    EtagMismatch,
    InsufficientStock,
    OnHandBelowReserved,
    ReservationAlreadyExists,
    ReservationCommitted,
    ReservationExpired,
    ReservationNotFound,
    ReservationReleased,
    StockNotFound,
    UnknownProduct,
)
from inventory.domain.model import Reservation, ReservationItem, ReservationState
from runtime.errors import InvalidArgument
from runtime.idempotency import Idempotency
from tests.unit.inventory.fakes import FakeProductCatalog, FakeStore, FakeUnitOfWork

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
AFTER_EXPIRY = NOON + TTL


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def catalog() -> FakeProductCatalog:
    return FakeProductCatalog("assam", "darjeeling", "sencha")


def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


async def stock_up(store: FakeStore, catalog: FakeProductCatalog, **levels: int) -> None:
    for product_id, on_hand in levels.items():
        await usecases.set_stock(uow(store), catalog, SetStock(product_id, on_hand), NOON)


def reserve(order_id: str, ttl: timedelta = TTL, **items: int) -> ReserveStock:
    return ReserveStock(order_id, tuple(ReservationItem(p, q) for p, q in items.items()), ttl=ttl)


async def levels(store: FakeStore, product_id: str) -> tuple[int, int, int]:
    stock = await usecases.get_stock(uow(store), product_id)
    return stock.on_hand, stock.reserved, stock.available


async def reserved_for(store: FakeStore, order_id: str, **items: int) -> Reservation:
    return await usecases.reserve_stock(uow(store), reserve(order_id, TTL, **items), NOON)


async def test_set_stock_creates_then_replaces_the_units_on_hand(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    first = await usecases.set_stock(uow(store), catalog, SetStock("assam", 10), NOON)
    assert (first.on_hand, first.reserved, first.available) == (10, 0, 10)
    later = NOON + timedelta(minutes=1)
    second = await usecases.set_stock(uow(store), catalog, SetStock("assam", 4), later)
    assert (second.on_hand, second.update_time) == (4, later)
    assert second.etag != first.etag


async def test_set_stock_refuses_a_product_the_catalog_lacks(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    with pytest.raises(UnknownProduct) as caught:
        await usecases.set_stock(uow(store), catalog, SetStock("oolong", 3), NOON)
    assert caught.value.metadata == {"product": "products/oolong"}
    assert store.stocks == {}


async def test_set_stock_with_the_catalog_down_is_unavailable_and_changes_nothing(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    catalog.down = True
    with pytest.raises(CatalogUnavailable):
        await usecases.set_stock(uow(store), catalog, SetStock("assam", 3), NOON)
    assert store.stocks == {}


async def test_on_hand_cannot_drop_below_the_reserved_units(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    await reserved_for(store, "o1", assam=6)
    with pytest.raises(OnHandBelowReserved) as caught:
        await usecases.set_stock(uow(store), catalog, SetStock("assam", 5), NOON)
    assert caught.value.metadata["onHand"] == "5"
    assert caught.value.metadata["reserved"] == "6"
    stock = await usecases.set_stock(uow(store), catalog, SetStock("assam", 6), NOON)
    assert (stock.on_hand, stock.reserved, stock.available) == (6, 6, 0)


async def test_a_stale_etag_is_refused_and_a_fresh_one_accepted(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    etag = (await usecases.get_stock(uow(store), "assam")).etag
    await reserved_for(store, "o1", assam=1)  # any change makes the etag stale
    with pytest.raises(EtagMismatch):
        await usecases.set_stock(uow(store), catalog, SetStock("assam", 20, etag=etag), NOON)
    fresh = (await usecases.get_stock(uow(store), "assam")).etag
    stock = await usecases.set_stock(uow(store), catalog, SetStock("assam", 20, etag=fresh), NOON)
    assert stock.on_hand == 20


async def test_a_repeated_set_stock_replays_without_asking_the_catalog(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    command = SetStock("assam", 7, idempotency=Idempotency("req-1", "fp"))
    first = await usecases.set_stock(uow(store), catalog, command, NOON)
    catalog.down = True
    again = await usecases.set_stock(uow(store), catalog, command, NOON)
    assert again == first
    with pytest.raises(InvalidArgument) as caught:
        await usecases.set_stock(
            uow(store),
            catalog,
            SetStock("assam", 8, idempotency=Idempotency("req-1", "other")),
            NOON,
        )
    assert caught.value.reason == "REQUEST_ID_REUSED"


async def test_get_stock_of_a_product_never_set_is_not_found(store: FakeStore) -> None:
    with pytest.raises(StockNotFound) as caught:
        await usecases.get_stock(uow(store), "assam")
    assert caught.value.metadata == {"stock": "products/assam/stock"}


async def test_a_reservation_holds_every_item(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10, darjeeling=5)
    reservation = await usecases.reserve_stock(
        uow(store), reserve("o1", darjeeling=5, assam=3), NOON
    )
    assert reservation.state is ReservationState.ACTIVE
    assert reservation.order == "orders/o1"
    assert [i.product_id for i in reservation.items] == ["darjeeling", "assam"]
    assert reservation.expire_time == NOON + TTL
    assert await levels(store, "assam") == (10, 3, 7)
    assert await levels(store, "darjeeling") == (5, 5, 0)
    assert await usecases.get_reservation(uow(store), reservation.id) == reservation


async def test_a_reservation_is_all_or_nothing_and_names_every_short_product(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10, darjeeling=1)
    with pytest.raises(InsufficientStock) as caught:
        await usecases.reserve_stock(
            uow(store), reserve("o1", sencha=1, assam=2, darjeeling=2), NOON
        )
    # In request order; sencha's stock was never set, so it counts as having none.
    assert caught.value.metadata == {"products": "products/sencha,products/darjeeling"}
    assert await levels(store, "assam") == (10, 0, 10)
    assert store.reservations == {}


async def test_an_order_holds_one_live_reservation(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    first = await reserved_for(store, "o1", assam=1)
    with pytest.raises(ReservationAlreadyExists) as caught:
        await reserved_for(store, "o1", assam=1)
    assert caught.value.metadata["reservation"] == first.name
    await usecases.release_reservation(uow(store), ReleaseReservation(first.id), NOON)
    second = await reserved_for(store, "o1", assam=1)
    assert second.id != first.id


async def test_an_overdue_reservation_of_the_order_is_expired_to_make_room(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    first = await reserved_for(store, "o1", assam=4)
    second = await usecases.reserve_stock(uow(store), reserve("o1", assam=2), AFTER_EXPIRY)
    assert (await usecases.get_reservation(uow(store), first.id)).state is ReservationState.EXPIRED
    assert second.state is ReservationState.ACTIVE
    assert await levels(store, "assam") == (10, 2, 8)


async def test_a_repeated_reserve_returns_the_same_reservation_and_holds_nothing_more(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    command = ReserveStock("o1", (ReservationItem("assam", 3),), TTL, Idempotency("req-r", "fp"))
    first = await usecases.reserve_stock(uow(store), command, NOON)
    await usecases.commit_reservation(uow(store), CommitReservation(first.id), NOON)
    again = await usecases.reserve_stock(uow(store), command, NOON)
    assert again.id == first.id
    assert again.state is ReservationState.COMMITTED
    assert await levels(store, "assam") == (7, 0, 7)


async def test_commit_takes_the_units_out_of_stock_and_may_be_repeated(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10, darjeeling=5)
    reservation = await reserved_for(store, "o1", assam=3, darjeeling=5)
    later = NOON + timedelta(minutes=5)
    committed = await usecases.commit_reservation(
        uow(store), CommitReservation(reservation.id), later
    )
    assert (committed.state, committed.update_time) == (ReservationState.COMMITTED, later)
    assert await levels(store, "assam") == (7, 0, 7)
    assert await levels(store, "darjeeling") == (0, 0, 0)
    again = await usecases.commit_reservation(uow(store), CommitReservation(reservation.id), later)
    assert again == committed
    assert await levels(store, "assam") == (7, 0, 7)


async def test_commit_after_expiry_fails_and_records_the_expiry(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await reserved_for(store, "o1", assam=3)
    with pytest.raises(ReservationExpired) as caught:
        await usecases.commit_reservation(
            uow(store), CommitReservation(reservation.id), AFTER_EXPIRY
        )
    assert caught.value.metadata["expireTime"] == "2026-11-25T12:15:00Z"
    stored = await usecases.get_reservation(uow(store), reservation.id)
    assert stored.state is ReservationState.EXPIRED
    assert await levels(store, "assam") == (10, 0, 10)
    with pytest.raises(ReservationExpired):
        await usecases.commit_reservation(uow(store), CommitReservation(reservation.id), NOON)


async def test_commit_just_before_expiry_succeeds(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await reserved_for(store, "o1", assam=3)
    just_before = AFTER_EXPIRY - timedelta(microseconds=1)
    committed = await usecases.commit_reservation(
        uow(store), CommitReservation(reservation.id), just_before
    )
    assert committed.state is ReservationState.COMMITTED


async def test_release_returns_the_units_and_is_harmless_to_repeat(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await reserved_for(store, "o1", assam=3)
    released = await usecases.release_reservation(
        uow(store), ReleaseReservation(reservation.id), NOON
    )
    assert released.state is ReservationState.RELEASED
    assert await levels(store, "assam") == (10, 0, 10)
    again = await usecases.release_reservation(uow(store), ReleaseReservation(reservation.id), NOON)
    assert again == released
    assert await levels(store, "assam") == (10, 0, 10)
    with pytest.raises(ReservationReleased):
        await usecases.commit_reservation(uow(store), CommitReservation(reservation.id), NOON)


async def test_release_after_expiry_records_an_expiry(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await reserved_for(store, "o1", assam=3)
    released = await usecases.release_reservation(
        uow(store), ReleaseReservation(reservation.id), AFTER_EXPIRY
    )
    assert released.state is ReservationState.EXPIRED
    assert await levels(store, "assam") == (10, 0, 10)


async def test_a_committed_reservation_cannot_be_released(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await reserved_for(store, "o1", assam=3)
    await usecases.commit_reservation(uow(store), CommitReservation(reservation.id), NOON)
    with pytest.raises(ReservationCommitted):
        await usecases.release_reservation(uow(store), ReleaseReservation(reservation.id), NOON)
    assert await levels(store, "assam") == (7, 0, 7)


async def test_unknown_reservations_are_not_found(store: FakeStore) -> None:
    for call in (
        usecases.get_reservation(uow(store), "rmissing"),
        usecases.commit_reservation(uow(store), CommitReservation("rmissing"), NOON),
        usecases.release_reservation(uow(store), ReleaseReservation("rmissing"), NOON),
    ):
        with pytest.raises(ReservationNotFound):
            await call


async def test_the_sweeper_expires_only_overdue_reservations_in_batches(
    store: FakeStore, catalog: FakeProductCatalog
) -> None:
    await stock_up(store, catalog, assam=100)
    short = [
        await usecases.reserve_stock(
            uow(store), reserve(f"o{i}", ttl=timedelta(minutes=1), assam=2), NOON
        )
        for i in range(5)
    ]
    long = await reserved_for(store, "long", assam=10)
    assert await levels(store, "assam") == (100, 20, 80)
    one_minute_later = NOON + timedelta(minutes=1)
    first = await usecases.expire_overdue_reservations(lambda: uow(store), one_minute_later, 3)
    second = await usecases.expire_overdue_reservations(lambda: uow(store), one_minute_later, 3)
    third = await usecases.expire_overdue_reservations(lambda: uow(store), one_minute_later, 3)
    assert (first, second, third) == (3, 2, 0)
    for reservation in short:
        stored = await usecases.get_reservation(uow(store), reservation.id)
        assert (stored.state, stored.update_time) == (ReservationState.EXPIRED, one_minute_later)
    assert (await usecases.get_reservation(uow(store), long.id)).state is ReservationState.ACTIVE
    assert await levels(store, "assam") == (100, 10, 90)
