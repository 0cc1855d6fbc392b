"""Notifications' errors; each names its condition and carries a stable reason."""

from __future__ import annotations

from runtime.errors import FailedPrecondition, NotFound

DOMAIN = "notifications.agora"


class NotificationNotFound(NotFound):
    reason = "NOTIFICATION_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"notification {name!r} does not exist", metadata={"notification": name})


class RecipientUnknown(FailedPrecondition):
    """An event is about a user whose sign-up the service has not seen yet.

    Events of different streams are not ordered, so this is usually temporary: the event
    handler raises it, the consumer redelivers the event later, and only after its last
    delivery does the event become a dead letter with this message as the reason.
    """

    reason = "RECIPIENT_UNKNOWN"

    def __init__(self, user: str, event_type: str) -> None:
        super().__init__(
            f"no email address is known for {user!r} yet (no UserSignedUp seen); "
            f"cannot notify {event_type}",
            metadata={"user": user, "event_type": event_type},
        )
