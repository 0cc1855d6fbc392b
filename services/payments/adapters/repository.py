"""SQLAlchemy (Core) implementation of the payment repository."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.adapters.orm import payments
from payments.domain.model import NANOS_PER_UNIT, Money, Page, Payment, PaymentQuery, PaymentState
from payments.domain.ports import PaymentRepository

# Built once: building a statement and its cache key costs more than running it on SQLite.
_BY_ID = sa.select(payments).where(payments.c.id == sa.bindparam("payment_id"))
# SQLite ignores FOR UPDATE; its writers already hold the database lock (BEGIN IMMEDIATE).
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()


class SqlAlchemyPaymentRepository(PaymentRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        statement = _BY_ID_FOR_UPDATE if for_update else _BY_ID
        row = (await self._connection.execute(statement, {"payment_id": payment_id})).first()
        return None if row is None else _payment(row)

    async def add(self, payment: Payment) -> None:
        await self._connection.execute(
            sa.insert(payments).values(id=payment.id, **_values(payment))
        )

    async def update(self, payment: Payment, expected_revision: int) -> bool:
        result = await self._connection.execute(
            sa.update(payments)
            .where(payments.c.id == payment.id, payments.c.revision == expected_revision)
            .values(**_values(payment))
        )
        return bool(result.rowcount)

    async def query(self, query: PaymentQuery) -> Page:
        statement = (
            sa.select(payments)
            .order_by(payments.c.create_time.desc(), payments.c.id.desc())
            .limit(query.page_size + 1)
        )
        if query.order_id is not None:
            statement = statement.where(payments.c.order_id == query.order_id)
        if query.user_id is not None:
            statement = statement.where(payments.c.user_id == query.user_id)
        if query.after is not None:
            after_time, after_id = query.after
            statement = statement.where(
                sa.or_(
                    payments.c.create_time < after_time,
                    sa.and_(payments.c.create_time == after_time, payments.c.id < after_id),
                )
            )
        rows = (await self._connection.execute(statement)).all()
        items = [_payment(row) for row in rows[: query.page_size]]
        more = len(rows) > query.page_size
        return Page(items, (items[-1].create_time, items[-1].id) if more else None)


def _split(money: Money) -> tuple[int, int]:
    return divmod(money.nanos, NANOS_PER_UNIT)


def _values(payment: Payment) -> dict[str, Any]:
    amount_units, amount_nanos = _split(payment.amount)
    captured_units, captured_nanos = _split(payment.captured)
    refunded_units, refunded_nanos = _split(payment.refunded)
    return {
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "currency": payment.amount.currency_code,
        "amount_units": amount_units,
        "amount_nanos": amount_nanos,
        "captured_units": captured_units,
        "captured_nanos": captured_nanos,
        "refunded_units": refunded_units,
        "refunded_nanos": refunded_nanos,
        "state": payment.state.value,
        "card_last4": payment.card_last4,
        "failure_reason": payment.failure_reason,
        "processor_reference": payment.processor_reference,
        "create_time": payment.create_time,
        "update_time": payment.update_time,
        "capture_time": payment.capture_time,
        "revision": payment.revision,
    }


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _money(currency: str, units: int, nanos: int) -> Money:
    return Money(currency, units * NANOS_PER_UNIT + nanos)


def _payment(row: sa.Row[Any]) -> Payment:
    return Payment(
        id=row.id,
        order_id=row.order_id,
        user_id=row.user_id,
        amount=_money(row.currency, row.amount_units, row.amount_nanos),
        captured=_money(row.currency, row.captured_units, row.captured_nanos),
        refunded=_money(row.currency, row.refunded_units, row.refunded_nanos),
        state=PaymentState(row.state),
        card_last4=row.card_last4,
        failure_reason=row.failure_reason,
        processor_reference=row.processor_reference,
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        capture_time=None if row.capture_time is None else _utc(row.capture_time),
        revision=row.revision,
    )
