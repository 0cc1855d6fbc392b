"""What the payments use cases need from the outside world, as abstract classes."""

from __future__ import annotations

import abc

from payments.domain.model import Authorization, Money, Page, Payment, PaymentQuery
from runtime import unit_of_work


class PaymentRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        """The payment, or None. ``for_update`` locks it until the transaction ends, so
        concurrent writers of the same payment take turns."""

    @abc.abstractmethod
    async def add(self, payment: Payment) -> None:
        """Stores a new payment."""

    @abc.abstractmethod
    async def update(self, payment: Payment, expected_revision: int) -> bool:
        """Saves ``payment`` if its stored revision is still ``expected_revision``."""

    @abc.abstractmethod
    async def query(self, query: PaymentQuery) -> Page:
        """A page of payments, newest first (by create time, then id)."""


class UnitOfWork(unit_of_work.UnitOfWork):
    """One transaction over the payments repositories; ``commit`` makes the changes durable."""

    payments: PaymentRepository


class CardProcessor(abc.ABC):
    """The card processor: holds, charges, releases and refunds money on cards.

    Every method either answers or raises :class:`~payments.domain.errors.ProcessorUnavailable`
    (cannot be reached) or :class:`~payments.domain.errors.ProcessorTimeout` (no answer in
    time); an implementation bounds each call by its own timeout.
    """

    @abc.abstractmethod
    async def authorize(self, payment_token: str, amount: Money) -> Authorization:
        """Asks for a hold of ``amount``; a decline is an answer, not an error.

        Raises:
            InvalidPaymentToken: the token is not one the processor can use.
        """

    @abc.abstractmethod
    async def capture(self, reference: str, amount: Money) -> None:
        """Charges the hold ``reference`` for ``amount``."""

    @abc.abstractmethod
    async def void(self, reference: str) -> None:
        """Releases the hold ``reference``."""

    @abc.abstractmethod
    async def refund(self, reference: str, amount: Money) -> None:
        """Gives back ``amount`` of what was charged on ``reference``."""
