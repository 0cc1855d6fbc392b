"""Identity's unit of work: one database transaction on one connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from identity.adapters.orm import request_log
from identity.adapters.repository import (
    SqlAlchemyRefreshTokenRepository,
    SqlAlchemySigningKeyRepository,
    SqlAlchemyUserRepository,
)
from identity.domain.ports import UnitOfWork
from runtime import db


class SqlAlchemyUnitOfWork(db.SqlAlchemyUnitOfWork, UnitOfWork):
    """Opens a connection and a transaction on enter; rolls back unless committed."""

    request_log = request_log

    def _bind(self, connection: AsyncConnection) -> None:
        self.users = SqlAlchemyUserRepository(connection)
        self.tokens = SqlAlchemyRefreshTokenRepository(connection)
        self.keys = SqlAlchemySigningKeyRepository(connection)
