"""The catalog's unit of work: one database transaction on one connection."""

from __future__ import annotations

from types import TracebackType

from runtime import db
from runtime.db import SqlAlchemyRequestLog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from catalog.adapters.orm import request_log
from catalog.adapters.repository import SqlAlchemyCategoryRepository, SqlAlchemyProductRepository
from catalog.domain.ports import UnitOfWork


class SqlAlchemyUnitOfWork(UnitOfWork):
    """Opens a connection and a transaction on enter; rolls back unless committed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> UnitOfWork:
        self._connection = await db.begin(self._engine, writes=self.writes)
        self.categories = SqlAlchemyCategoryRepository(self._connection)
        self.products = SqlAlchemyProductRepository(self._connection)
        self.requests = SqlAlchemyRequestLog(self._connection, request_log)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            try:
                await self.rollback()
            finally:
                await self._connection.close()
                self._connection = None

    async def commit(self) -> None:
        assert self._connection is not None, "commit outside of `async with`"
        await self._connection.commit()

    async def rollback(self) -> None:
        if self._connection is not None and self._connection.in_transaction():
            await self._connection.rollback()
