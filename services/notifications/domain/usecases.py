"""Notifications' use cases: one async function each, over the ports in :mod:`ports`.

Creating a notification happens in an event handler, inside the consumer's transaction:
:func:`notify` writes the notification (and for a sign-up the user's contact) and the
consumer records the event in its inbox and commits, so an event creates its
notification exactly once. The notification's ``event_id`` is unique as well, which
holds even for an event reaching the service through two consumers.

Delivering happens outside any request: :func:`deliver_due` claims each notification whose
attempt is due, hands it to the mail sink without holding a transaction open, then
records the outcome (``SENT``, or a failed attempt) with a conditional update, and emits
``NotificationSent`` through the outbox in the same transaction as ``SENT``. A crash
between the sink's acceptance and that update means one more delivery of the same
message (same file name, same Message-ID): delivery is at least once, per notification.

Users see only the notifications sent to them. The use cases that read take
``restricted_to``: the id of the user the caller is, when it may see no one else's, or
None for a caller that sees every recipient's (an admin, another service). The entrypoint
works it out from the call's credentials; the rule itself is applied here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from notifications.domain import messages
from notifications.domain.commands import (
    NotifyCommand,
    NotifyOrderCancelled,
    NotifyOrderConfirmed,
    NotifyPaymentRefunded,
    WelcomeUser,
)
from notifications.domain.errors import (
    ActingForAnotherUser,
    NotificationNotFound,
    NotNotificationRecipient,
    RecipientUnknown,
)
from notifications.domain.events import NotificationSent
from notifications.domain.model import (
    Contact,
    EventType,
    Notification,
    NotificationQuery,
    Page,
    RetryPolicy,
)
from notifications.domain.ports import MailSink, UnitOfWork

log = logging.getLogger("agora.notifications")


async def notify(uow: UnitOfWork, command: NotifyCommand, now: datetime) -> Notification:
    """Creates the ``PENDING`` notification of one event, in ``uow``'s open transaction.

    The caller commits. An event whose notification already exists creates nothing and
    returns that notification.

    Raises:
        RecipientUnknown: the event is about a user whose sign-up has not been seen yet.
    """
    existing = await uow.notifications.get_by_event(command.event_id)
    if existing is not None:
        return existing
    if isinstance(command, WelcomeUser):
        contact = Contact(command.user_id, command.email, command.display_name)
        await uow.users.put(contact)
        event_type, message = EventType.USER_SIGNED_UP, messages.welcome(command)
    elif isinstance(command, NotifyOrderConfirmed):
        event_type = EventType.ORDER_CONFIRMED
        contact = await _contact(uow, command.order.user_id, event_type)
        message = messages.order_confirmed(command, contact.display_name)
    elif isinstance(command, NotifyOrderCancelled):
        event_type = EventType.ORDER_CANCELLED
        contact = await _contact(uow, command.order.user_id, event_type)
        message = messages.order_cancelled(command, contact.display_name)
    else:
        assert isinstance(command, NotifyPaymentRefunded)
        event_type = EventType.PAYMENT_REFUNDED
        contact = await _contact(uow, command.user_id, event_type)
        message = messages.payment_refunded(command, contact.display_name)
    notification = Notification.create(
        event_id=command.event_id,
        event_type=event_type,
        contact=contact,
        subject=message.subject,
        body=message.body,
        now=now,
    )
    await uow.notifications.add(notification)
    return notification


async def _contact(uow: UnitOfWork, user_id: str, event_type: EventType) -> Contact:
    contact = await uow.users.get(user_id)
    if contact is None:
        raise RecipientUnknown(f"users/{user_id}", event_type.value)
    return contact


async def get_notification(
    uow: UnitOfWork, notification_id: str, *, restricted_to: str | None
) -> Notification:
    """The notification, if the caller may see it.

    Raises:
        NotNotificationRecipient: the caller is restricted to another recipient's
            notifications, whether or not this one exists.
        NotificationNotFound: for a caller that may see every notification.
    """
    async with uow:
        notification = await uow.notifications.get(notification_id)
    if restricted_to is not None and (
        notification is None or notification.recipient_id != restricted_to
    ):
        raise NotNotificationRecipient(f"notifications/{notification_id}")
    if notification is None:
        raise NotificationNotFound(f"notifications/{notification_id}")
    return notification


async def list_notifications(
    uow: UnitOfWork, query: NotificationQuery, *, restricted_to: str | None
) -> Page:
    """A page of notifications; a restricted caller's query is limited to its own.

    Raises:
        ActingForAnotherUser: the query names a recipient the caller may not act for.
    """
    if restricted_to is not None:
        if query.recipient_id is None:
            query = replace(query, recipient_id=restricted_to)
        elif query.recipient_id != restricted_to:
            raise ActingForAnotherUser(f"users/{query.recipient_id}")
    async with uow:
        return await uow.notifications.query(query)


async def deliver_due(
    uow: Callable[[], UnitOfWork],
    sink: MailSink,
    clock: Callable[[], datetime],
    policy: RetryPolicy,
    limit: int = 20,
) -> int:
    """Makes one delivery attempt for each of up to ``limit`` due notifications.

    Each is claimed first (see :meth:`NotificationRepository.claim`), so senders running
    at once (replicas) never attempt the same notification together. Returns how many
    attempts were made (successful or not), so a caller knows whether to look again.
    """
    async with uow() as reading:
        due = await reading.notifications.due(clock(), limit)
    attempted = 0
    for notification in due:
        async with uow().writing() as claiming:
            claimed = await claiming.notifications.claim(notification, clock() + policy.claim)
            await claiming.commit()
        if not claimed:
            continue  # another sender is on it
        attempted += 1
        try:
            await sink.send(notification)
        except Exception as error:
            outcome = notification.attempt_failed(_describe(error), clock(), policy)
            log.warning(
                "notification delivery failed",
                extra={
                    "notification": notification.name,
                    "attempt": outcome.attempt_count,
                    "state": outcome.state.value,
                    "error": outcome.last_error,
                },
            )
        else:
            outcome = notification.sent(clock())
        async with uow().writing() as writing:
            if await writing.notifications.update(outcome, notification.attempt_count):
                if outcome.send_time is not None:
                    writing.emit(NotificationSent(outcome))
                await writing.commit()
    return attempted


def _describe(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
