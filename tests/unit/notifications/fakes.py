"""In-memory fakes of notifications' ports, for unit tests of the use cases."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from notifications.domain.model import (
    Contact,
    Notification,
    NotificationQuery,
    NotificationState,
    Page,
)
from notifications.domain.ports import MailSink, NotificationRepository, UnitOfWork, UserDirectory
from runtime.idempotency import RecordedRequest
from tests.support import fakes


@dataclass
class FakeStore:
    """What a committed "database" holds."""

    notifications: dict[str, Notification] = field(default_factory=dict)
    users: dict[str, Contact] = field(default_factory=dict)
    requests: dict[str, RecordedRequest] = field(default_factory=dict)


class FakeNotificationRepository(NotificationRepository):
    """Reads and writes a working copy; ``update`` also checks what others committed
    meanwhile, as the conditional UPDATE in a database does."""

    def __init__(self, store: FakeStore, committed: FakeStore) -> None:
        self._store = store
        self._committed = committed

    async def get(self, notification_id: str) -> Notification | None:
        return self._store.notifications.get(notification_id)

    async def get_by_event(self, event_id: str) -> Notification | None:
        found = [n for n in self._store.notifications.values() if n.event_id == event_id]
        return found[0] if found else None

    async def add(self, notification: Notification) -> None:
        # The unique primary key and event_id columns of the real table.
        assert notification.id not in self._store.notifications
        assert await self.get_by_event(notification.event_id) is None
        self._store.notifications[notification.id] = notification

    async def claim(self, notification: Notification, until: datetime) -> bool:
        for store in (self._store, self._committed):
            current = store.notifications.get(notification.id)
            if (
                current is None
                or current.state is not NotificationState.PENDING
                or current.attempt_count != notification.attempt_count
                or current.next_attempt_time != notification.next_attempt_time
            ):
                return False
        self._store.notifications[notification.id] = replace(notification, next_attempt_time=until)
        return True

    async def update(self, notification: Notification, expected_attempt_count: int) -> bool:
        for store in (self._store, self._committed):
            current = store.notifications.get(notification.id)
            if (
                current is None
                or current.state is not NotificationState.PENDING
                or current.attempt_count != expected_attempt_count
            ):
                return False
        self._store.notifications[notification.id] = notification
        return True

    async def due(self, now: datetime, limit: int) -> list[Notification]:
        due = [
            n
            for n in self._store.notifications.values()
            if n.state is NotificationState.PENDING
            and n.next_attempt_time is not None
            and n.next_attempt_time <= now
        ]
        due.sort(key=lambda n: (n.next_attempt_time or now, n.id))
        return due[:limit]

    async def query(self, query: NotificationQuery) -> Page:
        def matches(n: Notification) -> bool:
            return (
                (query.recipient_id is None or n.recipient_id == query.recipient_id)
                and (query.event_type is None or n.event_type is query.event_type)
                and (query.after is None or (n.create_time, n.id) < query.after)
            )

        found = sorted(
            (n for n in self._store.notifications.values() if matches(n)),
            key=lambda n: (n.create_time, n.id),
            reverse=True,
        )
        items = found[: query.page_size]
        more = len(found) > query.page_size
        return Page(items, (items[-1].create_time, items[-1].id) if more else None)


class FakeUserDirectory(UserDirectory):
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, user_id: str) -> Contact | None:
        return self._store.users.get(user_id)

    async def put(self, contact: Contact) -> None:
        self._store.users[contact.user_id] = contact


class FakeUnitOfWork(fakes.FakeUnitOfWork[FakeStore], UnitOfWork):
    """Works on a copy of the store; commit publishes the copy, so rollback really discards."""

    def _bind(self, working: FakeStore) -> None:
        self.notifications = FakeNotificationRepository(working, self._committed)
        self.users = FakeUserDirectory(working)


class FakeMailSink(MailSink):
    """Records what it accepted; fails the first ``failures`` attempts (all, if negative)."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.attempts = 0
        self.accepted: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.attempts += 1
        if self.failures < 0 or self.attempts <= self.failures:
            raise ConnectionRefusedError(f"mail server refused attempt {self.attempts}")
        self.accepted.append(notification)
