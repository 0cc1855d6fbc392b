"""In-memory fakes of orders' ports, and a shop that wires them to a checkout."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from orders.domain.checkout import Checkout, Hook, RetryPolicy, no_hook
from orders.domain.errors import CatalogUnavailable, ProductsNotFound
from orders.domain.model import (
    CancellationReason,
    LineItem,
    Money,
    Order,
    OrderQuery,
    OrderState,
    Page,
    PricedProduct,
)
from orders.domain.ports import (
    CheckoutLeases,
    Inventory,
    OrderRepository,
    Payments,
    PaymentSummary,
    ProductCatalog,
    Reservation,
    UnitOfWork,
)
from runtime.errors import AgoraError, FailedPrecondition, NotFound
from runtime.idempotency import RecordedRequest
from tests.support import fakes

T = TypeVar("T")

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
#: More failures than any checkout lives through: the call never succeeds.
ALWAYS = 1_000_000
FAST = RetryPolicy(initial=0.001, maximum=0.002)
#: The request id purpose of each peer method; void and refund add the payment id.
PURPOSES = dict(reserve="reserve-stock", commit="commit-reservation", release="release-stock")
PURPOSES |= dict(authorize="authorize-payment", capture="capture-payment")
MAX = (datetime.max.replace(tzinfo=UTC), "")
TEAPOT = PricedProduct("teapot", "Teapot", Money.of("EUR", 12, 500_000_000))


@dataclass
class FakeStore:
    """What a committed "database" holds."""

    orders: dict[str, Order] = field(default_factory=dict)
    #: (owner, until) of each leased order.
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    requests: dict[str, RecordedRequest] = field(default_factory=dict)


class FakeOrderRepository(OrderRepository):
    """``update`` also checks the revision committed by others meanwhile, as a conditional
    UPDATE in a database does."""

    def __init__(self, store: FakeStore, committed: FakeStore) -> None:
        self._store = store
        self._committed = committed

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        return self._store.orders.get(order_id)

    async def add(self, order: Order) -> None:
        assert order.id not in self._store.orders
        self._store.orders[order.id] = order

    async def update(self, order: Order, expected_revision: int) -> bool:
        current = self._store.orders.get(order.id)
        latest = self._committed.orders.get(order.id)
        if current is None or current.revision != expected_revision:
            return False
        if latest is not None and latest.revision != expected_revision:
            return False
        self._store.orders[order.id] = order
        return True

    async def query(self, query: OrderQuery) -> Page:
        def matches(o: Order) -> bool:
            return o.user_id == query.user_id and query.state in (None, o.state)

        newest = sorted(self._store.orders.values(), key=lambda o: (o.create_time, o.id))[::-1]
        found = [o for o in newest if matches(o) and (o.create_time, o.id) < (query.after or MAX)]
        items = found[: query.page_size]
        more = len(found) > query.page_size
        return Page(items, (items[-1].create_time, items[-1].id) if more else None)


class FakeCheckoutLeases(CheckoutLeases):
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    def _free(self, order_id: str, owner: str, now: datetime) -> bool:
        holder, until = self._store.leases.get(order_id, (owner, now))
        return holder == owner or until < now

    async def claimable(self, owner: str, now: datetime, limit: int) -> Sequence[str]:
        unfinished = sorted(
            (o for o in self._store.orders.values() if not o.state.is_final),
            key=lambda o: o.update_time,
        )
        return [o.id for o in unfinished if self._free(o.id, owner, now)][:limit]

    async def claim(self, order_id: str, owner: str, now: datetime, until: datetime) -> bool:
        if order_id not in self._store.orders or not self._free(order_id, owner, now):
            return False
        self._store.leases[order_id] = (owner, until)
        return True

    async def renew(self, order_ids: Sequence[str], owner: str, until: datetime) -> None:
        for order_id in order_ids:
            if self._store.leases.get(order_id, ("",))[0] == owner:
                self._store.leases[order_id] = (owner, until)

    async def release(self, order_id: str, owner: str) -> None:
        if self._store.leases.get(order_id, ("",))[0] == owner:
            del self._store.leases[order_id]


class FakeUnitOfWork(fakes.FakeUnitOfWork[FakeStore], UnitOfWork):
    def _bind(self, working: FakeStore) -> None:
        self.orders = FakeOrderRepository(working, self._committed)
        self.leases = FakeCheckoutLeases(working)


class FakeClock:
    """The time the test says it is."""

    def __init__(self, now: datetime = NOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass(frozen=True)
class Call:
    method: str
    #: The order id of reserve, authorize and of_order; the reservation or payment id else.
    target: str
    request_id: str


@dataclass
class _Failure:
    error: AgoraError
    times: int
    took: bool


class Scripted:
    """A peer that records every call and fails the calls the test tells it to."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._failures: dict[str, list[_Failure]] = {}

    def fail(self, method: str, error: AgoraError, times: int = 1, *, took: bool = False) -> None:
        """Makes the next ``times`` calls of ``method`` (after earlier scripted failures)
        raise ``error``; with ``took`` each takes effect first, as when the answer is lost."""
        self._failures.setdefault(method, []).append(_Failure(error, times, took))

    def heal(self) -> None:
        """Lets every later call succeed."""
        self._failures.clear()

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def _run(self, method: str, target: str, request_id: str, effect: Callable[[], T]) -> T:
        self.calls.append(Call(method, target, request_id))
        failure = next((f for f in self._failures.get(method, []) if f.times > 0), None)
        if failure is None:
            return effect()
        failure.times -= 1
        if failure.took:
            effect()
        raise failure.error


@dataclass
class FakeReservation:
    id: str
    items: tuple[LineItem, ...]
    expire_time: datetime
    state: str = "ACTIVE"


class FakeInventory(Scripted, Inventory):
    """Reservations by id; a repeated reserve returns the reservation its request id made."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self._clock = clock
        self.reservations: dict[str, FakeReservation] = {}
        self._made_by: dict[str, str] = {}

    async def reserve(
        self, order_id: str, items: Sequence[LineItem], ttl: timedelta, request_id: str
    ) -> Reservation:
        def take() -> Reservation:
            if request_id not in self._made_by:
                made = FakeReservation(
                    f"r{len(self.reservations) + 1}", tuple(items), self._clock() + ttl
                )
                self.reservations[made.id] = self.reservations.get(made.id, made)
                self._made_by[request_id] = made.id
            reservation = self.reservations[self._made_by[request_id]]
            return Reservation(reservation.id, reservation.expire_time)

        return self._run("reserve", order_id, request_id, take)

    async def commit(self, reservation_id: str, request_id: str) -> None:
        self._end("commit", reservation_id, request_id, "COMMITTED")

    async def release(self, reservation_id: str, request_id: str) -> None:
        self._end("release", reservation_id, request_id, "RELEASED")

    def _end(self, method: str, reservation_id: str, request_id: str, state: str) -> None:
        def end() -> None:
            reservation = self.reservations.get(reservation_id)
            if reservation is None:
                raise NotFound(f"no reservations/{reservation_id}", reason="RESERVATION_NOT_FOUND")
            if reservation.state not in ("ACTIVE", state):
                raise FailedPrecondition("finished", reason=f"RESERVATION_{reservation.state}")
            reservation.state = state

        self._run(method, reservation_id, request_id, end)


@dataclass
class FakePayment:
    id: str
    order_id: str
    amount: Money
    payment_token: str
    state: str = "AUTHORIZED"


class FakePayments(Scripted, Payments):
    """Payments by id; a repeated authorize returns the payment its request id made."""

    def __init__(self) -> None:
        super().__init__()
        self.payments: dict[str, FakePayment] = {}
        self._made_by: dict[str, str] = {}

    async def authorize(
        self, order_id: str, user_id: str, amount: Money, payment_token: str, request_id: str
    ) -> str:
        def take() -> str:
            if request_id not in self._made_by:
                made = FakePayment(f"p{len(self.payments) + 1}", order_id, amount, payment_token)
                self.payments[made.id] = made
                self._made_by[request_id] = made.id
            return self._made_by[request_id]

        return self._run("authorize", order_id, request_id, take)

    async def capture(self, payment_id: str, request_id: str) -> None:
        self._move("capture", payment_id, request_id, "AUTHORIZED", "CAPTURED")

    async def void(self, payment_id: str, request_id: str) -> None:
        self._move("void", payment_id, request_id, "AUTHORIZED", "VOIDED")

    async def refund(self, payment_id: str, request_id: str) -> None:
        self._move("refund", payment_id, request_id, "CAPTURED", "REFUNDED")

    async def of_order(self, order_id: str) -> Sequence[PaymentSummary]:
        found = [
            PaymentSummary(p.id, p.state) for p in self.payments.values() if p.order_id == order_id
        ]
        return self._run("of_order", order_id, "", lambda: found)

    def live(self) -> list[FakePayment]:
        """The payments that hold or took money."""
        return [p for p in self.payments.values() if p.state in ("AUTHORIZED", "CAPTURED")]

    def _move(self, method: str, payment_id: str, request_id: str, before: str, after: str) -> None:
        def move() -> None:
            payment = self.payments.get(payment_id)
            if payment is None:
                raise NotFound(f"no payments/{payment_id}", reason="PAYMENT_NOT_FOUND")
            if payment.state not in (before, after):
                raise FailedPrecondition(f"payment is {payment.state}", reason="PAYMENT_STATE")
            payment.state = after

        self._run(method, payment_id, request_id, move)


class FakeCatalog(ProductCatalog):
    """Prices the products it holds; counts its calls; ``down`` makes it unavailable."""

    def __init__(self, *products: PricedProduct) -> None:
        self.products = {product.product_id: product for product in products}
        self.calls = 0
        self.down = False

    async def price(self, product_ids: Sequence[str]) -> Sequence[PricedProduct]:
        self.calls += 1
        if self.down:
            raise CatalogUnavailable()
        missing = [f"products/{i}" for i in product_ids if i not in self.products]
        if missing:
            raise ProductsNotFound(missing)
        return [self.products[i] for i in product_ids]


def ended(order: Order) -> tuple[OrderState, CancellationReason | None]:
    """How an order ended: its state and cancellation reason."""
    return order.state, order.cancellation_reason


class Shop:
    """Orders' world in memory: the store, the clock, the peers, and checkouts over them."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.clock = FakeClock()
        self.inventory = FakeInventory(self.clock)
        self.payments = FakePayments()

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store)

    def checkout(self, hook: Hook = no_hook) -> Checkout:
        return Checkout(self.uow, self.inventory, self.payments, self.clock, retry=FAST, hook=hook)

    async def drive(self, hook: Hook = no_hook, order_id: str = "o1") -> Order:
        """Runs the order's checkout to its end with a fresh checkout, as after a restart."""
        order = await self.checkout(hook).drive(order_id)
        assert order is not None
        return order

    def place(self, order_id: str = "o1", token: str = "tok_visa") -> Order:
        """Stores a new order for two teapots, as PlaceOrder would."""
        order = Order.place(
            order_id, "u1", [LineItem("teapot", 2)], [TEAPOT], token, TTL, self.clock()
        )
        self.store.orders[order.id] = order
        return order

    def order(self, order_id: str = "o1") -> Order:
        return self.store.orders[order_id]

    def assert_request_ids(self, order: Order) -> None:
        """Every call to a peer carried the one request id of its step (and target)."""
        for call in self.inventory.calls + self.payments.calls:
            if call.method != "of_order":
                purpose = PURPOSES.get(call.method, f"{call.method}/{call.target}")
                assert call.request_id == order.request_id(purpose), call
