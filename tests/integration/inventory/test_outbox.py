"""Inventory's events in its outbox table, on SQLite and PostgreSQL, through the use cases.

A committed change leaves its events as unsent rows in the same database; a rolled-back
one leaves none. Under concurrent writers every stock change reports the quantities it
really started from.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agora.inventory.v1 import events_pb2, inventory_pb2
from inventory.adapters import orm
from inventory.adapters.unit_of_work import SqlAlchemyUnitOfWork
from inventory.bootstrap import MIGRATIONS
from inventory.domain import usecases
from inventory.domain.commands import ReserveStock, SetStock
from inventory.domain.errors import InsufficientStock
from inventory.domain.model import Reservation, ReservationItem
from inventory.domain.ports import ProductCatalog
from tests.support.database import migrated_engine

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)


class EveryProduct(ProductCatalog):
    """A catalog that has every product."""

    async def exists(self, product_id: str) -> bool:
        return True


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


class OutboxRow(NamedTuple):
    event_type: str
    aggregate: str
    payload: bytes


async def unsent(engine: AsyncEngine) -> list[OutboxRow]:
    """The outbox rows not yet published, in the order they were written."""
    outbox = orm.outbox
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.event_type, outbox.c.aggregate, outbox.c.payload)
            .where(outbox.c.sent_time.is_(None))
            .order_by(outbox.c.position)
        )
        return [OutboxRow(*row) for row in rows]


async def set_stock(engine: AsyncEngine, product_id: str, on_hand: int) -> None:
    command = SetStock(product_id, on_hand)
    await usecases.set_stock(SqlAlchemyUnitOfWork(engine), EveryProduct(), command, NOON)


async def reserve(engine: AsyncEngine, order_id: str, **items: int) -> Reservation:
    command = ReserveStock(order_id, tuple(ReservationItem(p, q) for p, q in items.items()), TTL)
    return await usecases.reserve_stock(SqlAlchemyUnitOfWork(engine), command, NOON)


async def test_a_committed_change_leaves_one_unsent_row_for_its_event(
    engine: AsyncEngine,
) -> None:
    await set_stock(engine, "assam", 10)
    rows = await unsent(engine)
    assert [(r.event_type, r.aggregate) for r in rows] == [
        ("agora.inventory.v1.StockLevelChanged", "products/assam/stock")
    ]
    changed = events_pb2.StockLevelChanged.FromString(rows[0].payload)
    assert (changed.stock.on_hand, changed.stock.available) == (10, 10)
    assert (changed.previous_on_hand, changed.previous_available) == (0, 0)


async def test_a_rolled_back_change_leaves_no_row(engine: AsyncEngine) -> None:
    await set_stock(engine, "assam", 10)
    await set_stock(engine, "sencha", 1)
    before = await unsent(engine)
    # assam fits and is held (with its events emitted) before sencha is found short.
    with pytest.raises(InsufficientStock):
        await reserve(engine, "o1", assam=5, sencha=2)
    assert await unsent(engine) == before


async def test_a_reservation_writes_its_event_and_each_stock_change_in_order(
    engine: AsyncEngine,
) -> None:
    await set_stock(engine, "assam", 10)
    await set_stock(engine, "sencha", 4)
    written = len(await unsent(engine))
    reservation = await reserve(engine, "o1", sencha=4, assam=3)
    rows = (await unsent(engine))[written:]
    assert [(r.event_type, r.aggregate) for r in rows] == [
        ("agora.inventory.v1.StockReserved", reservation.name),
        ("agora.inventory.v1.StockLevelChanged", "products/assam/stock"),
        ("agora.inventory.v1.StockLevelChanged", "products/sencha/stock"),
    ]
    reserved = events_pb2.StockReserved.FromString(rows[0].payload)
    assert reserved.reservation.state == inventory_pb2.RESERVATION_STATE_ACTIVE
    sencha = events_pb2.StockLevelChanged.FromString(rows[2].payload)
    assert (sencha.stock.reserved, sencha.stock.available, sencha.previous_available) == (4, 0, 4)


async def test_the_sweeper_writes_each_expiry(engine: AsyncEngine) -> None:
    await set_stock(engine, "assam", 10)
    reservation = await reserve(engine, "o1", assam=3)
    written = len(await unsent(engine))
    expired = await usecases.expire_overdue_reservations(
        lambda: SqlAlchemyUnitOfWork(engine), NOON + TTL, 10
    )
    assert expired == 1
    rows = (await unsent(engine))[written:]
    assert [(r.event_type, r.aggregate) for r in rows] == [
        ("agora.inventory.v1.ReservationExpired", reservation.name),
        ("agora.inventory.v1.StockLevelChanged", "products/assam/stock"),
    ]
    event = events_pb2.ReservationExpired.FromString(rows[0].payload)
    assert event.reservation.state == inventory_pb2.RESERVATION_STATE_EXPIRED


async def test_concurrent_changes_each_report_the_quantities_they_started_from(
    engine: AsyncEngine,
) -> None:
    await set_stock(engine, "assam", 10)
    written = len(await unsent(engine))
    await asyncio.gather(
        *(reserve(engine, f"o{i}", assam=1) for i in range(6)),
        *(set_stock(engine, "assam", on_hand) for on_hand in (20, 30, 40)),
    )
    changes = [
        events_pb2.StockLevelChanged.FromString(r.payload)
        for r in (await unsent(engine))[written:]
        if r.event_type == "agora.inventory.v1.StockLevelChanged"
    ]
    assert len(changes) == 9
    # In the order written (the order they took the stock's lock), each change starts
    # where the one before it left the stock.
    on_hand, available = 10, 10
    for change in changes:
        assert (change.previous_on_hand, change.previous_available) == (on_hand, available)
        on_hand, available = change.stock.on_hand, change.stock.available
    stock = await usecases.get_stock(SqlAlchemyUnitOfWork(engine), "assam")
    assert (on_hand, available) == (stock.on_hand, stock.available)
    assert stock.reserved == 6
