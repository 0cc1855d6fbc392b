"""In-memory fakes of payments' ports, for unit tests of the use cases."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from payments.domain.errors import ProcessorTimeout, ProcessorUnavailable
from payments.domain.model import Authorization, DeclineReason, Money, Page, Payment, PaymentQuery
from payments.domain.ports import CardProcessor, PaymentRepository, UnitOfWork
from runtime.idempotency import RecordedRequest
from tests.support import fakes


@dataclass
class FakeStore:
    """What a committed "database" holds."""

    payments: dict[str, Payment] = field(default_factory=dict)
    requests: dict[str, RecordedRequest] = field(default_factory=dict)


class FakePaymentRepository(PaymentRepository):
    """Reads and writes a working copy; ``update`` also checks the revision committed by
    others meanwhile, as a conditional UPDATE in a database does."""

    def __init__(self, store: FakeStore, committed: FakeStore) -> None:
        self._store = store
        self._committed = committed

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        return self._store.payments.get(payment_id)

    async def add(self, payment: Payment) -> None:
        assert payment.id not in self._store.payments
        self._store.payments[payment.id] = payment

    async def update(self, payment: Payment, expected_revision: int) -> bool:
        current = self._store.payments.get(payment.id)
        if current is None or current.revision != expected_revision:
            return False
        latest = self._committed.payments.get(payment.id)
        if latest is not None and latest.revision != expected_revision:
            return False
        self._store.payments[payment.id] = payment
        return True

    async def query(self, query: PaymentQuery) -> Page:
        def matches(p: Payment) -> bool:
            return (
                (query.order_id is None or p.order_id == query.order_id)
                and (query.user_id is None or p.user_id == query.user_id)
                and (query.after is None or (p.create_time, p.id) < query.after)
            )

        found = sorted(
            (p for p in self._store.payments.values() if matches(p)),
            key=lambda p: (p.create_time, p.id),
            reverse=True,
        )
        items = found[: query.page_size]
        more = len(found) > query.page_size
        return Page(items, (items[-1].create_time, items[-1].id) if more else None)


class FakeUnitOfWork(fakes.FakeUnitOfWork[FakeStore], UnitOfWork):
    """Works on a copy of the store; commit publishes the copy, so rollback really discards."""

    def _bind(self, working: FakeStore) -> None:
        self.payments = FakePaymentRepository(working, self._committed)


class FakeCardProcessor(CardProcessor):
    """A processor whose next answers the test chooses; it counts every call it gets.

    ``outcome`` applies to authorizations: ``approve``, ``decline``, ``insufficient_funds``,
    ``unavailable`` or ``timeout``. ``failing`` makes capture, void and refund unavailable.
    ``delay`` keeps each call waiting, so concurrent calls overlap.
    """

    def __init__(self, outcome: str = "approve", delay: float = 0.0) -> None:
        self.outcome = outcome
        self.failing = False
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self.refunds: list[Money] = []

    async def authorize(self, payment_token: str, amount: Money) -> Authorization:
        self.calls["authorize"] += 1
        await asyncio.sleep(self.delay)
        if self.outcome == "unavailable":
            raise ProcessorUnavailable()
        if self.outcome == "timeout":
            raise ProcessorTimeout()
        if self.outcome == "decline":
            return Authorization(False, "0002", decline_reason=DeclineReason.DECLINED)
        if self.outcome == "insufficient_funds":
            return Authorization(False, "9995", decline_reason=DeclineReason.INSUFFICIENT_FUNDS)
        return Authorization(True, "4242", reference=f"ref-{self.calls['authorize']}")

    async def capture(self, reference: str, amount: Money) -> None:
        await self._settle("capture")

    async def void(self, reference: str) -> None:
        await self._settle("void")

    async def refund(self, reference: str, amount: Money) -> None:
        await self._settle("refund")
        self.refunds.append(amount)

    async def _settle(self, operation: str) -> None:
        self.calls[operation] += 1
        await asyncio.sleep(self.delay)
        if self.failing:
            raise ProcessorUnavailable()
