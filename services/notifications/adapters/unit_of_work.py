"""Notifications' unit of work: one database transaction on one connection."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notifications.adapters import orm
from notifications.adapters.events import OUTBOX
from notifications.adapters.repository import (
    SqlAlchemyNotificationRepository,
    SqlAlchemyUserDirectory,
)
from notifications.domain.ports import UnitOfWork
from runtime import db
from runtime.outbox import OutboxWriter


class SqlAlchemyUnitOfWork(db.SqlAlchemyUnitOfWork, UnitOfWork):
    """Opens a connection and a transaction on enter; rolls back unless committed.

    Events emitted in it go to notifications' outbox in the same transaction; the inbox
    of the event consumers is in the same database. ``on_commit`` runs after each commit
    (the sender is woken that way when a handler created a notification).
    """

    request_log = orm.request_log
    inbox_table = orm.inbox

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: OutboxWriter = OUTBOX,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(engine, outbox)
        self._on_commit = on_commit

    def _bind(self, connection: AsyncConnection) -> None:
        self.notifications = SqlAlchemyNotificationRepository(connection)
        self.users = SqlAlchemyUserDirectory(connection)

    async def commit(self) -> None:
        await super().commit()
        if self._on_commit is not None:
            self._on_commit()
