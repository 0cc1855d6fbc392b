"""Orders' unit of work: one database transaction on one connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from orders.adapters.orm import request_log
from orders.adapters.repository import SqlAlchemyCheckoutLeases, SqlAlchemyOrderRepository
from orders.domain.ports import UnitOfWork
from runtime import db


class SqlAlchemyUnitOfWork(db.SqlAlchemyUnitOfWork, UnitOfWork):
    """Opens a connection and a transaction on enter; rolls back unless committed."""

    request_log = request_log

    def _bind(self, connection: AsyncConnection) -> None:
        self.orders = SqlAlchemyOrderRepository(connection)
        self.leases = SqlAlchemyCheckoutLeases(connection)
