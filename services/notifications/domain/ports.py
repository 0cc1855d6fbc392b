"""What the notifications use cases need from the outside world, as abstract classes."""

from __future__ import annotations

import abc
from datetime import datetime

from notifications.domain.model import Contact, Notification, NotificationQuery, Page
from runtime import unit_of_work


class NotificationRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, notification_id: str) -> Notification | None:
        """The notification, or None."""

    @abc.abstractmethod
    async def get_by_event(self, event_id: str) -> Notification | None:
        """The notification created for event ``event_id``, or None."""

    @abc.abstractmethod
    async def add(self, notification: Notification) -> None:
        """Stores a new notification; at most one per event id (the database enforces it)."""

    @abc.abstractmethod
    async def claim(self, notification: Notification, until: datetime) -> bool:
        """Takes a due notification for one delivery attempt: moves its next attempt to
        ``until``, if it is unchanged since ``notification`` was read (still ``PENDING``,
        same attempt count and next attempt time). False if another sender took it."""

    @abc.abstractmethod
    async def update(self, notification: Notification, expected_attempt_count: int) -> bool:
        """Saves a delivery outcome if the stored notification is still ``PENDING`` with
        ``expected_attempt_count`` attempts; False if another sender got there first."""

    @abc.abstractmethod
    async def due(self, now: datetime, limit: int) -> list[Notification]:
        """Up to ``limit`` ``PENDING`` notifications whose next attempt is due at ``now``,
        the longest waiting first."""

    @abc.abstractmethod
    async def query(self, query: NotificationQuery) -> Page:
        """A page of notifications, newest first (by create time, then id)."""


class UserDirectory(abc.ABC):
    """The service's own copy of users' addresses, kept from ``UserSignedUp`` events."""

    @abc.abstractmethod
    async def get(self, user_id: str) -> Contact | None:
        """The user's contact, or None if their sign-up has not been seen."""

    @abc.abstractmethod
    async def put(self, contact: Contact) -> None:
        """Adds the contact, or replaces the one of the same user."""


class UnitOfWork(unit_of_work.UnitOfWork):
    """One transaction over the notifications repositories; ``commit`` makes the changes durable."""

    notifications: NotificationRepository
    users: UserDirectory


class MailSink(abc.ABC):
    """Where email messages go: an SMTP server, a maildir.

    Delivering one notification again must not make a second message where the sink can
    tell (a maildir keeps one file per notification id); every message carries a
    Message-ID derived from the notification id so that readers can tell elsewhere.
    """

    @abc.abstractmethod
    async def send(self, notification: Notification) -> None:
        """Hands the message over, bounded by the sink's own timeout.

        Raises:
            Exception: any failure; its text becomes the notification's ``last_error``.
        """
