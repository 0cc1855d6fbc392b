"""Payments' unit of work: one database transaction on one connection."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payments.adapters.orm import request_log
from payments.adapters.repository import SqlAlchemyPaymentRepository
from payments.domain.ports import UnitOfWork
from runtime import db
from runtime.db import SqlAlchemyRequestLog


class SqlAlchemyUnitOfWork(UnitOfWork):
    """Opens a connection and a transaction on enter; rolls back unless committed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> UnitOfWork:
        try:
            self._connection = await db.begin(self._engine, writes=self.writes)
        except Exception as error:
            raise (db.as_unavailable(error) or error) from error
        self.payments = SqlAlchemyPaymentRepository(self._connection)
        self.requests = SqlAlchemyRequestLog(self._connection, request_log)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                if connection.in_transaction():
                    await connection.rollback()
            except Exception:
                if exc is None:
                    raise
                # Already failing (often because the database went away): keep that error.
            finally:
                await connection.close()
        # A lost database surfaces as UNAVAILABLE (retryable), not as an internal error.
        unavailable = db.as_unavailable(exc) if exc is not None else None
        if unavailable is not None:
            raise unavailable from exc

    async def commit(self) -> None:
        assert self._connection is not None, "commit outside of `async with`"
        await self._connection.commit()

    async def rollback(self) -> None:
        if self._connection is not None and self._connection.in_transaction():
            await self._connection.rollback()
