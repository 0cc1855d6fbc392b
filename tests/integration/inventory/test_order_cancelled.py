"""OrderCancelled as inventory's second line of defence, on SQLite and PostgreSQL.

The consumer's handler runs inside the consumer's transaction; here the same use case
runs in a unit of work of the test's own, which commits it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.adapters.unit_of_work import SqlAlchemyUnitOfWork
from inventory.bootstrap import MIGRATIONS
from inventory.domain import usecases
from inventory.domain.commands import CommitReservation, ReserveStock, SetStock
from inventory.domain.model import Reservation, ReservationItem, ReservationState
from tests.support.database import migrated_engine
from tests.unit.inventory.fakes import FakeProductCatalog

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        uow = SqlAlchemyUnitOfWork(engine)
        await usecases.set_stock(uow, FakeProductCatalog("tea"), SetStock("tea", 10), NOON)
        yield engine


async def reserve(engine: AsyncEngine, order_id: str, units: int) -> Reservation:
    command = ReserveStock(order_id, (ReservationItem("tea", units),), timedelta(minutes=15))
    return await usecases.reserve_stock(SqlAlchemyUnitOfWork(engine), command, NOON)


async def cancelled(engine: AsyncEngine, order_id: str, now: datetime = NOON) -> Reservation | None:
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        released = await usecases.release_for_cancelled_order(uow, order_id, now)
        await uow.commit()
    return released


async def reserved(engine: AsyncEngine) -> int:
    return (await usecases.get_stock(SqlAlchemyUnitOfWork(engine), "tea")).reserved


async def test_a_cancelled_order_still_holding_stock_gets_it_released_once(
    engine: AsyncEngine,
) -> None:
    await reserve(engine, "o1", 4)
    assert await reserved(engine) == 4
    released = await cancelled(engine, "o1")
    assert released is not None
    assert released.state is ReservationState.RELEASED
    assert await reserved(engine) == 0
    assert await cancelled(engine, "o1") is None  # again: nothing left to release
    assert await reserved(engine) == 0


async def test_a_committed_reservation_and_an_unknown_order_are_left_alone(
    engine: AsyncEngine,
) -> None:
    taken = await reserve(engine, "o2", 3)
    await usecases.commit_reservation(
        SqlAlchemyUnitOfWork(engine), CommitReservation(taken.id), NOON
    )
    assert await cancelled(engine, "o2") is None
    assert await cancelled(engine, "unknown") is None
    stock = await usecases.get_stock(SqlAlchemyUnitOfWork(engine), "tea")
    assert (stock.on_hand, stock.reserved) == (7, 0)


async def test_an_overdue_reservation_is_recorded_as_expired(engine: AsyncEngine) -> None:
    await reserve(engine, "o3", 2)
    late = await cancelled(engine, "o3", NOON + timedelta(hours=1))
    assert late is not None
    assert late.state is ReservationState.EXPIRED
    assert await reserved(engine) == 0
