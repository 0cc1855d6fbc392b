"""Inventory's SQLAlchemy adapters against SQLite and PostgreSQL, through the use cases.

Every concurrency test fires real concurrent transactions at one database and checks the
stored numbers afterwards: stock never goes negative, and units come back exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.adapters.orm import metadata
from inventory.adapters.unit_of_work import SqlAlchemyUnitOfWork
from inventory.bootstrap import MIGRATIONS
from inventory.domain import usecases
from inventory.domain.commands import (
    CommitReservation,
    ReleaseReservation,
    ReserveStock,
)
from inventory.domain.errors import (
    InsufficientStock,
    ReservationAlreadyExists,
    ReservationExpired,
)
from inventory.domain.model import Reservation, ReservationItem, ReservationState, Stock
from runtime import db
from runtime.idempotency import Idempotency
from tests.support.database import migrated_engine, schema_differences

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
AFTER_EXPIRY = NOON + TTL


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


async def test_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    assert await schema_differences(engine, metadata) == []


async def test_migrating_twice_changes_nothing(engine: AsyncEngine) -> None:
    await db.migrate(engine, MIGRATIONS)


async def stock_up(engine: AsyncEngine, **levels: int) -> None:
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        for product_id, on_hand in levels.items():
            assert await uow.stocks.add(Stock(product_id, on_hand, 0, NOON))
        await uow.commit()


async def levels(engine: AsyncEngine, product_id: str) -> tuple[int, int]:
    stock = await usecases.get_stock(SqlAlchemyUnitOfWork(engine), product_id)
    return stock.on_hand, stock.reserved


async def reserve(
    engine: AsyncEngine, order_id: str, ttl: timedelta = TTL, **items: int
) -> Reservation:
    command = ReserveStock(order_id, tuple(ReservationItem(p, q) for p, q in items.items()), ttl)
    return await usecases.reserve_stock(SqlAlchemyUnitOfWork(engine), command, NOON)


async def state(engine: AsyncEngine, reservation: Reservation) -> ReservationState:
    stored = await usecases.get_reservation(SqlAlchemyUnitOfWork(engine), reservation.id)
    return stored.state


async def test_fifty_concurrent_reservations_of_ten_units_let_exactly_ten_through(
    engine: AsyncEngine,
) -> None:
    await stock_up(engine, matcha=10)
    outcomes = await asyncio.gather(
        *(reserve(engine, f"order-{i}", matcha=1) for i in range(50)), return_exceptions=True
    )
    succeeded = [o for o in outcomes if isinstance(o, Reservation)]
    failed = [o for o in outcomes if not isinstance(o, Reservation)]
    assert len(succeeded) == 10
    assert len(failed) == 40
    assert all(isinstance(f, InsufficientStock) for f in failed), failed
    assert all(f.reason == "INSUFFICIENT_STOCK" for f in failed if isinstance(f, InsufficientStock))
    assert await levels(engine, "matcha") == (10, 10)


async def test_concurrent_multi_item_reservations_in_any_order_stay_all_or_nothing(
    engine: AsyncEngine,
) -> None:
    # Items listed in opposite orders would deadlock without a fixed locking order.
    await stock_up(engine, assam=12, sencha=12)
    calls = [
        reserve(
            engine,
            f"order-{i}",
            TTL,
            **({"assam": 1, "sencha": 1} if i % 2 else {"sencha": 1, "assam": 1}),
        )
        for i in range(20)
    ]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    succeeded = [o for o in outcomes if isinstance(o, Reservation)]
    assert len(succeeded) == 12
    assert all(isinstance(o, InsufficientStock) for o in outcomes if o not in succeeded)
    assert await levels(engine, "assam") == (12, 12)
    assert await levels(engine, "sencha") == (12, 12)


async def test_a_failed_item_rolls_back_the_items_that_fitted(engine: AsyncEngine) -> None:
    await stock_up(engine, assam=10, sencha=1)
    with pytest.raises(InsufficientStock) as caught:
        await reserve(engine, "o1", assam=5, sencha=2, oolong=1)
    assert caught.value.metadata == {"products": "products/sencha,products/oolong"}
    assert await levels(engine, "assam") == (10, 0)
    assert await levels(engine, "sencha") == (1, 0)


async def test_concurrent_reservations_for_one_order_let_one_through(engine: AsyncEngine) -> None:
    await stock_up(engine, assam=10)
    outcomes = await asyncio.gather(
        *(reserve(engine, "same-order", assam=1) for _ in range(5)), return_exceptions=True
    )
    succeeded = [o for o in outcomes if isinstance(o, Reservation)]
    assert len(succeeded) == 1
    assert all(isinstance(o, ReservationAlreadyExists) for o in outcomes if o not in succeeded)
    assert await levels(engine, "assam") == (10, 1)


async def test_concurrent_repeats_of_one_request_reserve_once(engine: AsyncEngine) -> None:
    await stock_up(engine, assam=10)
    command = ReserveStock("o1", (ReservationItem("assam", 2),), TTL, Idempotency("req", "fp"))
    outcomes = await asyncio.gather(
        *(usecases.reserve_stock(SqlAlchemyUnitOfWork(engine), command, NOON) for _ in range(4)),
        return_exceptions=True,
    )
    names = {o.name for o in outcomes if isinstance(o, Reservation)}
    failures = [o for o in outcomes if not isinstance(o, Reservation)]
    assert len(names) == 1
    assert all(getattr(f, "reason", None) == "CONCURRENT_REQUEST" for f in failures), failures
    assert await levels(engine, "assam") == (10, 2)


async def test_commit_and_release_move_units_and_read_back_with_utc_times(
    engine: AsyncEngine,
) -> None:
    await stock_up(engine, assam=10, sencha=4)
    kept = await reserve(engine, "o1", sencha=4, assam=3)
    dropped = await reserve(engine, "o2", assam=2)
    assert await levels(engine, "assam") == (10, 5)
    stored = await usecases.get_reservation(SqlAlchemyUnitOfWork(engine), kept.id)
    assert stored == kept
    assert stored.expire_time.tzinfo is not None
    await usecases.commit_reservation(
        SqlAlchemyUnitOfWork(engine), CommitReservation(kept.id), NOON
    )
    await usecases.release_reservation(
        SqlAlchemyUnitOfWork(engine), ReleaseReservation(dropped.id), NOON
    )
    assert await levels(engine, "assam") == (7, 0)
    assert await levels(engine, "sencha") == (0, 0)
    assert await state(engine, kept) == ReservationState.COMMITTED
    assert await state(engine, dropped) == ReservationState.RELEASED


async def test_a_late_commit_records_the_expiry_and_fails(engine: AsyncEngine) -> None:
    await stock_up(engine, assam=10)
    reservation = await reserve(engine, "o1", assam=3)
    with pytest.raises(ReservationExpired):
        await usecases.commit_reservation(
            SqlAlchemyUnitOfWork(engine), CommitReservation(reservation.id), AFTER_EXPIRY
        )
    assert await state(engine, reservation) == ReservationState.EXPIRED
    assert await levels(engine, "assam") == (10, 0)


async def test_two_sweepers_at_once_return_each_expired_reservation_once(
    engine: AsyncEngine,
) -> None:
    await stock_up(engine, assam=100)
    short = [await reserve(engine, f"o{i}", timedelta(minutes=1), assam=3) for i in range(8)]
    await reserve(engine, "long", assam=5)
    later = NOON + timedelta(minutes=2)
    counts = await asyncio.gather(
        *(
            usecases.expire_overdue_reservations(lambda: SqlAlchemyUnitOfWork(engine), later, 100)
            for _ in range(2)
        )
    )
    assert sum(counts) == 8
    assert await levels(engine, "assam") == (100, 5)
    assert {await state(engine, r) for r in short} == {ReservationState.EXPIRED}


async def test_a_sweeper_racing_commits_and_releases_settles_each_reservation_once(
    engine: AsyncEngine,
) -> None:
    await stock_up(engine, assam=100)
    taken = [await reserve(engine, f"o{i}", timedelta(minutes=1), assam=2) for i in range(6)]
    at_expiry = NOON + timedelta(minutes=1)

    async def settle(reservation: Reservation, index: int) -> object:
        uow = SqlAlchemyUnitOfWork(engine)
        if index % 2:
            return await usecases.release_reservation(
                uow, ReleaseReservation(reservation.id), at_expiry
            )
        return await usecases.commit_reservation(uow, CommitReservation(reservation.id), at_expiry)

    await asyncio.gather(
        usecases.expire_overdue_reservations(lambda: SqlAlchemyUnitOfWork(engine), at_expiry, 100),
        *(settle(r, i) for i, r in enumerate(taken)),
        return_exceptions=True,
    )
    # At its expiry a reservation can only expire: every unit is back, none committed.
    assert await levels(engine, "assam") == (100, 0)
    assert {await state(engine, r) for r in taken} == {ReservationState.EXPIRED}
