"""Payments' unit of work: one database transaction on one connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payments.adapters.events import OUTBOX
from payments.adapters.orm import request_log
from payments.adapters.repository import SqlAlchemyPaymentRepository
from payments.domain.ports import UnitOfWork
from runtime import db
from runtime.outbox import OutboxWriter


class SqlAlchemyUnitOfWork(db.SqlAlchemyUnitOfWork, UnitOfWork):
    """Opens a connection and a transaction on enter; rolls back unless committed.

    Events emitted in it go to payments' outbox in the same transaction.
    """

    request_log = request_log

    def __init__(self, engine: AsyncEngine, outbox: OutboxWriter = OUTBOX) -> None:
        super().__init__(engine, outbox)

    def _bind(self, connection: AsyncConnection) -> None:
        self.payments = SqlAlchemyPaymentRepository(connection)
