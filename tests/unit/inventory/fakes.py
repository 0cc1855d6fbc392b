"""In-memory fakes of inventory's ports, for unit tests of the use cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from inventory.domain.errors import CatalogUnavailable, ReservationAlreadyExists
from inventory.domain.model import LIVE_STATES, Reservation, ReservationState, Stock
from inventory.domain.ports import (
    ProductCatalog,
    ReservationRepository,
    StockRepository,
    UnitOfWork,
)
from runtime.idempotency import RecordedRequest
from tests.support import fakes


@dataclass
class FakeStore:
    """What a committed "database" holds."""

    stocks: dict[str, Stock] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    requests: dict[str, RecordedRequest] = field(default_factory=dict)


class FakeStockRepository(StockRepository):
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, product_id: str, *, lock: bool = False) -> Stock | None:
        return self._store.stocks.get(product_id)

    async def add(self, stock: Stock) -> bool:
        if stock.product_id in self._store.stocks:
            return False
        self._store.stocks[stock.product_id] = stock
        return True

    async def set_on_hand(
        self, product_id: str, on_hand: int, now: datetime, expected_revision: int | None
    ) -> bool:
        current = self._store.stocks.get(product_id)
        if current is None or current.reserved > on_hand:
            return False
        if expected_revision is not None and current.revision != expected_revision:
            return False
        self._change(current, on_hand=on_hand, now=now)
        return True

    async def reserve(self, product_id: str, quantity: int, now: datetime) -> Stock | None:
        current = self._store.stocks.get(product_id)
        if current is None or current.available < quantity:
            return None
        return self._change(current, reserved=current.reserved + quantity, now=now)

    async def unreserve(self, product_id: str, quantity: int, now: datetime) -> Stock:
        current = self._store.stocks[product_id]
        assert current.reserved >= quantity
        return self._change(current, reserved=current.reserved - quantity, now=now)

    async def consume(self, product_id: str, quantity: int, now: datetime) -> Stock:
        current = self._store.stocks[product_id]
        assert current.reserved >= quantity
        return self._change(
            current,
            on_hand=current.on_hand - quantity,
            reserved=current.reserved - quantity,
            now=now,
        )

    def _change(
        self,
        current: Stock,
        *,
        now: datetime,
        on_hand: int | None = None,
        reserved: int | None = None,
    ) -> Stock:
        changed = replace(
            current,
            on_hand=current.on_hand if on_hand is None else on_hand,
            reserved=current.reserved if reserved is None else reserved,
            update_time=now,
            revision=current.revision + 1,
        )
        self._store.stocks[current.product_id] = changed
        return changed


class FakeReservationRepository(ReservationRepository):
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, reservation_id: str, *, lock: bool = False) -> Reservation | None:
        return self._store.reservations.get(reservation_id)

    async def find_live(self, order_id: str) -> Reservation | None:
        for reservation in self._store.reservations.values():
            if reservation.order_id == order_id and reservation.state in LIVE_STATES:
                return reservation
        return None

    async def add(self, reservation: Reservation) -> None:
        live = await self.find_live(reservation.order_id)
        if live is not None:
            raise ReservationAlreadyExists(live.name, live.order)
        self._store.reservations[reservation.id] = reservation

    async def transition(
        self,
        reservation_id: str,
        from_state: ReservationState,
        to_state: ReservationState,
        now: datetime,
    ) -> bool:
        current = self._store.reservations.get(reservation_id)
        if current is None or current.state is not from_state:
            return False
        self._store.reservations[reservation_id] = current.moved_to(to_state, now)
        return True

    async def overdue(self, now: datetime, limit: int) -> Sequence[str]:
        found = sorted(
            (r for r in self._store.reservations.values() if r.is_overdue(now)),
            key=lambda r: (r.expire_time, r.id),
        )
        return [r.id for r in found[:limit]]


class FakeUnitOfWork(fakes.FakeUnitOfWork[FakeStore], UnitOfWork):
    """Works on a copy of the store; commit publishes the copy, so rollback really discards."""

    def _bind(self, working: FakeStore) -> None:
        self.stocks = FakeStockRepository(working)
        self.reservations = FakeReservationRepository(working)


class FakeProductCatalog(ProductCatalog):
    """A catalog holding ``products``; ``down`` makes every question fail as unreachable."""

    def __init__(self, *products: str) -> None:
        self.products = set(products)
        self.down = False
        self.questions = 0

    async def exists(self, product_id: str) -> bool:
        self.questions += 1
        if self.down:
            raise CatalogUnavailable(f"products/{product_id}")
        return product_id in self.products
