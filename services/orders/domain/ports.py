"""What orders' use cases and checkout need from the outside world, as abstract classes.

The other services are reached through three ports. Their methods raise the
:mod:`runtime.errors` classes the peer answered with (``FailedPrecondition`` with reason
``INSUFFICIENT_STOCK``, ``Unavailable``, ...); the checkout decides from the class and
the reason whether a failure is final or worth retrying.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orders.domain.model import LineItem, Money, Order, OrderQuery, Page, PricedProduct
from runtime import unit_of_work


class OrderRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        """The order, or None; ``for_update`` locks it until the transaction ends."""

    @abc.abstractmethod
    async def add(self, order: Order) -> None:
        """Stores a new order."""

    @abc.abstractmethod
    async def update(self, order: Order, expected_revision: int) -> bool:
        """Saves ``order`` if its stored revision is still ``expected_revision``."""

    @abc.abstractmethod
    async def query(self, query: OrderQuery) -> Page:
        """A page of one user's orders, newest first (by create time, then id)."""


class CheckoutLeases(abc.ABC):
    """Which process drives which unfinished order, so two replicas never both do.

    A lease lasts until its expiry; the holder renews it while it works. A lease whose
    holder died is free again once it expires (at once for the same ``owner``).
    """

    @abc.abstractmethod
    async def claimable(self, owner: str, now: datetime, limit: int) -> Sequence[str]:
        """Ids of up to ``limit`` unfinished orders whose lease is free or ``owner``'s,
        least recently updated first."""

    @abc.abstractmethod
    async def claim(self, order_id: str, owner: str, now: datetime, until: datetime) -> bool:
        """Takes the order's lease until ``until`` if it is free or already ``owner``'s."""

    @abc.abstractmethod
    async def renew(self, order_ids: Sequence[str], owner: str, until: datetime) -> None:
        """Extends ``owner``'s leases on ``order_ids``."""

    @abc.abstractmethod
    async def release(self, order_id: str, owner: str) -> None:
        """Gives the lease up."""


class UnitOfWork(unit_of_work.UnitOfWork):
    """One transaction over the orders repositories; ``commit`` makes the changes durable."""

    orders: OrderRepository
    leases: CheckoutLeases


class ProductCatalog(abc.ABC):
    @abc.abstractmethod
    async def price(self, product_ids: Sequence[str]) -> Sequence[PricedProduct]:
        """Every product with its current price, in the order asked.

        Raises:
            ProductsNotFound: naming every missing product.
            CatalogUnavailable: the catalog did not answer.
        """


@dataclass(frozen=True)
class Reservation:
    id: str
    expire_time: datetime


class Inventory(abc.ABC):
    @abc.abstractmethod
    async def reserve(
        self, order_id: str, items: Sequence[LineItem], ttl: timedelta, request_id: str
    ) -> Reservation:
        """Reserves every item for the order, all or nothing."""

    @abc.abstractmethod
    async def commit(self, reservation_id: str, request_id: str) -> None: ...

    @abc.abstractmethod
    async def release(self, reservation_id: str, request_id: str) -> None: ...


@dataclass(frozen=True)
class PaymentSummary:
    id: str
    #: The payment's state, as the contract's value name without prefix: AUTHORIZED,
    #: CAPTURED, PARTIALLY_REFUNDED, VOIDED, REFUNDED, DECLINED or FAILED.
    state: str


class Payments(abc.ABC):
    @abc.abstractmethod
    async def authorize(
        self, order_id: str, user_id: str, amount: Money, payment_token: str, request_id: str
    ) -> str:
        """Authorizes ``amount`` on the card; returns the payment id."""

    @abc.abstractmethod
    async def capture(self, payment_id: str, request_id: str) -> None: ...

    @abc.abstractmethod
    async def void(self, payment_id: str, request_id: str) -> None: ...

    @abc.abstractmethod
    async def refund(self, payment_id: str, request_id: str) -> None:
        """Refunds everything captured and not yet refunded."""

    @abc.abstractmethod
    async def of_order(self, order_id: str) -> Sequence[PaymentSummary]:
        """Every payment made for the order, whatever its state."""
