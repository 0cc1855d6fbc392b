"""Notifications' errors; each names its condition and carries a stable reason."""

from __future__ import annotations

from runtime.errors import FailedPrecondition, NotFound, PermissionDenied

DOMAIN = "notifications.agora"


class NotificationNotFound(NotFound):
    reason = "NOTIFICATION_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"notification {name!r} does not exist", metadata={"notification": name})


class NotNotificationRecipient(PermissionDenied):
    """The caller is a user other than the notification's recipient, and no admin.

    Also raised for a notification that does not exist: permission is checked before
    existence (AIP-211), so a user cannot probe which notifications exist.
    """

    reason = "NOT_RESOURCE_OWNER"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"notification {name!r} is not one of yours: only its recipient and admins may see it",
            metadata={"notification": name},
        )


class ActingForAnotherUser(PermissionDenied):
    """A user (no admin) asks for the notifications of another recipient."""

    reason = "NOT_RESOURCE_OWNER"

    def __init__(self, recipient: str) -> None:
        super().__init__(
            f"you may only list your own notifications, not those of {recipient!r}",
            metadata={"recipient": recipient},
        )


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
