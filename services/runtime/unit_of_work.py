"""The unit-of-work port the services share: one transaction, rolled back unless committed.

Plain Python (no SQLAlchemy), so domains may import it. A service's port subclasses it and
declares only its repositories; :class:`runtime.db.SqlAlchemyUnitOfWork` implements it::

    class UnitOfWork(runtime.unit_of_work.UnitOfWork):
        products: ProductRepository

    async with uow.writing() as tx:
        await tx.products.add(product)
        tx.emit(ProductCreatedEvent(product))  # written to the outbox by commit()
        await tx.commit()
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

from runtime.idempotency import RequestLog
from runtime.inbox import Inbox


class UnitOfWork(abc.ABC):
    """One transaction over a service's repositories; ``commit`` makes the changes durable."""

    requests: RequestLog
    #: Events already handled; only services that consume events have one.
    inbox: Inbox
    #: Whether the transaction will write; set through :meth:`writing` before entering.
    writes: bool = False

    def writing(self) -> Self:
        """Declares that this transaction writes, so it can take its locks up front."""
        self.writes = True
        return self

    def emit(self, event: object) -> None:
        """Adds a domain event, published if (and only if) this transaction commits.

        The event is a plain domain object; the service's outbox writer turns it into
        contract messages at commit (see :mod:`runtime.outbox`).
        """
        self.emitted.append(event)

    @property
    def emitted(self) -> list[object]:
        """The events emitted in this transaction so far."""
        try:
            return self._emitted
        except AttributeError:
            self._emitted: list[object] = []
            return self._emitted

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...
