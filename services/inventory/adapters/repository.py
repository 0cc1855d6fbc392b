"""SQLAlchemy (Core) implementations of inventory's repositories.

Every stock change is one conditional UPDATE whose WHERE clause states the rule it keeps
(``on_hand - reserved >= quantity`` to reserve, ``reserved <= on_hand`` to set): on
PostgreSQL a writer that waited for a row lock re-checks the clause against the row as
the other writer left it, and SQLite runs one writer at a time, so the rowcount says
truthfully whether the change was allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from inventory.adapters.orm import reservation_items, reservations, stocks
from inventory.domain.errors import ReservationAlreadyExists
from inventory.domain.model import (
    LIVE_STATES,
    Reservation,
    ReservationItem,
    ReservationState,
    Stock,
)
from inventory.domain.ports import ReservationRepository, StockRepository

_STOCK_BY_ID = sa.select(stocks).where(stocks.c.product_id == sa.bindparam("b_product"))
_STOCK_BY_ID_FOR_UPDATE = _STOCK_BY_ID.with_for_update()
_RESERVE = (
    sa.update(stocks)
    .where(
        stocks.c.product_id == sa.bindparam("b_product"),
        stocks.c.on_hand - stocks.c.reserved >= sa.bindparam("b_quantity"),
    )
    .values(
        reserved=stocks.c.reserved + sa.bindparam("b_quantity"),
        revision=stocks.c.revision + 1,
        update_time=sa.bindparam("b_now"),
    )
    .returning(*stocks.c)
)
_UNRESERVE = (
    sa.update(stocks)
    .where(
        stocks.c.product_id == sa.bindparam("b_product"),
        stocks.c.reserved >= sa.bindparam("b_quantity"),
    )
    .values(
        reserved=stocks.c.reserved - sa.bindparam("b_quantity"),
        revision=stocks.c.revision + 1,
        update_time=sa.bindparam("b_now"),
    )
    .returning(*stocks.c)
)
_CONSUME = (
    sa.update(stocks)
    .where(
        stocks.c.product_id == sa.bindparam("b_product"),
        stocks.c.reserved >= sa.bindparam("b_quantity"),
    )
    .values(
        on_hand=stocks.c.on_hand - sa.bindparam("b_quantity"),
        reserved=stocks.c.reserved - sa.bindparam("b_quantity"),
        revision=stocks.c.revision + 1,
        update_time=sa.bindparam("b_now"),
    )
    .returning(*stocks.c)
)


class StockInvariantBroken(RuntimeError):
    """Reserved units that a reservation holds are missing from its product's stock."""


class SqlAlchemyStockRepository(StockRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, product_id: str, *, lock: bool = False) -> Stock | None:
        # PostgreSQL holds the row; SQLite's writer already holds the whole database.
        statement = _STOCK_BY_ID_FOR_UPDATE if lock else _STOCK_BY_ID
        row = (await self._connection.execute(statement, {"b_product": product_id})).first()
        return None if row is None else _stock(row)

    async def add(self, stock: Stock) -> bool:
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    sa.insert(stocks).values(
                        product_id=stock.product_id,
                        on_hand=stock.on_hand,
                        reserved=stock.reserved,
                        update_time=stock.update_time,
                        revision=stock.revision,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def set_on_hand(
        self, product_id: str, on_hand: int, now: datetime, expected_revision: int | None
    ) -> bool:
        statement = (
            sa.update(stocks)
            .where(stocks.c.product_id == product_id, stocks.c.reserved <= on_hand)
            .values(on_hand=on_hand, revision=stocks.c.revision + 1, update_time=now)
        )
        if expected_revision is not None:
            statement = statement.where(stocks.c.revision == expected_revision)
        result = await self._connection.execute(statement)
        return bool(result.rowcount)

    async def reserve(self, product_id: str, quantity: int, now: datetime) -> Stock | None:
        return await self._change(_RESERVE, product_id, quantity, now)

    async def unreserve(self, product_id: str, quantity: int, now: datetime) -> Stock:
        return await self._change_reserved(_UNRESERVE, product_id, quantity, now)

    async def consume(self, product_id: str, quantity: int, now: datetime) -> Stock:
        return await self._change_reserved(_CONSUME, product_id, quantity, now)

    async def _change(
        self, statement: sa.Update, product_id: str, quantity: int, now: datetime
    ) -> Stock | None:
        # RETURNING gives the row as this statement left it (SQLite 3.35+ and PostgreSQL).
        row = (
            await self._connection.execute(
                statement, {"b_product": product_id, "b_quantity": quantity, "b_now": now}
            )
        ).first()
        return None if row is None else _stock(row)

    async def _change_reserved(
        self, statement: sa.Update, product_id: str, quantity: int, now: datetime
    ) -> Stock:
        stock = await self._change(statement, product_id, quantity, now)
        if stock is None:
            raise StockInvariantBroken(
                f"stock of {product_id!r} holds fewer than {quantity} reserved units"
            )
        return stock


class SqlAlchemyReservationRepository(ReservationRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, reservation_id: str, *, lock: bool = False) -> Reservation | None:
        statement = sa.select(reservations).where(reservations.c.id == reservation_id)
        if lock:
            # PostgreSQL holds the row; SQLite's writer already holds the whole database.
            statement = statement.with_for_update()
        row = (await self._connection.execute(statement)).first()
        return None if row is None else await self._with_items(row)

    async def find_live(self, order_id: str) -> Reservation | None:
        row = (
            await self._connection.execute(
                sa.select(reservations).where(
                    reservations.c.order_id == order_id,
                    reservations.c.state.in_([s.value for s in LIVE_STATES]),
                )
            )
        ).first()
        return None if row is None else await self._with_items(row)

    async def add(self, reservation: Reservation) -> None:
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    sa.insert(reservations).values(
                        id=reservation.id,
                        order_id=reservation.order_id,
                        state=reservation.state.value,
                        create_time=reservation.create_time,
                        expire_time=reservation.expire_time,
                        update_time=reservation.update_time,
                    )
                )
        except IntegrityError:
            # Another call took a live reservation for the order since we looked.
            live = await self.find_live(reservation.order_id)
            raise ReservationAlreadyExists(
                live.name if live is not None else "", reservation.order
            ) from None
        await self._connection.execute(
            sa.insert(reservation_items),
            [
                {
                    "reservation_id": reservation.id,
                    "position": position,
                    "product_id": item.product_id,
                    "quantity": item.quantity,
                }
                for position, item in enumerate(reservation.items)
            ],
        )

    async def transition(
        self,
        reservation_id: str,
        from_state: ReservationState,
        to_state: ReservationState,
        now: datetime,
    ) -> bool:
        result = await self._connection.execute(
            sa.update(reservations)
            .where(reservations.c.id == reservation_id, reservations.c.state == from_state.value)
            .values(state=to_state.value, update_time=now)
        )
        return bool(result.rowcount)

    async def overdue(self, now: datetime, limit: int) -> Sequence[str]:
        rows = await self._connection.execute(
            sa.select(reservations.c.id)
            .where(
                reservations.c.state == ReservationState.ACTIVE.value,
                reservations.c.expire_time <= now,
            )
            .order_by(reservations.c.expire_time, reservations.c.id)
            .limit(limit)
        )
        return [row.id for row in rows]

    async def _with_items(self, row: sa.Row[Any]) -> Reservation:
        items = await self._connection.execute(
            sa.select(reservation_items.c.product_id, reservation_items.c.quantity)
            .where(reservation_items.c.reservation_id == row.id)
            .order_by(reservation_items.c.position)
        )
        return Reservation(
            id=row.id,
            order_id=row.order_id,
            items=tuple(ReservationItem(i.product_id, i.quantity) for i in items),
            state=ReservationState(row.state),
            create_time=_utc(row.create_time),
            expire_time=_utc(row.expire_time),
            update_time=_utc(row.update_time),
        )


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _stock(row: sa.Row[Any]) -> Stock:
    return Stock(
        product_id=row.product_id,
        on_hand=row.on_hand,
        reserved=row.reserved,
        update_time=_utc(row.update_time),
        revision=row.revision,
    )
