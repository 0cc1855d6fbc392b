"""Identity's unit of work: one database transaction on one connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.adapters.events import OUTBOX
from identity.adapters.orm import request_log
from identity.adapters.repository import (
    SqlAlchemyRefreshTokenRepository,
    SqlAlchemySigningKeyRepository,
    SqlAlchemyUserRepository,
)
from identity.domain.ports import UnitOfWork
from runtime import db
from runtime.outbox import OutboxWriter


class SqlAlchemyUnitOfWork(db.SqlAlchemyUnitOfWork, UnitOfWork):
    """Opens a connection and a transaction on enter; rolls back unless committed.

    Events emitted in it go to identity's outbox in the same transaction.
    """

    request_log = request_log

    def __init__(self, engine: AsyncEngine, outbox: OutboxWriter = OUTBOX) -> None:
        super().__init__(engine, outbox)

    def _bind(self, connection: AsyncConnection) -> None:
        self.users = SqlAlchemyUserRepository(connection)
        self.tokens = SqlAlchemyRefreshTokenRepository(connection)
        self.keys = SqlAlchemySigningKeyRepository(connection)
