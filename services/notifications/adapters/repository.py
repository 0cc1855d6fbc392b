"""SQLAlchemy (Core) implementations of the notification repository and the user directory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.adapters.orm import notifications, users
from notifications.domain.model import (
    Channel,
    Contact,
    EventType,
    Notification,
    NotificationQuery,
    NotificationState,
    Page,
)
from notifications.domain.ports import NotificationRepository, UserDirectory

# Built once: building a statement and its cache key costs more than running it on SQLite.
_BY_ID = sa.select(notifications).where(notifications.c.id == sa.bindparam("notification_id"))
_BY_EVENT = sa.select(notifications).where(notifications.c.event_id == sa.bindparam("event_id"))
_USER = sa.select(users).where(users.c.id == sa.bindparam("user_id"))


class SqlAlchemyNotificationRepository(NotificationRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, notification_id: str) -> Notification | None:
        row = (await self._connection.execute(_BY_ID, {"notification_id": notification_id})).first()
        return None if row is None else _notification(row)

    async def get_by_event(self, event_id: str) -> Notification | None:
        row = (await self._connection.execute(_BY_EVENT, {"event_id": event_id})).first()
        return None if row is None else _notification(row)

    async def add(self, notification: Notification) -> None:
        await self._connection.execute(
            sa.insert(notifications).values(id=notification.id, **_values(notification))
        )

    async def claim(self, notification: Notification, until: datetime) -> bool:
        result = await self._connection.execute(
            sa.update(notifications)
            .where(
                notifications.c.id == notification.id,
                notifications.c.state == NotificationState.PENDING.value,
                notifications.c.attempt_count == notification.attempt_count,
                notifications.c.next_attempt_time == notification.next_attempt_time,
            )
            .values(next_attempt_time=until)
        )
        return bool(result.rowcount)

    async def update(self, notification: Notification, expected_attempt_count: int) -> bool:
        result = await self._connection.execute(
            sa.update(notifications)
            .where(
                notifications.c.id == notification.id,
                notifications.c.state == NotificationState.PENDING.value,
                notifications.c.attempt_count == expected_attempt_count,
            )
            .values(**_values(notification))
        )
        return bool(result.rowcount)

    async def due(self, now: datetime, limit: int) -> list[Notification]:
        statement = (
            sa.select(notifications)
            .where(
                notifications.c.state == NotificationState.PENDING.value,
                notifications.c.next_attempt_time <= now,
            )
            .order_by(notifications.c.next_attempt_time, notifications.c.id)
            .limit(limit)
        )
        return [_notification(row) for row in await self._connection.execute(statement)]

    async def query(self, query: NotificationQuery) -> Page:
        table = notifications
        statement = (
            sa.select(table)
            .order_by(table.c.create_time.desc(), table.c.id.desc())
            .limit(query.page_size + 1)
        )
        if query.recipient_id is not None:
            statement = statement.where(table.c.recipient_id == query.recipient_id)
        if query.event_type is not None:
            statement = statement.where(table.c.event_type == query.event_type.value)
        if query.after is not None:
            after_time, after_id = query.after
            statement = statement.where(
                sa.or_(
                    table.c.create_time < after_time,
                    sa.and_(table.c.create_time == after_time, table.c.id < after_id),
                )
            )
        rows = (await self._connection.execute(statement)).all()
        items = [_notification(row) for row in rows[: query.page_size]]
        more = len(rows) > query.page_size
        return Page(items, (items[-1].create_time, items[-1].id) if more else None)


class SqlAlchemyUserDirectory(UserDirectory):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, user_id: str) -> Contact | None:
        row = (await self._connection.execute(_USER, {"user_id": user_id})).first()
        return None if row is None else Contact(row.id, row.email, row.display_name)

    async def put(self, contact: Contact) -> None:
        values = {"email": contact.email, "display_name": contact.display_name}
        result = await self._connection.execute(
            sa.update(users).where(users.c.id == contact.user_id).values(**values)
        )
        if not result.rowcount:
            await self._connection.execute(sa.insert(users).values(id=contact.user_id, **values))


def _values(notification: Notification) -> dict[str, Any]:
    return {
        "recipient_id": notification.recipient_id,
        "recipient_address": notification.recipient_address,
        "channel": notification.channel.value,
        "subject": notification.subject,
        "body": notification.body,
        "event_id": notification.event_id,
        "event_type": notification.event_type.value,
        "state": notification.state.value,
        "attempt_count": notification.attempt_count,
        "last_error": notification.last_error,
        "create_time": notification.create_time,
        "send_time": notification.send_time,
        "next_attempt_time": notification.next_attempt_time,
    }


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _notification(row: sa.Row[Any]) -> Notification:
    create_time = _utc(row.create_time)
    assert create_time is not None
    return Notification(
        id=row.id,
        recipient_id=row.recipient_id,
        recipient_address=row.recipient_address,
        channel=Channel(row.channel),
        subject=row.subject,
        body=row.body,
        event_id=row.event_id,
        event_type=EventType(row.event_type),
        state=NotificationState(row.state),
        attempt_count=row.attempt_count,
        last_error=row.last_error,
        create_time=create_time,
        send_time=_utc(row.send_time),
        next_attempt_time=_utc(row.next_attempt_time),
    )
