"""Which events inventory's use cases publish, over in-memory fakes.

The fake unit of work collects the events of committed transactions in the store's
``published`` list, as the outbox table would: what a rolled-back call emitted never
shows up there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from agora.inventory.v1 import events_pb2
from inventory.adapters.events import to_messages
from inventory.domain import usecases
from inventory.domain.commands import (
    CommitReservation,
    ReleaseReservation,
    ReserveStock,
    SetStock,
)
from inventory.domain.errors import (
    EtagMismatch,
    InsufficientStock,
    OnHandBelowReserved,
    ReservationAlreadyExists,
    ReservationCommitted,
    ReservationExpired,
    UnknownProduct,
)
from inventory.domain.model import (
    Reservation,
    ReservationEvent,
    ReservationEventType,
    ReservationItem,
    ReservationState,
    Stock,
    StockLevelChanged,
)
from inventory.entrypoints.convert import reservation_to_proto, stock_to_proto
from runtime.idempotency import Idempotency
from tests.unit.inventory.fakes import FakeProductCatalog, FakeStore, FakeUnitOfWork

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
AFTER_EXPIRY = NOON + TTL

#: One event as a comparable tuple: the reservation's event type, name and state, or the
#: stock's product, (on_hand, reserved, available) and (previous_on_hand, previous_available).
Summary = tuple[object, ...]


def summary(event: object) -> Summary:
    if isinstance(event, ReservationEvent):
        return (event.type.value, event.reservation.name, event.reservation.state)
    assert isinstance(event, StockLevelChanged), event
    stock = event.stock
    return (
        "StockLevelChanged",
        stock.product_id,
        (stock.on_hand, stock.reserved, stock.available),
        (event.previous_on_hand, event.previous_available),
    )


def level(product_id: str, now: tuple[int, int, int], before: tuple[int, int]) -> Summary:
    """A StockLevelChanged summary: (on_hand, reserved, available) now, and before."""
    return ("StockLevelChanged", product_id, now, before)


def entered(kind: ReservationEventType, reservation: Reservation) -> Summary:
    return (kind.value, reservation.name, reservation.state)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def catalog() -> FakeProductCatalog:
    return FakeProductCatalog("assam", "darjeeling", "sencha")


@pytest.fixture
def published(store: FakeStore) -> Callable[[], list[object]]:
    """Returns the events published since it was last called (or since the test began)."""
    outbox = FakeUnitOfWork(store).published
    seen = 0

    def since_last_call() -> list[object]:
        nonlocal seen
        events, seen = outbox[seen:], len(outbox)
        return events

    return since_last_call


def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


def reserve(
    order_id: str, ttl: timedelta = TTL, request_id: str = "", **items: int
) -> ReserveStock:
    return ReserveStock(
        order_id,
        tuple(ReservationItem(p, q) for p, q in items.items()),
        ttl=ttl,
        idempotency=Idempotency(request_id, "fp") if request_id else None,
    )


async def stock_up(store: FakeStore, catalog: FakeProductCatalog, **levels: int) -> None:
    for product_id, on_hand in levels.items():
        await usecases.set_stock(uow(store), catalog, SetStock(product_id, on_hand), NOON)


async def test_creating_a_stock_publishes_its_level_with_zero_before(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    stock = await usecases.set_stock(uow(store), catalog, SetStock("assam", 10), NOON)
    events = published()
    assert [summary(e) for e in events] == [level("assam", (10, 0, 10), (0, 0))]
    assert isinstance(events[0], StockLevelChanged)
    assert events[0].stock == stock


async def test_setting_stock_publishes_the_previous_on_hand_and_available(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    await usecases.reserve_stock(uow(store), reserve("o1", assam=3), NOON)
    published()
    later = NOON + timedelta(minutes=1)
    stock = await usecases.set_stock(uow(store), catalog, SetStock("assam", 20), later)
    events = published()
    assert [summary(e) for e in events] == [level("assam", (20, 3, 17), (10, 7))]
    assert isinstance(events[0], StockLevelChanged)
    assert events[0].stock == stock
    assert events[0].stock.update_time == later


async def test_setting_the_same_on_hand_again_publishes_nothing(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    published()
    await usecases.set_stock(uow(store), catalog, SetStock("assam", 10), NOON)
    assert published() == []


async def test_a_replayed_set_stock_publishes_nothing_new(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    published()
    command = SetStock("assam", 4, idempotency=Idempotency("req-set", "fp"))
    await usecases.set_stock(uow(store), catalog, command, NOON)
    assert [summary(e) for e in published()] == [level("assam", (4, 0, 4), (10, 10))]
    await usecases.set_stock(uow(store), catalog, command, NOON)
    assert published() == []


async def test_a_refused_set_stock_publishes_nothing(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    await usecases.reserve_stock(uow(store), reserve("o1", assam=6), NOON)
    published()
    with pytest.raises(OnHandBelowReserved):
        await usecases.set_stock(uow(store), catalog, SetStock("assam", 5), NOON)
    with pytest.raises(EtagMismatch):
        await usecases.set_stock(uow(store), catalog, SetStock("assam", 9, etag="stale"), NOON)
    with pytest.raises(UnknownProduct):
        await usecases.set_stock(uow(store), catalog, SetStock("oolong", 3), NOON)
    assert published() == []


async def test_a_reservation_publishes_stock_reserved_then_one_level_per_product(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10, darjeeling=5, sencha=2)
    published()
    reservation = await usecases.reserve_stock(
        uow(store), reserve("o1", sencha=1, assam=3, darjeeling=5), NOON
    )
    events = published()
    # Stock changes in product order, the order every writer takes its locks in.
    assert [summary(e) for e in events] == [
        entered(ReservationEventType.RESERVED, reservation),
        level("assam", (10, 3, 7), (10, 10)),
        level("darjeeling", (5, 5, 0), (5, 5)),
        level("sencha", (2, 1, 1), (2, 2)),
    ]
    assert events[0] == ReservationEvent(ReservationEventType.RESERVED, reservation)
    assert reservation.state is ReservationState.ACTIVE


async def test_a_reservation_that_does_not_fit_publishes_nothing(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10, darjeeling=1)
    published()
    # assam fits and is held before darjeeling is found short: all of it is rolled back.
    with pytest.raises(InsufficientStock):
        await usecases.reserve_stock(uow(store), reserve("o1", assam=2, darjeeling=2), NOON)
    assert published() == []


async def test_a_second_live_reservation_for_an_order_publishes_nothing(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    await usecases.reserve_stock(uow(store), reserve("o1", assam=1), NOON)
    published()
    with pytest.raises(ReservationAlreadyExists):
        await usecases.reserve_stock(uow(store), reserve("o1", assam=1), NOON)
    assert published() == []


async def test_a_replayed_reservation_publishes_nothing_new(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    published()
    command = reserve("o1", request_id="req-r", assam=3)
    first = await usecases.reserve_stock(uow(store), command, NOON)
    assert len(published()) == 2
    again = await usecases.reserve_stock(uow(store), command, NOON)
    assert again == first
    assert published() == []


async def test_reserving_over_an_overdue_reservation_publishes_its_expiry_first(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    first = await usecases.reserve_stock(uow(store), reserve("o1", assam=4), NOON)
    published()
    second = await usecases.reserve_stock(uow(store), reserve("o1", assam=2), AFTER_EXPIRY)
    expired = await usecases.get_reservation(uow(store), first.id)
    assert [summary(e) for e in published()] == [
        entered(ReservationEventType.EXPIRED, expired),
        level("assam", (10, 0, 10), (10, 6)),
        entered(ReservationEventType.RESERVED, second),
        level("assam", (10, 2, 8), (10, 10)),
    ]
    assert expired.state is ReservationState.EXPIRED


async def test_a_commit_publishes_the_commit_and_the_units_leaving_stock(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10, darjeeling=5)
    reservation = await usecases.reserve_stock(
        uow(store), reserve("o1", darjeeling=5, assam=3), NOON
    )
    published()
    later = NOON + timedelta(minutes=5)
    committed = await usecases.commit_reservation(
        uow(store), CommitReservation(reservation.id), later
    )
    events = published()
    # available does not move on a commit: on_hand and reserved drop together.
    assert [summary(e) for e in events] == [
        entered(ReservationEventType.COMMITTED, committed),
        level("assam", (7, 0, 7), (10, 7)),
        level("darjeeling", (0, 0, 0), (5, 0)),
    ]
    assert events[0] == ReservationEvent(ReservationEventType.COMMITTED, committed)
    assert committed.state is ReservationState.COMMITTED


async def test_committing_again_or_replaying_a_commit_publishes_nothing(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await usecases.reserve_stock(uow(store), reserve("o1", assam=3), NOON)
    command = CommitReservation(reservation.id, Idempotency("req-c", "fp"))
    await usecases.commit_reservation(uow(store), command, NOON)
    published()
    await usecases.commit_reservation(uow(store), command, NOON)
    await usecases.commit_reservation(uow(store), CommitReservation(reservation.id), NOON)
    assert published() == []


async def test_a_commit_after_expiry_fails_but_publishes_the_expiry_it_recorded(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await usecases.reserve_stock(uow(store), reserve("o1", assam=3), NOON)
    published()
    with pytest.raises(ReservationExpired):
        await usecases.commit_reservation(
            uow(store), CommitReservation(reservation.id), AFTER_EXPIRY
        )
    expired = await usecases.get_reservation(uow(store), reservation.id)
    assert [summary(e) for e in published()] == [
        entered(ReservationEventType.EXPIRED, expired),
        level("assam", (10, 0, 10), (10, 7)),
    ]
    with pytest.raises(ReservationExpired):
        await usecases.commit_reservation(
            uow(store), CommitReservation(reservation.id), AFTER_EXPIRY
        )
    assert published() == []


async def test_a_release_publishes_the_release_and_the_units_coming_back(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await usecases.reserve_stock(uow(store), reserve("o1", assam=3), NOON)
    published()
    released = await usecases.release_reservation(
        uow(store), ReleaseReservation(reservation.id), NOON
    )
    assert [summary(e) for e in published()] == [
        entered(ReservationEventType.RELEASED, released),
        level("assam", (10, 0, 10), (10, 7)),
    ]
    assert released.state is ReservationState.RELEASED
    again = await usecases.release_reservation(
        uow(store), ReleaseReservation(reservation.id, Idempotency("req-l", "fp")), NOON
    )
    assert again == released
    assert published() == []


async def test_a_release_after_expiry_publishes_an_expiry(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await usecases.reserve_stock(uow(store), reserve("o1", assam=3), NOON)
    published()
    expired = await usecases.release_reservation(
        uow(store), ReleaseReservation(reservation.id), AFTER_EXPIRY
    )
    assert [summary(e) for e in published()] == [
        entered(ReservationEventType.EXPIRED, expired),
        level("assam", (10, 0, 10), (10, 7)),
    ]
    assert expired.state is ReservationState.EXPIRED


async def test_releasing_a_committed_reservation_publishes_nothing(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10)
    reservation = await usecases.reserve_stock(uow(store), reserve("o1", assam=3), NOON)
    await usecases.commit_reservation(uow(store), CommitReservation(reservation.id), NOON)
    published()
    with pytest.raises(ReservationCommitted):
        await usecases.release_reservation(uow(store), ReleaseReservation(reservation.id), NOON)
    assert published() == []


async def test_the_sweeper_publishes_each_expiry_and_its_stock_changes(
    store: FakeStore, catalog: FakeProductCatalog, published: Callable[[], list[object]]
) -> None:
    await stock_up(store, catalog, assam=10, sencha=5)
    minute = timedelta(minutes=1)
    early = await usecases.reserve_stock(uow(store), reserve("o1", minute, sencha=1, assam=2), NOON)
    later = await usecases.reserve_stock(uow(store), reserve("o2", minute + minute, assam=3), NOON)
    await usecases.reserve_stock(uow(store), reserve("long", assam=1), NOON)
    published()
    sweep = NOON + 2 * minute
    assert await usecases.expire_overdue_reservations(lambda: uow(store), sweep, 10) == 2
    first = await usecases.get_reservation(uow(store), early.id)
    second = await usecases.get_reservation(uow(store), later.id)
    # Oldest expiry first, each reservation with its own stock changes.
    assert [summary(e) for e in published()] == [
        entered(ReservationEventType.EXPIRED, first),
        level("assam", (10, 4, 6), (10, 4)),
        level("sencha", (5, 0, 5), (5, 4)),
        entered(ReservationEventType.EXPIRED, second),
        level("assam", (10, 1, 9), (10, 6)),
    ]
    assert await usecases.expire_overdue_reservations(lambda: uow(store), sweep, 10) == 0
    assert published() == []


@pytest.mark.parametrize("kind", list(ReservationEventType))
def test_each_reservation_event_maps_to_the_contract_message_of_its_name(
    kind: ReservationEventType,
) -> None:
    reservation = Reservation(
        "r1", "o1", (ReservationItem("assam", 2),), ReservationState.ACTIVE, NOON, NOON, NOON
    )
    [(message, aggregate)] = to_messages(ReservationEvent(kind, reservation))
    contract_message = getattr(events_pb2, kind.value)
    assert message == contract_message(reservation=reservation_to_proto(reservation))
    assert aggregate == "reservations/r1"


def test_a_stock_level_change_maps_to_its_message_with_the_previous_quantities() -> None:
    stock = Stock("assam", on_hand=7, reserved=2, update_time=NOON, revision=3)
    [(message, aggregate)] = to_messages(StockLevelChanged(stock, 10, 5))
    assert message == events_pb2.StockLevelChanged(
        stock=stock_to_proto(stock), previous_on_hand=10, previous_available=5
    )
    assert aggregate == "products/assam/stock"


def test_anything_else_is_not_an_inventory_event() -> None:
    with pytest.raises(TypeError):
        to_messages(object())
