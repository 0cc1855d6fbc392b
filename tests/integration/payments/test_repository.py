"""Payments' SQLAlchemy adapters against SQLite and PostgreSQL, including concurrent writers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.adapters.orm import metadata
from payments.adapters.unit_of_work import SqlAlchemyUnitOfWork
from payments.bootstrap import MIGRATIONS
from payments.domain import usecases
from payments.domain.commands import AuthorizePayment, CapturePayment, RefundPayment
from payments.domain.errors import (
    PaymentDeclined,
    PaymentNotCapturable,
    ProcessorUnavailable,
    RefundExceedsCaptured,
)
from payments.domain.model import Money, Payment, PaymentQuery, PaymentState
from runtime import db
from runtime.idempotency import Idempotency
from tests.support.database import migrated_engine, schema_differences
from tests.unit.payments.fakes import FakeCardProcessor

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CARD = "4242 4242 4242 4242"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


async def test_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    assert await schema_differences(engine, metadata) == []


async def test_migrating_twice_changes_nothing(engine: AsyncEngine) -> None:
    await db.migrate(engine, MIGRATIONS)


def eur(units: int, nanos: int = 0) -> Money:
    return Money.of("EUR", units, nanos)


async def authorize(
    engine: AsyncEngine,
    processor: FakeCardProcessor,
    request_id: str,
    *,
    order: str = "o1",
    amount: Money | None = None,
    now: datetime = NOON,
) -> Payment:
    command = AuthorizePayment(order, "u1", amount or eur(100), CARD, Idempotency(request_id, "f"))
    return await usecases.authorize_payment(SqlAlchemyUnitOfWork(engine), processor, command, now)


async def capture(
    engine: AsyncEngine, processor: FakeCardProcessor, payment: Payment, request_id: str
) -> Payment:
    return await usecases.capture_payment(
        SqlAlchemyUnitOfWork(engine),
        processor,
        CapturePayment(payment.id, Idempotency(request_id, "f")),
        NOON,
    )


async def test_a_payment_round_trips_with_exact_amounts(engine: AsyncEngine) -> None:
    processor = FakeCardProcessor()
    payment = await authorize(
        engine, processor, "a1", amount=Money.of("EUR", 12_345_678_901, 990_000_000)
    )
    stored = await usecases.get_payment(
        SqlAlchemyUnitOfWork(engine), payment.id, restricted_to=None
    )
    assert stored == payment
    captured = await capture(engine, processor, payment, "c1")
    assert (
        await usecases.get_payment(SqlAlchemyUnitOfWork(engine), payment.id, restricted_to=None)
        == captured
    )


async def test_a_decline_and_its_replay_are_kept_in_the_database(engine: AsyncEngine) -> None:
    processor = FakeCardProcessor("decline")
    with pytest.raises(PaymentDeclined) as first:
        await authorize(engine, processor, "a1")
    with pytest.raises(PaymentDeclined) as again:
        await authorize(engine, processor, "a1")
    assert again.value.metadata == first.value.metadata
    assert processor.calls["authorize"] == 1
    name = first.value.metadata["payment"]
    stored = await usecases.get_payment(
        SqlAlchemyUnitOfWork(engine), name.split("/")[1], restricted_to=None
    )
    assert (stored.state, stored.failure_reason) == (PaymentState.DECLINED, "PAYMENT_DECLINED")


async def test_a_failed_authorization_is_committed_and_retried(engine: AsyncEngine) -> None:
    processor = FakeCardProcessor("unavailable")
    with pytest.raises(ProcessorUnavailable) as caught:
        await authorize(engine, processor, "a1")
    payment_id = caught.value.metadata["payment"].split("/")[1]
    failed = await usecases.get_payment(
        SqlAlchemyUnitOfWork(engine), payment_id, restricted_to=None
    )
    assert failed.state is PaymentState.FAILED
    processor.outcome = "approve"
    retried = await authorize(engine, processor, "a1")
    assert (retried.id, retried.state, retried.revision) == (payment_id, PaymentState.AUTHORIZED, 2)


async def test_listing_is_newest_first_filtered_and_keyset_paged(engine: AsyncEngine) -> None:
    processor = FakeCardProcessor()
    made = []
    for index in range(5):
        order = "o1" if index % 2 == 0 else "o2"
        made.append(
            await authorize(
                engine,
                processor,
                f"a{index}",
                order=order,
                now=NOON + timedelta(seconds=index // 2),
            )
        )
    # Two payments share each create time: the id breaks the tie.
    expected = sorted(made, key=lambda p: (p.create_time, p.id), reverse=True)
    seen: list[str] = []
    after = None
    while True:
        page = await usecases.list_payments(
            SqlAlchemyUnitOfWork(engine), PaymentQuery(2, after=after), restricted_to=None
        )
        seen += [p.id for p in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [p.id for p in expected]
    only_o2 = await usecases.list_payments(
        SqlAlchemyUnitOfWork(engine), PaymentQuery(10, "o2"), restricted_to=None
    )
    assert [p.id for p in only_o2.items] == [p.id for p in expected if p.order_id == "o2"]


async def test_two_concurrent_captures_capture_once(engine: AsyncEngine) -> None:
    processor = FakeCardProcessor(delay=0.05)  # keeps the first capture inside the processor
    payment = await authorize(engine, processor, "a1")
    results = await asyncio.gather(
        capture(engine, processor, payment, "c1"),
        capture(engine, processor, payment, "c2"),
        return_exceptions=True,
    )
    captured = [r for r in results if isinstance(r, Payment)]
    refused = [r for r in results if isinstance(r, PaymentNotCapturable)]
    assert (len(captured), len(refused)) == (1, 1), results
    assert processor.calls["capture"] == 1
    stored = await usecases.get_payment(
        SqlAlchemyUnitOfWork(engine), payment.id, restricted_to=None
    )
    assert (stored.state, stored.captured) == (PaymentState.CAPTURED, eur(100))


async def test_concurrent_refunds_never_exceed_the_captured_amount(engine: AsyncEngine) -> None:
    processor = FakeCardProcessor(delay=0.02)
    payment = await capture(engine, processor, await authorize(engine, processor, "a1"), "c1")

    async def refund(request_id: str) -> Payment:
        return await usecases.refund_payment(
            SqlAlchemyUnitOfWork(engine),
            processor,
            RefundPayment(payment.id, eur(30), Idempotency(request_id, "f")),
            NOON,
        )

    results = await asyncio.gather(*(refund(f"r{i}") for i in range(5)), return_exceptions=True)
    refunded = [r for r in results if isinstance(r, Payment)]
    refused = [r for r in results if isinstance(r, RefundExceedsCaptured)]
    assert (len(refunded), len(refused)) == (3, 2), results
    assert processor.refunds == [eur(30)] * 3
    stored = await usecases.get_payment(
        SqlAlchemyUnitOfWork(engine), payment.id, restricted_to=None
    )
    assert (stored.state, stored.refunded) == (PaymentState.PARTIALLY_REFUNDED, eur(90))
