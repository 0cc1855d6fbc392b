"""Notifications' domain events as the contract's messages (`agora.notifications.v1`).

The unit of work writes them to the outbox at commit; the notification is converted as
the servicer converts it (one ``Notification`` message, whoever reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from agora.notifications.v1 import events_pb2
from notifications.adapters import orm
from notifications.domain.events import NotificationSent
from notifications.entrypoints.convert import notification_to_proto
from runtime.outbox import OutboxWriter


def to_messages(event: object) -> Sequence[tuple[Message, str]]:
    """The messages an event publishes, each with the notification's name as its aggregate."""
    if not isinstance(event, NotificationSent):
        raise TypeError(f"notifications does not publish {type(event).__name__}")
    message = events_pb2.NotificationSent(notification=notification_to_proto(event.notification))
    return [(message, event.notification.name)]


#: Writes notifications' events into its outbox table.
OUTBOX = OutboxWriter(orm.outbox, "notifications", to_messages)
