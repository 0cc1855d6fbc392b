"""Orders' unit of work: one database transaction on one connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from orders.adapters.events import OUTBOX
from orders.adapters.orm import request_log
from orders.adapters.repository import SqlAlchemyCheckoutLeases, SqlAlchemyOrderRepository
from orders.domain.ports import UnitOfWork
from runtime import db
from runtime.outbox import OutboxWriter


class SqlAlchemyUnitOfWork(db.SqlAlchemyUnitOfWork, UnitOfWork):
    """Opens a connection and a transaction on enter; rolls back unless committed.

    Events emitted in it go to orders' outbox in the same transaction.
    """

    request_log = request_log

    def __init__(self, engine: AsyncEngine, outbox: OutboxWriter = OUTBOX) -> None:
        super().__init__(engine, outbox)

    def _bind(self, connection: AsyncConnection) -> None:
        self.orders = SqlAlchemyOrderRepository(connection)
        self.leases = SqlAlchemyCheckoutLeases(connection)
