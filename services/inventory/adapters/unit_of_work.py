"""Inventory's unit of work: one database transaction on one connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from inventory.adapters.events import OUTBOX
from inventory.adapters.orm import inbox, request_log
from inventory.adapters.repository import SqlAlchemyReservationRepository, SqlAlchemyStockRepository
from inventory.domain.ports import UnitOfWork
from runtime import db
from runtime.outbox import OutboxWriter


class SqlAlchemyUnitOfWork(db.SqlAlchemyUnitOfWork, UnitOfWork):
    """Opens a connection and a transaction on enter; rolls back unless committed.

    Events emitted in it go to inventory's outbox in the same transaction.
    """

    request_log = request_log
    inbox_table = inbox

    def __init__(self, engine: AsyncEngine, outbox: OutboxWriter = OUTBOX) -> None:
        super().__init__(engine, outbox)

    def _bind(self, connection: AsyncConnection) -> None:
        self.stocks = SqlAlchemyStockRepository(connection)
        self.reservations = SqlAlchemyReservationRepository(connection)
