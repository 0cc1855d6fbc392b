"""What inventory's use cases need from the outside world, as abstract classes."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from inventory.domain.model import Reservation, ReservationState, Stock
from runtime import unit_of_work


class StockRepository(abc.ABC):
    """Stock rows. Every change is one conditional statement, so concurrent writers on any
    database can never take ``reserved`` below 0 or above ``on_hand``."""

    @abc.abstractmethod
    async def get(self, product_id: str, *, lock: bool = False) -> Stock | None:
        """The stock, or None; ``lock`` holds it against other writers until the
        transaction ends."""

    @abc.abstractmethod
    async def add(self, stock: Stock) -> bool:
        """Stores a new stock; False if the product already has one."""

    @abc.abstractmethod
    async def set_on_hand(
        self, product_id: str, on_hand: int, now: datetime, expected_revision: int | None
    ) -> bool:
        """Sets ``on_hand`` if the stock exists, holds at most ``on_hand`` reserved units
        and (when given) still has ``expected_revision``."""

    @abc.abstractmethod
    async def reserve(self, product_id: str, quantity: int, now: datetime) -> Stock | None:
        """Adds ``quantity`` to ``reserved`` if at least that many units are available;
        the stock after the change, or None if it was not made."""

    @abc.abstractmethod
    async def unreserve(self, product_id: str, quantity: int, now: datetime) -> Stock:
        """Returns ``quantity`` reserved units to available (a release or an expiry); the
        stock after the change."""

    @abc.abstractmethod
    async def consume(self, product_id: str, quantity: int, now: datetime) -> Stock:
        """Takes ``quantity`` reserved units out of ``on_hand`` and ``reserved`` (a commit);
        the stock after the change."""


class ReservationRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, reservation_id: str, *, lock: bool = False) -> Reservation | None:
        """The reservation; ``lock`` holds it against other writers until the transaction ends."""

    @abc.abstractmethod
    async def find_live(self, order_id: str) -> Reservation | None:
        """The order's reservation that is active or committed, if any."""

    @abc.abstractmethod
    async def add(self, reservation: Reservation) -> None:
        """Stores a new reservation; raises ReservationAlreadyExists if its order already
        holds a live one."""

    @abc.abstractmethod
    async def transition(
        self,
        reservation_id: str,
        from_state: ReservationState,
        to_state: ReservationState,
        now: datetime,
    ) -> bool:
        """Moves the reservation to ``to_state`` if it is still in ``from_state``."""

    @abc.abstractmethod
    async def overdue(self, now: datetime, limit: int) -> Sequence[str]:
        """Ids of up to ``limit`` active reservations whose expiry has passed, oldest first."""


class ProductCatalog(abc.ABC):
    """The catalog service, asked whether products exist."""

    @abc.abstractmethod
    async def exists(self, product_id: str) -> bool:
        """True if the catalog has the product; raises CatalogUnavailable if it cannot tell."""


class UnitOfWork(unit_of_work.UnitOfWork):
    """One transaction over inventory's repositories; ``commit`` makes the changes durable."""

    stocks: StockRepository
    reservations: ReservationRepository
