"""Notifications' domain model: the notification, its delivery states, the user directory.

A :class:`Notification` is created ``PENDING`` for one event and ends ``SENT`` (the sink
accepted it) or ``FAILED`` (every attempt failed). Every change goes through
:meth:`Notification.sent` or :meth:`Notification.attempt_failed`, which refuse to touch a
notification that already reached a final state.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

#: Ids of other services' resources (users, orders, payments): recorded as given, so
#: only their shape is checked.
FOREIGN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}\Z")
NANOS_PER_UNIT = 1_000_000_000
#: The contract's limits on what a notification holds.
MAX_SUBJECT = 200
MAX_BODY = 100_000
#: How much of a failed attempt's error is kept in ``last_error``.
MAX_ERROR = 500
#: Notification ids are derived from event ids with this namespace (see :func:`notification_id`).
_ID_NAMESPACE = uuid.UUID("5b0c3f0e-6a8e-4f47-9d5e-0b7f3c1e2a91")


class EventType(enum.StrEnum):
    """The events the service handles, by the full name of their contract message."""

    USER_SIGNED_UP = "agora.identity.v1.UserSignedUp"
    ORDER_CONFIRMED = "agora.orders.v1.OrderConfirmed"
    ORDER_CANCELLED = "agora.orders.v1.OrderCancelled"
    PAYMENT_REFUNDED = "agora.payments.v1.PaymentRefunded"


class Channel(enum.StrEnum):
    EMAIL = "EMAIL"


class NotificationState(enum.StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self is not NotificationState.PENDING


def notification_id(event_id: str) -> str:
    """The id of the notification of event ``event_id``: the same event, the same id.

    A letter, then a name-based UUID (lowercase hex and hyphens), so it satisfies the id
    rules and a sink can derive file names and Message-IDs from it.
    """
    return f"n-{uuid.uuid5(_ID_NAMESPACE, event_id)}"


@dataclass(frozen=True)
class Money:
    """An amount as ``google.type.Money`` has it: whole units plus nanos of the same sign."""

    currency_code: str
    units: int
    nanos: int = 0

    def __str__(self) -> str:
        """``12.50 EUR``: at least two decimals, more only when the amount has them."""
        value = Decimal(self.units) + Decimal(self.nanos) / NANOS_PER_UNIT
        text = f"{value:.9f}".rstrip("0")
        whole, _, fraction = text.partition(".")
        return f"{whole}.{fraction.ljust(2, '0')} {self.currency_code}"


@dataclass(frozen=True)
class Contact:
    """Where a user is reached: the notifications service's own copy, kept from sign-ups."""

    user_id: str
    email: str
    display_name: str


@dataclass(frozen=True)
class RetryPolicy:
    """How often delivery is tried, and how long to wait between attempts.

    The wait after the n-th failed attempt is ``initial * 2**(n-1)``, at most ``maximum``.
    """

    max_attempts: int = 5
    initial: timedelta = timedelta(seconds=2)
    maximum: timedelta = timedelta(seconds=60)
    #: How long a sender holds a notification it attempts; if it crashes meanwhile,
    #: another sender retries once this has passed. Longer than any sink's timeout.
    claim: timedelta = timedelta(seconds=120)

    def delay(self, attempts: int) -> timedelta:
        return min(self.initial * (1 << max(attempts - 1, 0)), self.maximum)


@dataclass(frozen=True)
class Notification:
    id: str
    recipient_id: str
    recipient_address: str
    subject: str
    body: str
    event_id: str
    event_type: EventType
    create_time: datetime
    channel: Channel = Channel.EMAIL
    state: NotificationState = NotificationState.PENDING
    attempt_count: int = 0
    last_error: str = ""
    send_time: datetime | None = None
    #: When the next delivery attempt is due; None once the state is final.
    next_attempt_time: datetime | None = field(default=None)

    @property
    def name(self) -> str:
        return f"notifications/{self.id}"

    @property
    def recipient(self) -> str:
        return f"users/{self.recipient_id}"

    @classmethod
    def create(
        cls,
        *,
        event_id: str,
        event_type: EventType,
        contact: Contact,
        subject: str,
        body: str,
        now: datetime,
    ) -> Notification:
        """A new ``PENDING`` notification for ``event_id``, due at once."""
        return cls(
            id=notification_id(event_id),
            recipient_id=contact.user_id,
            recipient_address=contact.email,
            subject=_clip(subject.replace("\n", " "), MAX_SUBJECT),
            body=_clip(body, MAX_BODY),
            event_id=event_id,
            event_type=event_type,
            create_time=now,
            next_attempt_time=now,
        )

    def sent(self, now: datetime) -> Notification:
        """The notification after the sink accepted it: ``SENT``, one more attempt."""
        self._check_pending()
        return replace(
            self,
            state=NotificationState.SENT,
            attempt_count=self.attempt_count + 1,
            send_time=now,
            next_attempt_time=None,
        )

    def attempt_failed(self, error: str, now: datetime, policy: RetryPolicy) -> Notification:
        """After a failed attempt: ``PENDING`` again later, or ``FAILED`` after the last one."""
        self._check_pending()
        attempts = self.attempt_count + 1
        if attempts >= policy.max_attempts:
            return replace(
                self,
                state=NotificationState.FAILED,
                attempt_count=attempts,
                last_error=_clip(error, MAX_ERROR),
                next_attempt_time=None,
            )
        return replace(
            self,
            attempt_count=attempts,
            last_error=_clip(error, MAX_ERROR),
            next_attempt_time=now + policy.delay(attempts),
        )

    def _check_pending(self) -> None:
        if self.state.is_final:
            raise ValueError(f"{self.name} is {self.state}, which is final")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True)
class NotificationQuery:
    """A page of notifications, newest first, optionally of one recipient and/or event type."""

    page_size: int
    recipient_id: str | None = None
    event_type: EventType | None = None
    #: Where the page starts: after this (create_time, id), in newest-first order.
    after: tuple[datetime, str] | None = None

    def fingerprint(self) -> str:
        """Identifies the filter (not the position), so page tokens stay with their query."""
        return f"recipient={self.recipient_id or ''}|event_type={self.event_type or ''}"


@dataclass(frozen=True)
class Page:
    """One page of notifications; ``next_after`` is where the next page starts, None at the end."""

    items: list[Notification] = field(default_factory=list)
    next_after: tuple[datetime, str] | None = None
