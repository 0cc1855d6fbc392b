"""Payments' events in its outbox table, on SQLite and PostgreSQL, through the use cases.

A committed change leaves its event as an unsent row in the same database; a rolled-back
one, and a FAILED attempt (which the contract publishes nothing for), leave none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import NamedTuple

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agora.payments.v1 import events_pb2, payment_pb2
from payments.adapters import orm
from payments.adapters.unit_of_work import SqlAlchemyUnitOfWork
from payments.bootstrap import MIGRATIONS
from payments.domain import usecases
from payments.domain.commands import AuthorizePayment, CapturePayment, RefundPayment
from payments.domain.errors import PaymentDeclined, ProcessorUnavailable
from payments.domain.model import Money, Payment
from runtime.idempotency import Idempotency
from tests.support.database import migrated_engine
from tests.unit.payments.fakes import FakeCardProcessor

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CARD = "4242 4242 4242 4242"


class OutboxRow(NamedTuple):
    event_type: str
    aggregate: str
    payload: bytes


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


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


def eur(units: int) -> Money:
    return Money.of("EUR", units)


async def authorize(engine: AsyncEngine, processor: FakeCardProcessor, request_id: str) -> Payment:
    command = AuthorizePayment("o1", "u1", eur(100), CARD, Idempotency(request_id, "f"))
    return await usecases.authorize_payment(SqlAlchemyUnitOfWork(engine), processor, command, NOON)


async def test_a_committed_change_leaves_one_unsent_row_for_its_event(
    engine: AsyncEngine,
) -> None:
    payment = await authorize(engine, FakeCardProcessor(), "auth-1")
    rows = await unsent(engine)
    assert [(r.event_type, r.aggregate) for r in rows] == [
        ("agora.payments.v1.PaymentAuthorized", payment.name)
    ]
    event = events_pb2.PaymentAuthorized.FromString(rows[0].payload)
    assert (event.payment.name, event.payment.state) == (
        payment.name,
        payment_pb2.PAYMENT_STATE_AUTHORIZED,
    )


async def test_a_rolled_back_change_leaves_no_row(engine: AsyncEngine) -> None:
    processor = FakeCardProcessor()
    payment = await authorize(engine, processor, "auth-1")
    before = await unsent(engine)
    processor.failing = True
    with pytest.raises(ProcessorUnavailable):
        await usecases.capture_payment(
            SqlAlchemyUnitOfWork(engine),
            processor,
            CapturePayment(payment.id, Idempotency("cap-1", "f")),
            NOON,
        )
    assert await unsent(engine) == before


async def test_a_decline_leaves_its_row_and_a_failed_attempt_none(engine: AsyncEngine) -> None:
    with pytest.raises(ProcessorUnavailable):
        await authorize(engine, FakeCardProcessor("unavailable"), "auth-1")
    assert await unsent(engine) == []  # stored as FAILED, which publishes nothing
    with pytest.raises(PaymentDeclined):
        await authorize(engine, FakeCardProcessor("decline"), "auth-1")
    rows = await unsent(engine)
    assert [r.event_type for r in rows] == ["agora.payments.v1.PaymentDeclined"]
    event = events_pb2.PaymentDeclined.FromString(rows[0].payload)
    assert event.payment.failure_reason == "PAYMENT_DECLINED"


async def test_a_refund_row_carries_the_amount_of_that_refund(engine: AsyncEngine) -> None:
    processor = FakeCardProcessor()
    payment = await authorize(engine, processor, "auth-1")
    await usecases.capture_payment(
        SqlAlchemyUnitOfWork(engine),
        processor,
        CapturePayment(payment.id, Idempotency("cap-1", "f")),
        NOON,
    )
    for request_id, units in (("r1", 30), ("r2", 20)):
        await usecases.refund_payment(
            SqlAlchemyUnitOfWork(engine),
            processor,
            RefundPayment(payment.id, eur(units), Idempotency(request_id, "f")),
            NOON,
        )
    rows = await unsent(engine)
    assert [(r.event_type, r.aggregate) for r in rows] == [
        ("agora.payments.v1.PaymentAuthorized", payment.name),
        ("agora.payments.v1.PaymentCaptured", payment.name),
        ("agora.payments.v1.PaymentRefunded", payment.name),
        ("agora.payments.v1.PaymentRefunded", payment.name),
    ]
    last = events_pb2.PaymentRefunded.FromString(rows[-1].payload)
    assert (last.amount.currency_code, last.amount.units) == ("EUR", 20)
    assert last.payment.refunded_amount.units == 50
    assert last.payment.state == payment_pb2.PAYMENT_STATE_PARTIALLY_REFUNDED
