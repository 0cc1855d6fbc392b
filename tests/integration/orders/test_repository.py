"""Orders' SQLAlchemy adapters against SQLite and PostgreSQL, and the checkout over them.

The repository and the leases are checked through the real unit of work; the checkout
runs against the real database with inventory and payments kept in memory here, since
what is under test is how its progress is stored, also while a cancellation races it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orders.adapters.orm import metadata, order_steps
from orders.adapters.unit_of_work import SqlAlchemyUnitOfWork
from orders.bootstrap import MIGRATIONS
from orders.domain import usecases
from orders.domain.checkout import Checkout, RetryPolicy
from orders.domain.commands import CancelOrder
from orders.domain.model import (
    CancellationReason,
    LineItem,
    Money,
    Order,
    OrderQuery,
    OrderState,
    Outcome,
    PricedProduct,
    Step,
    StepRecord,
)
from orders.domain.ports import Inventory, Payments, PaymentSummary, Reservation
from runtime import db
from runtime.errors import FailedPrecondition
from tests.support.database import migrated_engine, schema_differences

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
WAIT_S = 10.0  # bound on every wait for the checkout
ASSAM = PricedProduct("assam", "Assam, second flush", Money.of("EUR", 4, 250_000_001))
GYOKURO = PricedProduct("gyokuro", "Gyokuro", Money.of("EUR", 9_876_543_210, 5))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


async def test_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    assert await schema_differences(engine, metadata) == []


async def test_migrating_twice_changes_nothing(engine: AsyncEngine) -> None:
    await db.migrate(engine, MIGRATIONS)
    assert await schema_differences(engine, metadata) == []


def placed(
    order_id: str = "o1", user_id: str = "alice", now: datetime = NOON, card: str = CARD
) -> Order:
    return Order.place(
        order_id,
        user_id,
        [LineItem("assam", 3), LineItem("gyokuro", 1)],
        [ASSAM, GYOKURO],
        card,
        TTL,
        now,
    )


async def add(engine: AsyncEngine, *orders: Order) -> None:
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        for order in orders:
            await uow.orders.add(order)
        await uow.commit()


async def stored(engine: AsyncEngine, order_id: str) -> Order | None:
    async with SqlAlchemyUnitOfWork(engine) as uow:
        return await uow.orders.get(order_id)


async def save(engine: AsyncEngine, order: Order, expected_revision: int) -> bool:
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        saved = await uow.orders.update(order, expected_revision)
        await uow.commit()
        return saved


async def step_rows(engine: AsyncEngine, order_id: str) -> list[tuple[int, str, str]]:
    """The stored ``order_steps`` rows of the order: (position, step, outcome)."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(order_steps.c.position, order_steps.c.step, order_steps.c.outcome)
            .where(order_steps.c.order_id == order_id)
            .order_by(order_steps.c.position)
        )
        return [(row.position, row.step, row.outcome) for row in rows]


def outcomes(order: Order) -> list[tuple[Step, Outcome]]:
    return [(record.step, record.outcome) for record in order.history]


# --- the order and its history ------------------------------------------------------------


async def test_a_placed_order_round_trips_exactly(engine: AsyncEngine) -> None:
    order = placed()
    assert order.total == Money.of("EUR", 9_876_543_222, 750_000_008)
    await add(engine, order)
    assert await stored(engine, "o1") == order
    assert await stored(engine, "nope") is None


async def test_every_field_of_an_order_round_trips_exactly(engine: AsyncEngine) -> None:
    base = placed()
    order = replace(
        base,
        state=OrderState.CANCELLING,
        update_time=NOON + timedelta(seconds=3, microseconds=654_321),
        reservation_ttl=timedelta(seconds=600),
        checkout_deadline=NOON + timedelta(minutes=10, microseconds=7),
        cancellation_reason=CancellationReason.PAYMENT_DECLINED,
        reservation_id="r-7",
        payment_id="p-9",
        history=(
            *base.history,
            StepRecord(
                Step.RESERVE_STOCK,
                Outcome.SUCCEEDED,
                NOON + timedelta(seconds=1, microseconds=123_456),
                detail="reserved 4 units as reservations/r-7",
            ),
            StepRecord(
                Step.AUTHORIZE_PAYMENT,
                Outcome.FAILED,
                NOON + timedelta(seconds=2),
                reason="PAYMENT_DECLINED",
                detail="the card was declined",
            ),
        ),
        payment_token="4000000000000002",
        in_flight=Step.CAPTURE_PAYMENT,
        undo=(Step.AUTHORIZE_PAYMENT, Step.RESERVE_STOCK),
        revision=7,
    )
    await add(engine, order)
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        locked = await uow.orders.get("o1", for_update=True)
    assert locked == order
    assert await stored(engine, "o1") == order
    assert [line.unit_price for line in order.lines] == [ASSAM.price, GYOKURO.price]


async def test_update_is_a_compare_and_set_on_the_revision(engine: AsyncEngine) -> None:
    order = placed()
    await add(engine, order)
    reserving = order.started(Step.RESERVE_STOCK, NOON + timedelta(seconds=1))
    assert await save(engine, reserving, order.revision)

    # A writer that read revision 1 loses, and none of its history is stored.
    stale = order.failed(
        Step.RESERVE_STOCK,
        NOON + timedelta(seconds=2),
        "INSUFFICIENT_STOCK",
        "out of assam",
        CancellationReason.OUT_OF_STOCK,
    )
    assert not await save(engine, stale, order.revision)
    assert await stored(engine, "o1") == reserving
    assert len(await step_rows(engine, "o1")) == 1

    # An update that was never committed leaves nothing behind either.
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        assert await uow.orders.update(stale, reserving.revision)
    assert await stored(engine, "o1") == reserving


async def test_update_appends_only_the_new_history_entries(engine: AsyncEngine) -> None:
    order = placed()
    await add(engine, order)
    reserved = order.started(Step.RESERVE_STOCK, NOON).succeeded(
        Step.RESERVE_STOCK,
        NOON + timedelta(seconds=1),
        "reserved",
        reservation_id="r1",
        reservation_expiry=NOON + TTL + timedelta(seconds=1),
    )
    assert await save(engine, reserved, order.revision)
    # Two entries at once, and a revision that skipped one: only the stored one counts.
    confirmed = (
        reserved.started(Step.AUTHORIZE_PAYMENT, NOON)
        .succeeded(Step.AUTHORIZE_PAYMENT, NOON + timedelta(seconds=2), "ok", payment_id="p1")
        .succeeded(Step.CONFIRM_ORDER, NOON + timedelta(seconds=3), "confirmed")
    )
    assert await save(engine, confirmed, reserved.revision)
    assert await stored(engine, "o1") == confirmed
    assert await step_rows(engine, "o1") == [
        (0, "PRICE_PRODUCTS", "SUCCEEDED"),
        (1, "RESERVE_STOCK", "SUCCEEDED"),
        (2, "AUTHORIZE_PAYMENT", "SUCCEEDED"),
        (3, "CONFIRM_ORDER", "SUCCEEDED"),
    ]
    # Saving without new history changes the row and adds no step.
    touched = replace(confirmed, revision=confirmed.revision + 1)
    assert await save(engine, touched, confirmed.revision)
    assert len(await step_rows(engine, "o1")) == 4


# --- listing --------------------------------------------------------------------------------


async def test_query_pages_one_users_orders_newest_first_with_a_state_filter(
    engine: AsyncEngine,
) -> None:
    # Two orders share each create time, and their ids are out of insertion order, so
    # the id has to break the tie.
    ids = ["ob", "oa", "od", "oc", "oe"]
    alice = [
        placed(order_id, now=NOON + timedelta(seconds=index // 2))
        for index, order_id in enumerate(ids)
    ]
    alice[1] = replace(alice[1], state=OrderState.CANCELLED)
    alice[2] = replace(alice[2], state=OrderState.CANCELLED)
    bob = placed("oz", user_id="bob", now=NOON + timedelta(minutes=1))
    await add(engine, *alice, bob)
    newest_first = sorted(alice, key=lambda o: (o.create_time, o.id), reverse=True)
    assert [o.id for o in newest_first] == ["oe", "od", "oc", "ob", "oa"]

    async def pages(size: int, state: OrderState | None = None) -> list[list[Order]]:
        found: list[list[Order]] = []
        after = None
        while True:
            page = await usecases.list_orders(
                SqlAlchemyUnitOfWork(engine),
                OrderQuery("alice", size, state, after),
                restricted_to=None,
            )
            found.append(list(page.items))
            if page.next_after is None:
                return found
            after = page.next_after

    assert await pages(2) == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    assert await pages(5) == [newest_first]  # a full last page says there is no more
    pending = [o for o in newest_first if o.state is OrderState.PENDING]
    assert await pages(2, OrderState.PENDING) == [pending[0:2], pending[2:]]
    cancelled = [o for o in newest_first if o.state is OrderState.CANCELLED]
    assert await pages(10, OrderState.CANCELLED) == [cancelled]
    assert await pages(10, OrderState.COMPLETED) == [[]]
    nobody = await usecases.list_orders(
        SqlAlchemyUnitOfWork(engine), OrderQuery("carol", 10), restricted_to=None
    )
    assert (list(nobody.items), nobody.next_after) == ([], None)


# --- checkout leases ------------------------------------------------------------------------


async def claim(
    engine: AsyncEngine, order_id: str, owner: str, now: datetime, until: datetime
) -> bool:
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        claimed = await uow.leases.claim(order_id, owner, now, until)
        await uow.commit()
        return claimed


async def claimable(engine: AsyncEngine, owner: str, now: datetime, limit: int = 10) -> list[str]:
    async with SqlAlchemyUnitOfWork(engine) as uow:
        return list(await uow.leases.claimable(owner, now, limit))


async def lease_owner(engine: AsyncEngine, order_id: str) -> str | None:
    async with engine.connect() as connection:
        row = await connection.execute(
            sa.text("select lease_owner from orders where id = :id"), {"id": order_id}
        )
        owner: str | None = row.scalar_one()
        return owner


def updated(order_id: str, state: OrderState, seconds: float) -> Order:
    return replace(placed(order_id), state=state, update_time=NOON + timedelta(seconds=seconds))


async def test_claimable_lists_unfinished_orders_whose_lease_is_free_expired_or_own(
    engine: AsyncEngine,
) -> None:
    await add(
        engine,
        updated("taken", OrderState.CONFIRMED, 0.5),
        updated("free", OrderState.PENDING, 1),
        updated("own", OrderState.PENDING, 2),
        updated("expired", OrderState.CANCELLING, 3),
        updated("completed", OrderState.COMPLETED, 0),
        updated("cancelled", OrderState.CANCELLED, 0),
    )
    hour = NOON + timedelta(hours=1)
    assert await claim(engine, "taken", "beta", NOON, hour)
    assert await claim(engine, "own", "alpha", NOON, hour)
    assert await claim(engine, "expired", "beta", NOON, NOON + timedelta(seconds=30))
    later = NOON + timedelta(minutes=1)

    # Least recently updated first.
    assert await claimable(engine, "alpha", later) == ["free", "own", "expired"]
    assert await claimable(engine, "alpha", later, limit=2) == ["free", "own"]
    assert await claimable(engine, "beta", later) == ["taken", "free", "expired"]
    assert await claimable(engine, "beta", NOON) == ["taken", "free", "expired"]
    assert await claimable(engine, "alpha", NOON) == ["free", "own"]


async def test_claim_is_exclusive_until_the_lease_expires(engine: AsyncEngine) -> None:
    await add(engine, placed("o1"))
    assert await claim(engine, "o1", "alpha", NOON, NOON + timedelta(seconds=30))
    assert not await claim(
        engine, "o1", "beta", NOON + timedelta(seconds=10), NOON + timedelta(seconds=40)
    )
    # The holder claims again at once (a restart with the same id), which extends it.
    assert await claim(
        engine, "o1", "alpha", NOON + timedelta(seconds=10), NOON + timedelta(seconds=60)
    )
    assert not await claim(
        engine, "o1", "beta", NOON + timedelta(seconds=45), NOON + timedelta(seconds=90)
    )
    assert await lease_owner(engine, "o1") == "alpha"
    assert await claim(
        engine, "o1", "beta", NOON + timedelta(seconds=61), NOON + timedelta(seconds=90)
    )
    assert await lease_owner(engine, "o1") == "beta"
    assert not await claim(engine, "unknown", "beta", NOON, NOON + timedelta(seconds=30))


async def test_a_claim_waits_for_a_concurrent_one_and_then_loses(engine: AsyncEngine) -> None:
    await add(engine, placed("o1"))
    until = NOON + timedelta(seconds=30)
    async with SqlAlchemyUnitOfWork(engine).writing() as first:
        assert await first.leases.claim("o1", "alpha", NOON, until)
        second = asyncio.create_task(claim(engine, "o1", "beta", NOON, until))
        await asyncio.sleep(0.3)
        assert not second.done()  # held by the first transaction's lock
        await first.commit()
    async with asyncio.timeout(WAIT_S):
        assert not await second
    assert await lease_owner(engine, "o1") == "alpha"


async def test_of_many_concurrent_claims_exactly_one_wins(engine: AsyncEngine) -> None:
    await add(engine, placed("o1"))
    owners = [f"replica-{index}" for index in range(8)]
    async with asyncio.timeout(WAIT_S):
        results = await asyncio.gather(
            *(claim(engine, "o1", owner, NOON, NOON + timedelta(seconds=30)) for owner in owners)
        )
    assert results.count(True) == 1, results
    assert await lease_owner(engine, "o1") == owners[results.index(True)]


async def test_renew_extends_only_the_owners_leases_and_release_frees_them(
    engine: AsyncEngine,
) -> None:
    await add(engine, placed("o1"), placed("o2"))
    assert await claim(engine, "o1", "alpha", NOON, NOON + timedelta(seconds=30))
    assert await claim(engine, "o2", "beta", NOON, NOON + timedelta(seconds=30))
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        await uow.leases.renew(["o1", "o2"], "alpha", NOON + timedelta(seconds=90))
        await uow.leases.renew([], "alpha", NOON + timedelta(seconds=90))
        await uow.commit()
    a_minute_on = NOON + timedelta(seconds=60)
    assert await claimable(engine, "gamma", a_minute_on) == ["o2"]  # o1 was renewed, o2 not

    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        await uow.leases.release("o1", "beta")  # not beta's to give up
        await uow.commit()
    assert not await claim(engine, "o1", "beta", a_minute_on, a_minute_on)
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        await uow.leases.release("o1", "alpha")
        await uow.commit()
    assert await lease_owner(engine, "o1") is None
    assert await claim(engine, "o1", "beta", NOON + timedelta(seconds=1), a_minute_on)


# --- the checkout over the real unit of work ------------------------------------------------


class Gate:
    """Holds a call until the test opens it; ``arrived`` tells the test the call is out."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.opened = asyncio.Event()

    async def pass_through(self) -> None:
        self.arrived.set()
        await self.opened.wait()


class Gated:
    def __init__(self) -> None:
        self.gates: dict[str, Gate] = {}

    def hold(self, method: str) -> Gate:
        gate = self.gates[method] = Gate()
        return gate

    async def passing(self, method: str) -> None:
        gate = self.gates.get(method)
        if gate is not None:
            await gate.pass_through()


class Warehouse(Gated, Inventory):
    """Inventory with unlimited stock; a repeated request id gets the first answer."""

    def __init__(self) -> None:
        super().__init__()
        self.reservations: dict[str, Reservation] = {}
        self.committed: list[str] = []
        self.released: list[str] = []

    async def reserve(
        self, order_id: str, items: Sequence[LineItem], ttl: timedelta, request_id: str
    ) -> Reservation:
        await self.passing("reserve")
        return self.reservations.setdefault(request_id, Reservation(f"r-{order_id}", NOON + ttl))

    async def commit(self, reservation_id: str, request_id: str) -> None:
        await self.passing("commit")
        self.committed.append(reservation_id)

    async def release(self, reservation_id: str, request_id: str) -> None:
        await self.passing("release")
        self.released.append(reservation_id)


class CardDesk(Gated, Payments):
    """Payments that approve every card but the declined test card."""

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, tuple[str, str]] = {}  # payment id -> (order id, state)
        self.calls: list[str] = []

    async def authorize(
        self, order_id: str, user_id: str, amount: Money, payment_token: str, request_id: str
    ) -> str:
        await self.passing("authorize")
        payment_id = f"p-{order_id}"
        self.calls.append(f"authorize {payment_id} {amount}")
        if payment_token == DECLINED_CARD:
            self.states[payment_id] = (order_id, "DECLINED")
            raise FailedPrecondition(
                "the card was declined",
                reason="PAYMENT_DECLINED",
                metadata={"payment": f"payments/{payment_id}"},
            )
        self.states[payment_id] = (order_id, "AUTHORIZED")
        return payment_id

    def _set(self, method: str, payment_id: str, state: str) -> None:
        self.calls.append(f"{method} {payment_id}")
        self.states[payment_id] = (self.states[payment_id][0], state)

    async def capture(self, payment_id: str, request_id: str) -> None:
        self._set("capture", payment_id, "CAPTURED")

    async def void(self, payment_id: str, request_id: str) -> None:
        self._set("void", payment_id, "VOIDED")

    async def refund(self, payment_id: str, request_id: str) -> None:
        self._set("refund", payment_id, "REFUNDED")

    async def of_order(self, order_id: str) -> Sequence[PaymentSummary]:
        return [
            PaymentSummary(payment_id, state)
            for payment_id, (owner, state) in self.states.items()
            if owner == order_id
        ]


def checkout(engine: AsyncEngine, inventory: Inventory, payments: Payments) -> Checkout:
    return Checkout(
        lambda: SqlAlchemyUnitOfWork(engine),
        inventory,
        payments,
        lambda: NOON,
        retry=RetryPolicy(initial=0.01, maximum=0.02),
    )


async def drive(saga: Checkout, order_id: str) -> Order:
    async with asyncio.timeout(WAIT_S):
        done = await saga.drive(order_id)
    assert done is not None
    return done


async def test_the_checkout_completes_an_order_and_stores_every_step(engine: AsyncEngine) -> None:
    await add(engine, placed("o1"))
    inventory, payments = Warehouse(), CardDesk()
    saga = checkout(engine, inventory, payments)

    done = await drive(saga, "o1")
    assert done.state is OrderState.COMPLETED
    assert outcomes(done) == [
        (Step.PRICE_PRODUCTS, Outcome.SUCCEEDED),
        (Step.RESERVE_STOCK, Outcome.SUCCEEDED),
        (Step.AUTHORIZE_PAYMENT, Outcome.SUCCEEDED),
        (Step.CONFIRM_ORDER, Outcome.SUCCEEDED),
        (Step.CAPTURE_PAYMENT, Outcome.SUCCEEDED),
        (Step.COMMIT_RESERVATION, Outcome.SUCCEEDED),
    ]
    assert (done.reservation_id, done.payment_id) == ("r-o1", "p-o1")
    assert (done.payment_token, done.in_flight, done.undo) == ("", None, ())
    assert await stored(engine, "o1") == done
    assert len(await step_rows(engine, "o1")) == 6
    assert payments.calls == [f"authorize p-o1 {done.total}", "capture p-o1"]
    assert (inventory.committed, inventory.released) == (["r-o1"], [])

    # Driving a finished order again changes and calls nothing.
    assert await drive(saga, "o1") == done
    assert payments.calls == [f"authorize p-o1 {done.total}", "capture p-o1"]


async def test_the_checkout_cancels_a_declined_order_and_releases_its_stock(
    engine: AsyncEngine,
) -> None:
    await add(engine, placed("o1", card=DECLINED_CARD))
    inventory, payments = Warehouse(), CardDesk()

    done = await drive(checkout(engine, inventory, payments), "o1")
    assert (done.state, done.cancellation_reason) == (
        OrderState.CANCELLED,
        CancellationReason.PAYMENT_DECLINED,
    )
    assert outcomes(done) == [
        (Step.PRICE_PRODUCTS, Outcome.SUCCEEDED),
        (Step.RESERVE_STOCK, Outcome.SUCCEEDED),
        (Step.AUTHORIZE_PAYMENT, Outcome.FAILED),
        (Step.RESERVE_STOCK, Outcome.COMPENSATED),
    ]
    assert done.history[2].reason == "PAYMENT_DECLINED"
    assert done.payment_token == ""
    assert await stored(engine, "o1") == done
    assert inventory.released == ["r-o1"]
    assert inventory.committed == []
    assert payments.calls == [f"authorize p-o1 {done.total}"]  # nothing to void


async def cancel(engine: AsyncEngine, order_id: str) -> Order:
    return await usecases.cancel_order(
        SqlAlchemyUnitOfWork(engine), CancelOrder(order_id, "", None), NOON, restricted_to=None
    )


async def test_a_cancellation_during_the_reserve_call_keeps_the_reservation_and_releases_it(
    engine: AsyncEngine,
) -> None:
    await add(engine, placed("o1"))
    inventory, payments = Warehouse(), CardDesk()
    gate = inventory.hold("reserve")
    driving = asyncio.create_task(drive(checkout(engine, inventory, payments), "o1"))
    async with asyncio.timeout(WAIT_S):
        await gate.arrived.wait()

    cancelling = await cancel(engine, "o1")
    assert cancelling.state is OrderState.CANCELLING
    assert cancelling.undo == (Step.RESERVE_STOCK,)
    gate.opened.set()
    done = await driving

    assert (done.state, done.cancellation_reason) == (
        OrderState.CANCELLED,
        CancellationReason.CUSTOMER_REQUESTED,
    )
    assert done.reservation_id == "r-o1"  # the reserve's success was recorded, not lost
    assert outcomes(done) == [
        (Step.PRICE_PRODUCTS, Outcome.SUCCEEDED),
        (Step.RESERVE_STOCK, Outcome.SUCCEEDED),
        (Step.RESERVE_STOCK, Outcome.COMPENSATED),
    ]
    assert inventory.released == ["r-o1"]
    assert payments.calls == []  # the checkout never went on to the payment
    assert await stored(engine, "o1") == done


async def test_a_cancellation_during_the_authorize_call_voids_the_payment_and_releases_stock(
    engine: AsyncEngine,
) -> None:
    await add(engine, placed("o1"))
    inventory, payments = Warehouse(), CardDesk()
    gate = payments.hold("authorize")
    driving = asyncio.create_task(drive(checkout(engine, inventory, payments), "o1"))
    async with asyncio.timeout(WAIT_S):
        await gate.arrived.wait()

    cancelling = await cancel(engine, "o1")
    assert cancelling.undo == (Step.AUTHORIZE_PAYMENT, Step.RESERVE_STOCK)
    gate.opened.set()
    done = await driving

    assert (done.state, done.cancellation_reason) == (
        OrderState.CANCELLED,
        CancellationReason.CUSTOMER_REQUESTED,
    )
    assert (done.reservation_id, done.payment_id) == ("r-o1", "p-o1")
    assert outcomes(done) == [
        (Step.PRICE_PRODUCTS, Outcome.SUCCEEDED),
        (Step.RESERVE_STOCK, Outcome.SUCCEEDED),
        (Step.AUTHORIZE_PAYMENT, Outcome.SUCCEEDED),
        (Step.AUTHORIZE_PAYMENT, Outcome.COMPENSATED),
        (Step.RESERVE_STOCK, Outcome.COMPENSATED),
    ]
    assert payments.calls == [f"authorize p-o1 {done.total}", "void p-o1"]
    assert inventory.released == ["r-o1"]
    assert inventory.committed == []
    assert await stored(engine, "o1") == done
