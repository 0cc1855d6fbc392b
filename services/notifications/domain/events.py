"""Notifications' domain events, published through the outbox when their transaction commits."""

from __future__ import annotations

from dataclasses import dataclass

from notifications.domain.model import Notification


@dataclass(frozen=True)
class NotificationSent:
    """A notification was handed to its channel; it is in state ``SENT``."""

    notification: Notification
