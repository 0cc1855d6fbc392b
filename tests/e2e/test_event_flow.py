"""Events across real processes: a checkout ends in one mail, a poison event in the DLQ.

Everything here is real: one nats-server with JetStream (file storage) and catalog,
inventory, payments, orders, identity and notifications started as ``python -m <name>``
on loopback, each with its own SQLite database. Orders and identity publish through
their outbox relays; notifications consumes through its durable consumers
(``notifications-orders``, ``notifications-identity``) and writes one maildir file per
notification. The tests drive the shop through the SDK, publish hand-made events with
the full envelope (as a relay does) straight into the orders and identity streams, read
the dead-letter stream ``AGORA_DEAD_LETTERS`` and run ``python -m runtime.deadletters``
as a subprocess.

Notifications gives up on an event after ``NOTIFICATIONS_MAX_DELIVER`` = 2 deliveries
here, so a refused event reaches the dead-letter stream within a second. Events of two
streams are not ordered, so the tests wait for a user's welcome (their sign-up handled)
before anything about that user is published: two deliveries leave little room for an
order event that overtakes the sign-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from email.message import Message as EmailMessage
from pathlib import Path

import nats
import pytest
from google.protobuf.message import DecodeError
from google.type import money_pb2
from nats.js import JetStreamContext

from agora.identity.v1 import events_pb2 as identity_events
from agora.identity.v1 import user_pb2
from agora.notifications.v1 import notification_pb2
from agora.orders.v1 import events_pb2 as order_events
from agora.orders.v1 import order_pb2
from runtime.deadletters import DeadLetter, dead_letters
from tests.support.nats import publish, publish_event
from tests.support.processes import REPO, clean_environment
from tests.support.shop import DECLINED_CARD, Shop, ShopClients, running_shop

Notification = notification_pb2.Notification

#: Deliveries of an event before notifications dead-letters it (the default is 5).
MAX_DELIVER = 2
#: Bound on anything the event flow should do within moments (a checkout, a mail).
WAIT_S = 60.0
#: Bound on one run of the dead-letter command.
CLI_TIMEOUT_S = 60.0
POLL_S = 0.1

SIGNED_UP = identity_events.UserSignedUp.DESCRIPTOR.full_name
CONFIRMED = order_events.OrderConfirmed.DESCRIPTOR.full_name
CANCELLED = order_events.OrderCancelled.DESCRIPTOR.full_name
ORDERS_CONSUMER = "notifications-orders"
SENT = notification_pb2.NOTIFICATION_STATE_SENT


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(
        tmp_path_factory.mktemp("flow"),
        with_notifications=True,
        env={"NOTIFICATIONS_MAX_DELIVER": str(MAX_DELIVER)},
    ) as shop:
        yield shop


# --- helpers --------------------------------------------------------------------------------


def maildir_new(shop: Shop) -> Path:
    """Where notifications puts each delivered message (its default maildir)."""
    return shop.data_dir / "notifications" / "mail" / "new"


def notification_id(notification: Notification) -> str:
    return notification.name.removeprefix("notifications/")


def about_order(order_name: str) -> Callable[[Notification], bool]:
    """Matches the notifications whose subject names the order (``Your order <id> ...``)."""
    order_id = order_name.removeprefix("orders/")
    return lambda notification: order_id in notification.subject.split()


async def matching(
    clients: ShopClients, event_type: str, match: Callable[[Notification], bool]
) -> list[Notification]:
    return [n for n in await clients.notifications_of(event_type) if match(n)]


async def wait_sent(
    clients: ShopClients, event_type: str, match: Callable[[Notification], bool]
) -> Notification:
    """The first notification of ``event_type`` that matches, once the sink accepted it."""
    async with asyncio.timeout(WAIT_S):
        while True:
            for notification in await matching(clients, event_type, match):
                if notification.state == SENT:
                    return notification
            await asyncio.sleep(POLL_S)


async def all_sent(clients: ShopClients) -> list[Notification]:
    """Every notification, once none is waiting for its delivery any more."""
    async with asyncio.timeout(WAIT_S):
        while True:
            notifications = await clients.notifications_of()
            if all(n.state == SENT for n in notifications):
                return notifications
            await asyncio.sleep(POLL_S)


def read_mail(shop: Shop, notification: Notification) -> EmailMessage:
    data = (maildir_new(shop) / notification_id(notification)).read_bytes()
    return email.message_from_bytes(data)


async def published_ids(shop: Shop, order_name: str, event_type: str) -> list[str]:
    """The ids of the ``event_type`` events about ``order_name`` in the orders stream."""
    ids: list[str] = []
    for event in await shop.events("orders"):
        if event.event_type != event_type:
            continue
        with contextlib.suppress(DecodeError):  # the poison test's garbage, if it ran first
            if event.order_name() == order_name and event.event_id not in ids:
                ids.append(event.event_id)
    return ids


@contextlib.asynccontextmanager
async def jetstream(url: str) -> AsyncIterator[JetStreamContext]:
    client = await nats.connect(url)
    try:
        yield client.jetstream()
    finally:
        await client.close()


async def letters_of(url: str, event_ids: Collection[str]) -> dict[str, DeadLetter]:
    """The dead letters of ``event_ids`` from notifications' orders consumer, once all are
    there, by event id."""
    async with jetstream(url) as js, asyncio.timeout(WAIT_S):
        while True:
            letters = {
                letter.event_id: letter
                for letter in await dead_letters(js, ORDERS_CONSUMER)
                if letter.event_id in event_ids
            }
            if len(letters) == len(event_ids):
                return letters
            await asyncio.sleep(POLL_S)


async def deadletters_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m runtime.deadletters ARGS`` against the shop's broker (``NATS_URL``)."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "runtime.deadletters", *args],
        cwd=REPO,
        env=clean_environment({"NATS_URL": url}),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def order_about(name: str, user: str) -> order_pb2.Order:
    return order_pb2.Order(
        name=name,
        user=user,
        total=money_pb2.Money(currency_code="EUR", units=9),
        state=order_pb2.ORDER_STATE_CONFIRMED,
    )


# --- the tests ------------------------------------------------------------------------------


async def test_a_checkout_mails_one_confirmation_and_a_declined_card_one_cancellation(
    shop: Shop,
) -> None:
    async with shop.clients() as clients:
        grace = await clients.sign_up("grace@example.com")
        welcome = await wait_sent(clients, SIGNED_UP, lambda n: n.recipient == grace.name)
        await clients.stock({"tea": 10})

        completed = await clients.wait_final(
            (await clients.place({"tea": 2}, user=grace.name)).name
        )
        assert completed.state == order_pb2.ORDER_STATE_COMPLETED
        confirmed = await wait_sent(clients, CONFIRMED, about_order(completed.name))
        assert (confirmed.recipient, confirmed.recipient_address) == (
            grace.name,
            "grace@example.com",
        )
        assert confirmed.event_id in await published_ids(shop, completed.name, CONFIRMED)
        assert [
            n.name for n in await matching(clients, CONFIRMED, about_order(completed.name))
        ] == [confirmed.name]
        assert await matching(clients, CANCELLED, lambda n: n.recipient == grace.name) == []

        # The orders stream is consumed in order: once the declined order's cancellation is
        # mailed, the first order's events are all behind the consumer, not still to come.
        declined = await clients.wait_final(
            (await clients.place({"tea": 1}, DECLINED_CARD, user=grace.name)).name
        )
        assert declined.state == order_pb2.ORDER_STATE_CANCELLED
        cancelled = await wait_sent(clients, CANCELLED, about_order(declined.name))
        assert cancelled.recipient_address == "grace@example.com"
        assert "because the payment was declined" in cancelled.body
        assert cancelled.event_id in await published_ids(shop, declined.name, CANCELLED)

        by_order = {
            (kind, order.name): [
                n.name for n in await matching(clients, kind, about_order(order.name))
            ]
            for kind in (CONFIRMED, CANCELLED)
            for order in (completed, declined)
        }
        assert by_order == {
            (CONFIRMED, completed.name): [confirmed.name],
            (CANCELLED, completed.name): [],
            (CONFIRMED, declined.name): [],
            (CANCELLED, declined.name): [cancelled.name],
        }
        everything = await all_sent(clients)
        graces = {n.name for n in everything if n.recipient == grace.name}
        assert graces == {welcome.name, confirmed.name, cancelled.name}

    # One file per notification, named by its id: nothing missing, nothing twice, no strays.
    assert {path.name for path in maildir_new(shop).iterdir()} == {
        notification_id(n) for n in everything
    }
    for notification in (welcome, confirmed, cancelled):
        message = read_mail(shop, notification)
        assert message["To"] == "grace@example.com"
        assert message["Subject"] == notification.subject
        assert message["X-Agora-Notification"] == notification.name
        assert message["X-Agora-Event-Type"] == notification.event_type

    # Nothing of this flow was given up on.
    flow = {confirmed.event_id, cancelled.event_id}
    async with jetstream(shop.broker.url) as js:
        assert [letter for letter in await dead_letters(js) if letter.event_id in flow] == []


async def test_poison_events_are_dead_lettered_with_their_reason_and_the_consumer_carries_on(
    shop: Shop,
) -> None:
    url = shop.broker.url
    async with shop.clients() as clients:
        heidi = await clients.sign_up("heidi@example.com")
        await wait_sent(clients, SIGNED_UP, lambda n: n.recipient == heidi.name)

        # Undecodable as the type it declares: dead-lettered on its first delivery.
        garbage = b"\x0a\x05abc"
        garbage_id = await publish(url, "orders", CONFIRMED, garbage)
        # Decodes, but no sign-up of users/stranger was ever seen: refused on every delivery.
        stranger_id = await publish_event(
            url,
            "orders",
            order_events.OrderConfirmed(order=order_about("orders/o-stranger", "users/stranger")),
        )
        # A valid event behind both, about someone notifications knows.
        after_id = await publish_event(
            url,
            "orders",
            order_events.OrderCancelled(
                order=order_about("orders/o-after-poison", heidi.name),
                reason=order_pb2.CANCELLATION_REASON_PAYMENT_DECLINED,
            ),
        )

        after = await wait_sent(clients, CANCELLED, lambda n: n.event_id == after_id)
        assert (after.recipient, after.recipient_address) == (heidi.name, "heidi@example.com")
        letters = await letters_of(url, {garbage_id, stranger_id})

        undecodable, refused = letters[garbage_id], letters[stranger_id]
        assert (undecodable.consumer, undecodable.subject, undecodable.event_type) == (
            ORDERS_CONSUMER,
            CONFIRMED,
            CONFIRMED,
        )
        assert undecodable.deliveries == "1"
        assert undecodable.reason.startswith(f"poison: cannot decode {CONFIRMED}")
        assert undecodable.data == garbage
        assert (refused.consumer, refused.subject, refused.event_type) == (
            ORDERS_CONSUMER,
            CONFIRMED,
            CONFIRMED,
        )
        assert refused.deliveries == str(MAX_DELIVER)
        assert refused.reason.startswith("RecipientUnknown: ")
        assert "users/stranger" in refused.reason
        poisoned = {garbage_id, stranger_id}
        assert [n for n in await clients.notifications_of() if n.event_id in poisoned] == []

        # The command the README documents lists both, one tab-separated line each.
        listed = await deadletters_cli(url, "list", "--consumer", ORDERS_CONSUMER)
        assert listed.returncode == 0, listed.stderr
        rows = {row[3]: row for row in (line.split("\t") for line in listed.stdout.splitlines())}
        assert rows[garbage_id][:5] == [
            str(undecodable.seq),
            ORDERS_CONSUMER,
            CONFIRMED,
            garbage_id,
            "1",
        ]
        assert rows[stranger_id][:5] == [
            str(refused.seq),
            ORDERS_CONSUMER,
            CONFIRMED,
            stranger_id,
            str(MAX_DELIVER),
        ]
        assert rows[stranger_id][5] == " ".join(refused.reason.split())
        assert "dead letter(s)" in listed.stderr

        # Once the stranger has signed up, replaying the refused event gets it handled.
        await publish_event(
            url,
            "identity",
            identity_events.UserSignedUp(
                user=user_pb2.User(
                    name="users/stranger", email="stranger@example.com", display_name="Stranger"
                )
            ),
        )
        await wait_sent(clients, SIGNED_UP, lambda n: n.recipient == "users/stranger")
        replayed = await deadletters_cli(url, "replay", str(refused.seq))
        assert replayed.returncode == 0, replayed.stderr
        assert f"replayed {refused.seq} " in replayed.stdout
        late = await wait_sent(clients, CONFIRMED, lambda n: n.event_id == stranger_id)
        assert late.recipient_address == "stranger@example.com"
        async with jetstream(url) as js:
            remaining = {letter.seq for letter in await dead_letters(js, ORDERS_CONSUMER)}
        assert refused.seq not in remaining
        assert undecodable.seq in remaining
