"""The inbox: which events a consumer has already handled, kept in the consumer's database.

A consumer records an event's id in the same transaction as the changes its handler made,
so an event delivered again (JetStream delivers at least once) is recognised and dropped:
the side effects happen once. Plain Python, so domains may use the port; the SQLAlchemy
implementation is in :mod:`runtime.db`.
"""

from __future__ import annotations

import abc


class Inbox(abc.ABC):
    @abc.abstractmethod
    async def seen(self, consumer: str, event_id: str) -> bool:
        """True if ``consumer`` already handled the event.

        Also claims the id until the transaction ends, so two deliveries of one event
        handled at once take turns and the second finds the first's record.
        """

    @abc.abstractmethod
    async def add(self, consumer: str, event_id: str) -> None:
        """Records that ``consumer`` handled the event; visible when the transaction commits."""
