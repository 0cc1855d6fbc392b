"""SQLAlchemy (Core) implementation of the order repository and the checkout leases.

An order is one ``orders`` row plus its ``order_lines`` (written once) and its
``order_steps`` (only ever appended): saving an order updates its row with a
compare-and-set on ``revision`` and inserts the history entries the row does not have yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from orders.adapters.orm import order_lines, order_steps, orders
from orders.domain.model import (
    NANOS_PER_UNIT,
    CancellationReason,
    Line,
    Money,
    Order,
    OrderQuery,
    OrderState,
    Outcome,
    Page,
    Step,
    StepRecord,
)
from orders.domain.ports import CheckoutLeases, OrderRepository

UNFINISHED = (OrderState.PENDING.value, OrderState.CONFIRMED.value, OrderState.CANCELLING.value)

_BY_ID = sa.select(orders).where(orders.c.id == sa.bindparam("order_id"))
# SQLite ignores FOR UPDATE; its writers already hold the database lock (BEGIN IMMEDIATE).
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_LINES = (
    sa.select(order_lines)
    .where(order_lines.c.order_id.in_(sa.bindparam("order_ids", expanding=True)))
    .order_by(order_lines.c.order_id, order_lines.c.position)
)
_STEPS = (
    sa.select(order_steps)
    .where(order_steps.c.order_id.in_(sa.bindparam("order_ids", expanding=True)))
    .order_by(order_steps.c.order_id, order_steps.c.position)
)
_STEP_COUNT = sa.select(sa.func.count()).where(order_steps.c.order_id == sa.bindparam("order_id"))


class SqlAlchemyOrderRepository(OrderRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        statement = _BY_ID_FOR_UPDATE if for_update else _BY_ID
        row = (await self._connection.execute(statement, {"order_id": order_id})).first()
        if row is None:
            return None
        return (await self._complete([row]))[0]

    async def add(self, order: Order) -> None:
        await self._connection.execute(sa.insert(orders).values(id=order.id, **_values(order)))
        await self._connection.execute(
            sa.insert(order_lines),
            [
                {
                    "order_id": order.id,
                    "position": position,
                    "product_id": line.product_id,
                    "display_name": line.display_name,
                    "quantity": line.quantity,
                    "unit_units": _split(line.unit_price)[0],
                    "unit_nanos": _split(line.unit_price)[1],
                }
                for position, line in enumerate(order.lines)
            ],
        )
        await self._append_steps(order, 0)

    async def update(self, order: Order, expected_revision: int) -> bool:
        result = await self._connection.execute(
            sa.update(orders)
            .where(orders.c.id == order.id, orders.c.revision == expected_revision)
            .values(**_values(order))
        )
        if not result.rowcount:
            return False
        stored = (await self._connection.execute(_STEP_COUNT, {"order_id": order.id})).scalar_one()
        await self._append_steps(order, stored)
        return True

    async def query(self, query: OrderQuery) -> Page:
        statement = (
            sa.select(orders)
            .where(orders.c.user_id == query.user_id)
            .order_by(orders.c.create_time.desc(), orders.c.id.desc())
            .limit(query.page_size + 1)
        )
        if query.state is not None:
            statement = statement.where(orders.c.state == query.state.value)
        if query.after is not None:
            after_time, after_id = query.after
            statement = statement.where(
                sa.or_(
                    orders.c.create_time < after_time,
                    sa.and_(orders.c.create_time == after_time, orders.c.id < after_id),
                )
            )
        rows = (await self._connection.execute(statement)).all()
        items = await self._complete(rows[: query.page_size])
        more = len(rows) > query.page_size
        return Page(items, (items[-1].create_time, items[-1].id) if more else None)

    async def _append_steps(self, order: Order, stored: int) -> None:
        new = order.history[stored:]
        if not new:
            return
        await self._connection.execute(
            sa.insert(order_steps),
            [
                {
                    "order_id": order.id,
                    "position": position,
                    "step": record.step.value,
                    "outcome": record.outcome.value,
                    "finish_time": record.finish_time,
                    "reason": record.reason,
                    "detail": record.detail[:1000],
                }
                for position, record in enumerate(new, start=stored)
            ],
        )

    async def _complete(self, rows: Sequence[sa.Row[Any]]) -> list[Order]:
        """Orders from their rows, with lines and history read in two queries for all."""
        if not rows:
            return []
        ids = {"order_ids": [row.id for row in rows]}
        currency = {row.id: row.currency for row in rows}
        lines: dict[str, list[Line]] = {}
        for line in await self._connection.execute(_LINES, ids):
            price = line.unit_units * NANOS_PER_UNIT + line.unit_nanos
            lines.setdefault(line.order_id, []).append(
                Line(
                    line.product_id,
                    line.display_name,
                    line.quantity,
                    Money(currency[line.order_id], price),
                )
            )
        steps: dict[str, list[StepRecord]] = {}
        for step in await self._connection.execute(_STEPS, ids):
            steps.setdefault(step.order_id, []).append(
                StepRecord(
                    Step(step.step),
                    Outcome(step.outcome),
                    _utc(step.finish_time),
                    step.reason,
                    step.detail,
                )
            )
        return [_order(row, tuple(lines.get(row.id, [])), steps) for row in rows]


class SqlAlchemyCheckoutLeases(CheckoutLeases):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def claimable(self, owner: str, now: datetime, limit: int) -> Sequence[str]:
        statement = (
            sa.select(orders.c.id)
            .where(orders.c.state.in_(UNFINISHED), _free_for(owner, now))
            .order_by(orders.c.update_time)
            .limit(limit)
        )
        return list((await self._connection.execute(statement)).scalars())

    async def claim(self, order_id: str, owner: str, now: datetime, until: datetime) -> bool:
        result = await self._connection.execute(
            sa.update(orders)
            .where(orders.c.id == order_id, _free_for(owner, now))
            .values(lease_owner=owner, lease_until=until)
        )
        return bool(result.rowcount)

    async def renew(self, order_ids: Sequence[str], owner: str, until: datetime) -> None:
        if order_ids:
            await self._connection.execute(
                sa.update(orders)
                .where(orders.c.id.in_(order_ids), orders.c.lease_owner == owner)
                .values(lease_until=until)
            )

    async def release(self, order_id: str, owner: str) -> None:
        await self._connection.execute(
            sa.update(orders)
            .where(orders.c.id == order_id, orders.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


def _free_for(owner: str, now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        orders.c.lease_until.is_(None),
        orders.c.lease_until < now,
        orders.c.lease_owner == owner,
    )


def _split(money: Money) -> tuple[int, int]:
    return divmod(money.nanos, NANOS_PER_UNIT)


def _values(order: Order) -> dict[str, Any]:
    total_units, total_nanos = _split(order.total)
    return {
        "user_id": order.user_id,
        "currency": order.total.currency_code,
        "total_units": total_units,
        "total_nanos": total_nanos,
        "state": order.state.value,
        "cancellation_reason": (
            None if order.cancellation_reason is None else order.cancellation_reason.value
        ),
        "reservation_id": order.reservation_id,
        "payment_id": order.payment_id,
        "payment_token": order.payment_token,
        "reservation_ttl_seconds": int(order.reservation_ttl.total_seconds()),
        "checkout_deadline": order.checkout_deadline,
        "in_flight": None if order.in_flight is None else order.in_flight.value,
        "undo": ",".join(step.value for step in order.undo),
        "create_time": order.create_time,
        "update_time": order.update_time,
        "revision": order.revision,
        "traceparent": order.traceparent,
    }


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _order(row: sa.Row[Any], lines: tuple[Line, ...], steps: dict[str, list[StepRecord]]) -> Order:
    return Order(
        id=row.id,
        user_id=row.user_id,
        lines=lines,
        total=Money(row.currency, row.total_units * NANOS_PER_UNIT + row.total_nanos),
        state=OrderState(row.state),
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        reservation_ttl=timedelta(seconds=row.reservation_ttl_seconds),
        checkout_deadline=_utc(row.checkout_deadline),
        cancellation_reason=(
            None if row.cancellation_reason is None else CancellationReason(row.cancellation_reason)
        ),
        reservation_id=row.reservation_id,
        payment_id=row.payment_id,
        history=tuple(steps.get(row.id, [])),
        payment_token=row.payment_token,
        in_flight=None if row.in_flight is None else Step(row.in_flight),
        undo=tuple(Step(step) for step in row.undo.split(",") if step),
        revision=row.revision,
        traceparent=row.traceparent,
    )
