"""Fault runs of the event path: relays SIGKILLed mid-stream, the broker restarted.

Two randomized runs on real processes and a real nats-server, part of ``make test-faults``:

- **Relay kills.** identity and notifications run with ``AGORA_FAULT_RELAY_KILL_RATE``:
  right after the broker acknowledged an event, and before the outbox row is marked
  sent, their relay SIGKILLs its own process now and then (see :mod:`runtime.faults`),
  and the test SIGKILLs them at random moments too. Customers keep signing up, retrying
  with their request id while identity is down. The run lasts until identity's relay
  died mid-stream ``AGORA_FAULT_RELAY_KILLS`` times (50).
- **Broker restarts.** The whole shop with notifications; customers sign up, order and
  cancel while nats-server is SIGKILLed or stopped and started again
  ``AGORA_FAULT_BROKER_RESTARTS`` times (8).

Both count side effects, not messages: one welcome per user, one confirmation or
cancellation notice per order, one refund notice per refund, one maildir message per
notification, one ``NotificationSent`` per notification, nothing dead-lettered, and the
checkout's invariants (which include every cancelled order's reservation released). The
seed is printed; ``AGORA_FAULT_SEED`` replays a run's choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError

from agora.identity.v1 import events_pb2 as identity_events
from agora.identity.v1 import user_pb2
from agora.notifications.v1 import events_pb2 as notification_events
from agora.notifications.v1 import notification_pb2
from agora.orders.v1 import order_pb2
from agora.orders.v1 import order_service_pb2 as orders_pb
from agora.payments.v1 import payment_pb2
from agora_sdk import AgoraError, FailedPrecondition
from runtime.broker import DEAD_LETTER_STREAM
from runtime.faults import LOG_ENV, RELAY_KILL_RATE_ENV
from tests.support.processes import health_status
from tests.support.shop import (
    APPROVED_CARD,
    CALL_TIMEOUT_S,
    DECLINED_CARD,
    INSUFFICIENT_FUNDS_CARD,
    Shop,
    ShopClients,
    outcomes,
    running_shop,
    was_confirmed,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1200)]

RELAY_KILLS = int(os.environ.get("AGORA_FAULT_RELAY_KILLS", "50"))
BROKER_RESTARTS = int(os.environ.get("AGORA_FAULT_BROKER_RESTARTS", "8"))
#: Chance that a relay dies after an acknowledged publish: identity's, notifications'.
IDENTITY_KILL_RATE = "0.3"
NOTIFICATIONS_KILL_RATE = "0.1"
#: Seconds of serving before the test SIGKILLs a service at a random moment (every restart
#: costs seconds of CPU on a small machine, so not too often).
EXTERNAL_KILL_AFTER_S = {"identity": (3.0, 8.0), "notifications": (4.0, 10.0)}
#: Seconds the broker runs between restarts.
BROKER_UP_S = (1.0, 4.0)
SIGN_UPS_PER_ROUND = 8
ORDERS_PER_ROUND = 12
MAX_ROUNDS = 150
CARDS = [APPROVED_CARD] * 6 + [DECLINED_CARD, INSUFFICIENT_FUNDS_CARD]
INITIAL_STOCK = {"tea": 400, "cup": 300, "pot": 100}
#: Bound on everything settling once the faults stop.
SETTLE_S = 120.0
TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED")

WELCOME = identity_events.UserSignedUp.DESCRIPTOR.full_name
CONFIRMED = "agora.orders.v1.OrderConfirmed"
CANCELLED = "agora.orders.v1.OrderCancelled"
REFUNDED = "agora.payments.v1.PaymentRefunded"


@dataclass
class Customers:
    """What the customers did, as their answers tell: the ground truth of a run."""

    rng: random.Random
    users: list[user_pb2.User] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)

    async def sign_up(self, clients: ShopClients) -> None:
        """Signs one new user up, retrying with the same request id while identity is down."""
        email = f"customer-{len(self.users)}-{uuid.uuid4().hex[:8]}@example.com"
        request_id = str(uuid.uuid4())
        async with asyncio.timeout(SETTLE_S):
            while True:
                try:
                    self.users.append(await clients.sign_up(email, request_id=request_id))
                    return
                except AgoraError as error:
                    if error.code.name not in TRANSIENT:
                        raise
                    await asyncio.sleep(0.1)

    async def order(self, clients: ShopClients) -> None:
        """One signed-up user orders, and now and then cancels at once."""
        user = self.rng.choice(self.users)
        products = self.rng.sample(sorted(INITIAL_STOCK), self.rng.randint(1, 2))
        items = {product: self.rng.randint(1, 3) for product in products}
        order = await clients.place(items, self.rng.choice(CARDS), user=user.name)
        self.orders.append(order.name)
        if self.rng.random() < 0.15:
            # Already confirmed is too late to cancel, which is fine.
            with contextlib.suppress(FailedPrecondition):
                await clients.orders.cancel_order(
                    orders_pb.CancelOrderRequest(name=order.name, request_id=str(uuid.uuid4())),
                    timeout=CALL_TIMEOUT_S,
                )


def relay_kills(log: Path) -> list[int]:
    """For each relay kill in ``log``: how many acknowledged events it left unmarked."""
    if not log.is_file():
        return []
    return [
        int(line.split()[3]) for line in log.read_text().splitlines() if line.startswith("relay")
    ]


def faulty(rate: str, log: Path, on: bool) -> dict[str, str]:
    return {RELAY_KILL_RATE_ENV: rate if on else "0", LOG_ENV: str(log)}


async def wait_for_notifications(
    clients: ShopClients, expected: int, within: float = SETTLE_S
) -> list[notification_pb2.Notification]:
    """Waits until at least ``expected`` notifications exist and none is still PENDING."""
    notifications: list[notification_pb2.Notification] = []
    try:
        async with asyncio.timeout(within):
            while True:
                try:
                    notifications = await clients.notifications_of()
                except AgoraError as error:
                    if error.code.name not in TRANSIENT:
                        raise
                pending = [
                    n
                    for n in notifications
                    if n.state == notification_pb2.NOTIFICATION_STATE_PENDING
                ]
                if len(notifications) >= expected and not pending:
                    return notifications
                await asyncio.sleep(0.25)
    except TimeoutError:
        return notifications


async def sent_events_per_notification(shop: Shop, notifications: int) -> Counter[str]:
    """Distinct NotificationSent event ids per notification, once the stream has them all."""
    per_notification: Counter[str] = Counter()
    async with asyncio.timeout(SETTLE_S):
        while True:
            per_notification = Counter()
            seen: set[str] = set()
            for event in await shop.events("notifications"):
                if event.event_id in seen:
                    continue  # stored twice under one id: still one event
                seen.add(event.event_id)
                sent = notification_events.NotificationSent.FromString(event.data)
                per_notification[sent.notification.name] += 1
            if len(per_notification) >= notifications:
                return per_notification
            await asyncio.sleep(0.25)


async def dead_letter_count(shop: Shop) -> int:
    client = await nats.connect(shop.broker.url)
    try:
        info = await client.jetstream().stream_info(DEAD_LETTER_STREAM)
        return int(info.state.messages)
    except NotFoundError:
        return 0
    finally:
        await client.close()


def maildir_problems(
    shop: Shop, notifications: Sequence[notification_pb2.Notification]
) -> list[str]:
    """One message file per notification, named by its id, and no other."""
    new = shop.data_dir / "notifications" / "mail" / "new"
    files = Counter(path.name for path in new.iterdir()) if new.is_dir() else Counter()
    ids = Counter(n.name.removeprefix("notifications/") for n in notifications)
    problems = [
        f"maildir has {files[i]} messages for notifications/{i}" for i in ids if files[i] != 1
    ]
    problems += [
        f"maildir has a message of no notification: {name}" for name in files if name not in ids
    ]
    return problems


def delivery_problems(
    shop: Shop, notifications: Sequence[notification_pb2.Notification], sent: Mapping[str, int]
) -> list[str]:
    """Every notification SENT, once in the maildir, with one NotificationSent event."""
    problems = [
        f"{n.name} is {notification_pb2.NotificationState.Name(n.state)}"
        for n in notifications
        if n.state != notification_pb2.NOTIFICATION_STATE_SENT
    ]
    problems += maildir_problems(shop, notifications)
    problems += once_each("NotificationSent events", sent, [n.name for n in notifications])
    return problems


def once_each(label: str, counts: Mapping[str, int], expected: Sequence[str]) -> list[str]:
    """Problems unless ``counts`` holds exactly one of each ``expected`` key and nothing else."""
    problems = [
        f"{label} for {key}: {counts.get(key, 0)}" for key in expected if counts.get(key, 0) != 1
    ]
    problems += [
        f"{label} for {key}, which should have none" for key in counts if key not in expected
    ]
    return problems


async def test_relay_kills_mid_stream_lose_no_event_and_duplicates_are_absorbed(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("AGORA_FAULT_SEED") or random.randrange(2**32))
    print(f"\nrelay fault run seed: {seed} (AGORA_FAULT_SEED={seed} replays it)")
    rng = random.Random(seed)
    logs = {
        "identity": tmp_path / "identity-faults.log",
        "notifications": tmp_path / "notifications-faults.log",
    }
    rates = {"identity": IDENTITY_KILL_RATE, "notifications": NOTIFICATIONS_KILL_RATE}
    customers = Customers(rng)
    external_kills: Counter[str] = Counter()

    def done() -> bool:
        return len(relay_kills(logs["identity"])) >= RELAY_KILLS

    def env(name: str) -> dict[str, str]:
        return faulty(rates[name], logs[name], on=not done())

    async def supervise(shop: Shop, stop: asyncio.Event) -> None:
        """Restarts whichever service died; SIGKILLs one at a random moment while it serves."""
        loop = asyncio.get_running_loop()
        next_kill: dict[str, float | None] = dict.fromkeys(logs)
        while not stop.is_set():
            await asyncio.sleep(0.05)
            for name in logs:
                process = shop.running[name]
                status = process.process.poll()
                if status is not None:
                    if status != -signal.SIGKILL:
                        raise AssertionError(f"{name} exited with {status}:\n{process.tail()}")
                    shop.start(name, env(name), wait=False)
                    next_kill[name] = None
                elif next_kill[name] is None:
                    if (
                        await asyncio.to_thread(health_status, process.address, "", 0.5)
                        == "SERVING"
                    ):
                        next_kill[name] = loop.time() + rng.uniform(*EXTERNAL_KILL_AFTER_S[name])
                elif not done() and loop.time() >= (next_kill[name] or 0.0):
                    shop.kill(name)
                    external_kills[name] += 1
                    shop.start(name, env(name), wait=False)
                    next_kill[name] = None

    with running_shop(
        tmp_path / "shop",
        only=("identity", "notifications"),
        service_env={name: env(name) for name in logs},
    ) as shop:
        async with shop.clients() as clients:
            stop = asyncio.Event()
            async with asyncio.TaskGroup() as group:
                group.create_task(supervise(shop, stop))
                try:
                    for _ in range(MAX_ROUNDS):
                        await asyncio.gather(
                            *(customers.sign_up(clients) for _ in range(SIGN_UPS_PER_ROUND))
                        )
                        if done():
                            break
                finally:
                    stop.set()
            # From here on without faults, so everything settles.
            for name in logs:
                shop.kill(name)
                shop.start(name, faulty("0", logs[name], on=False))
            notifications = await wait_for_notifications(clients, len(customers.users))
            sent = await sent_events_per_notification(shop, len(notifications))
            stored = await shop.events("identity")
            dead = await dead_letter_count(shop)

    users = [user.name for user in customers.users]
    signed_up: dict[str, set[str]] = {}
    for event in stored:
        user = identity_events.UserSignedUp.FromString(event.data).user.name
        signed_up.setdefault(user, set()).add(event.event_id)
    welcomes = Counter(n.recipient for n in notifications if n.event_type == WELCOME)
    problems = once_each(
        "UserSignedUp events", {u: len(ids) for u, ids in signed_up.items()}, users
    )
    problems += once_each("welcome notifications", welcomes, users)
    problems += delivery_problems(shop, notifications, sent)
    identity_kills = relay_kills(logs["identity"])
    notifications_kills = relay_kills(logs["notifications"])
    report = {
        "seed": seed,
        "sign_ups": len(users),
        "identity_relay_kills_mid_stream": len(identity_kills),
        "identity_relay_kills_by_unmarked_events": dict(sorted(Counter(identity_kills).items())),
        "notifications_relay_kills_mid_stream": len(notifications_kills),
        "external_kills": dict(external_kills),
        "identity_stream_messages": len(stored),
        "identity_stream_distinct_events": len({e.event_id for e in stored}),
        "notifications": len(notifications),
        "dead_letters": dead,
        "problems": problems,
    }
    print(json.dumps(report, indent=2))
    assert problems == []
    assert dead == 0
    assert len(identity_kills) >= RELAY_KILLS
    # Republished within the stream's duplicate window, so the broker kept one copy each.
    assert len(stored) == len({e.event_id for e in stored})


async def test_broker_restarts_lose_no_event_and_duplicates_are_absorbed(tmp_path: Path) -> None:
    seed = int(os.environ.get("AGORA_FAULT_SEED") or random.randrange(2**32))
    print(f"\nbroker fault run seed: {seed} (AGORA_FAULT_SEED={seed} replays it)")
    rng = random.Random(seed)
    customers = Customers(rng)
    restarts: Counter[str] = Counter()

    async def restart_broker(shop: Shop, stop: asyncio.Event) -> None:
        """Crashes (SIGKILL) or stops (SIGTERM) nats-server, then starts it again."""
        while not stop.is_set() and sum(restarts.values()) < BROKER_RESTARTS:
            await asyncio.sleep(rng.uniform(*BROKER_UP_S))
            how = rng.choice(("killed", "stopped"))
            if how == "killed":
                shop.broker.kill()
            else:
                shop.broker.stop()
            await asyncio.sleep(rng.uniform(0.2, 2.0))
            shop.broker.start()  # from the main thread: the server lives as long as the test
            await asyncio.to_thread(shop.broker.wait_ready)
            restarts[how] += 1

    with running_shop(
        tmp_path / "shop",
        with_notifications=True,
        payments_env={"PAYMENTS_PROCESSOR_TIMEOUT_SECONDS": "0.5"},
    ) as shop:
        async with shop.clients() as clients:
            await clients.stock(INITIAL_STOCK)
            for _ in range(6):
                await customers.sign_up(clients)
            stop = asyncio.Event()
            async with asyncio.TaskGroup() as group:
                broker = group.create_task(restart_broker(shop, stop))
                try:
                    for _ in range(MAX_ROUNDS):
                        await asyncio.gather(
                            customers.sign_up(clients),
                            *(customers.order(clients) for _ in range(ORDERS_PER_ROUND)),
                        )
                        if broker.done():
                            break
                        await asyncio.sleep(0.5)
                finally:
                    stop.set()
            finals = await clients.finals(customers.orders, SETTLE_S)
            invariant_problems = await clients.invariant_violations(finals, INITIAL_STOCK)
            event_problems, published = await shop.order_event_violations(finals, SETTLE_S)
            refunds = [
                payment.name
                for order in finals
                for payment in await clients.payments_of(order.name)
                if payment.state == payment_pb2.PAYMENT_STATE_REFUNDED
            ]
            confirmed = [o.name for o in finals if was_confirmed(o)]
            cancelled = [o.name for o in finals if o.state == order_pb2.ORDER_STATE_CANCELLED]
            expected = len(customers.users) + len(confirmed) + len(cancelled) + len(refunds)
            notifications = await wait_for_notifications(clients, expected)
            sent = await sent_events_per_notification(shop, len(notifications))
            order_of = {event.event_id: event.order_name() for event in await shop.events("orders")}
            dead = await dead_letter_count(shop)
            lag_logged = sum(
                sum("outbox lag" in line for line in process.log_lines())
                for process in shop.processes()
            )

    by_type: dict[str, Counter[str]] = {}
    for notice in notifications:
        about = order_of.get(notice.event_id, notice.recipient)
        by_type.setdefault(notice.event_type, Counter())[about] += 1
    problems = list(invariant_problems) + event_problems
    problems += once_each(
        "welcome notifications", by_type.get(WELCOME, Counter()), [u.name for u in customers.users]
    )
    problems += once_each("confirmations", by_type.get(CONFIRMED, Counter()), confirmed)
    problems += once_each("cancellation notices", by_type.get(CANCELLED, Counter()), cancelled)
    refund_notices = sum(by_type.get(REFUNDED, Counter()).values())
    if refund_notices != len(refunds):
        problems.append(f"{refund_notices} refund notices for {len(refunds)} refunds")
    problems += delivery_problems(shop, notifications, sent)
    report = {
        "seed": seed,
        "broker_restarts": dict(restarts),
        "users": len(customers.users),
        "orders": len(finals),
        "outcomes": outcomes(finals),
        "order_events_in_stream": published,
        "notifications": len(notifications),
        "refunds": len(refunds),
        "outbox_lag_log_lines": lag_logged,
        "dead_letters": dead,
        "problems": problems,
    }
    print(json.dumps(report, indent=2))
    assert problems == []
    assert dead == 0
    assert sum(restarts.values()) >= BROKER_RESTARTS
