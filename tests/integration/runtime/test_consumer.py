"""Event consumers against a real database and a real NATS JetStream server.

A tiny consuming service of its own: a ``ledger`` table its handler writes a row to per
event, an inbox, and a unit of work with both. The orders contract's ``OrderPlaced``
messages are published into the orders stream with the envelope the outbox relay sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo, RawStreamMsg
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agora.orders.v1 import events_pb2, order_pb2
from runtime import context, db
from runtime.broker import DEAD_LETTER_STREAM, Broker, stream_name
from runtime.consumer import (
    CONSUMER_HEADER,
    DELIVERIES_HEADER,
    REASON_HEADER,
    SUBJECT_HEADER,
    Event,
    EventConsumer,
    Subscription,
)
from runtime.outbox import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    MSG_ID_HEADER,
    SOURCE_HEADER,
    TIME_HEADER,
    TRACEPARENT_HEADER,
)
from runtime.unit_of_work import UnitOfWork
from tests.support.nats import NatsServer

SOURCE = "orders"
SUBJECT = "agora.orders.v1.OrderPlaced"
CONSUMER = "ledger-orders"
WAIT_S = 15.0  # bound on every wait; nothing here depends on how fast the machine is
#: Longer than any wait: a redelivery seen within one came from a nak, not from a lost ack.
ACK_WAIT_S = 60.0
MAX_DELIVER = 3
BACKOFF = (0.05, 0.1)
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTHER_TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ALWAYS = 1_000_000

metadata = sa.MetaData()
ledger_table = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("consumer", sa.String(64), nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("traceparent", sa.String(55), nullable=False),
)
inbox = db.inbox_table(metadata)


class LedgerUnitOfWork(db.SqlAlchemyUnitOfWork, UnitOfWork):
    request_log = db.request_log_table(sa.MetaData())
    inbox_table = inbox

    def _bind(self, connection: AsyncConnection) -> None:
        self.connection = connection


@dataclass
class Ledger:
    """The consuming service's handler: writes a row per event, fails when told to."""

    consumer: str = CONSUMER
    #: How many more deliveries of an order's event fail (ALWAYS: every one).
    failures: dict[str, int] = field(default_factory=dict)
    #: Every call: the order's name and the delivery count.
    attempts: list[tuple[str, int]] = field(default_factory=list)

    async def record(self, event: Event, uow: Any) -> None:
        assert isinstance(event.message, events_pb2.OrderPlaced)
        name = event.message.order.name
        self.attempts.append((name, event.deliveries))
        # Written before failing: a failed handling must leave nothing behind.
        await uow.connection.execute(
            sa.insert(ledger_table).values(
                consumer=self.consumer,
                name=name,
                event_id=event.id,
                traceparent=context.traceparent() or "",
            )
        )
        left = self.failures.get(name, 0)
        if left:
            self.failures[name] = left - 1
            raise RuntimeError(f"ledger closed for {name}\nuntil further notice")

    def deliveries(self, name: str) -> list[int]:
        return [deliveries for attempted, deliveries in self.attempts if attempted == name]


class RecordingConsumer(EventConsumer):
    """An EventConsumer that remembers the stream sequence of every delivery it got."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sequences: list[int] = []

    async def handle(self, message: Msg) -> None:
        self.sequences.append(message.metadata.sequence.stream)
        await super().handle(message)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def producer(nats_server: NatsServer) -> AsyncIterator[Broker]:
    """The orders service's broker connection, publishing into the orders stream."""
    broker = Broker(nats_server.url, SOURCE, timeout=2.0)
    yield broker
    await broker.close()


def payload(name: str) -> bytes:
    return events_pb2.OrderPlaced(order=order_pb2.Order(name=name)).SerializeToString()


def envelope(event_id: str, *, msg_id: str | None = None, trace: str = TRACE) -> dict[str, str]:
    """The headers the outbox relay publishes an event with."""
    return {
        MSG_ID_HEADER: msg_id or event_id,
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: SUBJECT,
        SOURCE_HEADER: SOURCE,
        TIME_HEADER: "2025-01-02T03:04:05Z",
        TRACEPARENT_HEADER: trace,
    }


async def publish(
    producer: Broker,
    name: str,
    *,
    event_id: str | None = None,
    msg_id: str | None = None,
    trace: str = TRACE,
) -> str:
    """Publishes an ``OrderPlaced`` for order ``name``; returns its event id."""
    event_id = event_id or str(uuid.uuid4())
    headers = envelope(event_id, msg_id=msg_id, trace=trace)
    assert await producer.publish(SUBJECT, payload(name), headers), "dropped as a duplicate"
    return event_id


@contextlib.asynccontextmanager
async def consuming(
    engine: AsyncEngine,
    server: NatsServer,
    ledger: Ledger,
    *,
    max_deliver: int = MAX_DELIVER,
    backoff: Sequence[float] = BACKOFF,
) -> AsyncIterator[RecordingConsumer]:
    """Runs the ledger's consumer in the background until the block ends."""
    broker = Broker(server.url, "ledger", timeout=1.0)
    consumer = RecordingConsumer(
        broker,
        Subscription(ledger.consumer, SOURCE, {events_pb2.OrderPlaced: ledger.record}),
        uow=lambda: LedgerUnitOfWork(engine),
        max_deliver=max_deliver,
        backoff=backoff,
        ack_wait=ACK_WAIT_S,
        fetch_wait=0.2,
        retry_delay=0.1,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # raises what the consumer died of, if it did
        await broker.close()


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Waits, at most WAIT_S, for ``condition`` to hold."""
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                if await condition():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT_S}s: {what}") from None


async def ledger_rows(engine: AsyncEngine, consumer: str = CONSUMER) -> list[tuple[str, str]]:
    """The ledger's rows of ``consumer``: the order's name and the traceparent seen."""
    query = (
        sa.select(ledger_table.c.name, ledger_table.c.traceparent)
        .where(ledger_table.c.consumer == consumer)
        .order_by(ledger_table.c.id)
    )
    async with engine.connect() as connection:
        return [(row.name, row.traceparent) for row in await connection.execute(query)]


async def names(engine: AsyncEngine, consumer: str = CONSUMER) -> list[str]:
    return [name for name, _ in await ledger_rows(engine, consumer)]


async def consumer_info(producer: Broker, consumer: str = CONSUMER) -> ConsumerInfo:
    jetstream = await producer.jetstream()
    info: ConsumerInfo = await jetstream.consumer_info(stream_name(SOURCE), consumer)
    return info


async def settled(producer: Broker, consumer: str = CONSUMER) -> bool:
    """True once every message in the stream was delivered to ``consumer`` and acknowledged
    (or terminated)."""
    try:
        info = await consumer_info(producer, consumer)
    except NotFoundError:  # not declared yet
        return False
    # The consumer's pending count can trail a publish ack for a moment; the stream's last
    # sequence does not, so the consumer must also have been handed that message.
    stream = await (await producer.jetstream()).stream_info(stream_name(SOURCE))
    delivered = info.delivered.stream_seq if info.delivered is not None else 0
    return (
        (delivered or 0) >= stream.state.last_seq
        and info.num_pending == 0
        and info.num_ack_pending == 0
    )


async def idle(producer: Broker, consumer: str = CONSUMER) -> bool:
    """True once no pull request of ``consumer`` waits at the server: a stopped consumer's
    last fetch has expired, so nothing published now is delivered to it."""
    return (await consumer_info(producer, consumer)).num_waiting == 0


async def dead_letters(producer: Broker) -> list[RawStreamMsg]:
    """Every message in the dead-letter stream, in stream order."""
    jetstream = await producer.jetstream()
    try:
        state = (await jetstream.stream_info(DEAD_LETTER_STREAM)).state
    except NotFoundError:
        return []
    letters: list[RawStreamMsg] = []
    for seq in range(max(state.first_seq, 1), state.last_seq + 1):
        with contextlib.suppress(NotFoundError):  # a deleted one leaves a gap
            letters.append(await jetstream.get_msg(DEAD_LETTER_STREAM, seq))
    return letters


async def test_each_event_is_handled_once_and_acknowledged(
    engine: AsyncEngine, nats_server: NatsServer, producer: Broker
) -> None:
    ledger = Ledger()
    for name in ("orders/a1", "orders/a2", "orders/a3"):
        await publish(producer, name)
    async with consuming(engine, nats_server, ledger) as consumer:
        await until(lambda: settled(producer), "every event acknowledged")
        assert await names(engine) == ["orders/a1", "orders/a2", "orders/a3"]
        assert consumer.handled == 3
        assert consumer.sequences == [1, 2, 3]  # each delivered once
    assert ledger.attempts == [("orders/a1", 1), ("orders/a2", 1), ("orders/a3", 1)]
    info = await consumer_info(producer)
    assert info.ack_floor is not None
    assert info.ack_floor.stream_seq == 3
    assert info.num_redelivered == 0
    assert await dead_letters(producer) == []


async def test_an_event_delivered_twice_changes_the_table_once(
    engine: AsyncEngine, nats_server: NatsServer, producer: Broker
) -> None:
    # Two messages of one event (as after a relay that republished it once the broker's
    # duplicate window had passed): the inbox drops the second.
    event_id = await publish(producer, "orders/twice", msg_id="first-publish")
    await publish(producer, "orders/twice", event_id=event_id, msg_id="second-publish")
    await publish(producer, "orders/after")
    ledger = Ledger()
    async with consuming(engine, nats_server, ledger) as consumer:
        await until(lambda: settled(producer), "every event acknowledged")
        assert consumer.sequences == [1, 2, 3]  # both copies were delivered...
        assert consumer.handled == 2
    assert await names(engine) == ["orders/twice", "orders/after"]  # ...and handled once
    assert ledger.deliveries("orders/twice") == [1]
    async with engine.connect() as connection:
        recorded = (await connection.execute(sa.select(inbox.c.consumer, inbox.c.event_id))).all()
    assert (CONSUMER, event_id) in [tuple(row) for row in recorded]
    assert len(recorded) == 2


async def test_a_failing_handler_is_redelivered_with_backoff_and_succeeds_later(
    engine: AsyncEngine,
    nats_server: NatsServer,
    producer: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="agora.consumer")
    ledger = Ledger(failures={"orders/flaky": MAX_DELIVER - 1})
    await publish(producer, "orders/flaky")
    async with consuming(engine, nats_server, ledger) as consumer:
        await until(lambda: settled(producer), "the event acknowledged")
        assert consumer.handled == 1
        assert consumer.dead_lettered == 0
    # The failed attempts wrote their row too, and it was rolled back each time.
    assert await names(engine) == ["orders/flaky"]
    assert ledger.deliveries("orders/flaky") == [1, 2, 3]
    retries = [r for r in caplog.records if r.getMessage() == "event handling failed; redelivering"]
    # Redelivered after the backoff of each attempt (ack_wait is far longer than the wait).
    assert [getattr(r, "delay_seconds", None) for r in retries] == list(BACKOFF)
    assert [getattr(r, "deliveries", None) for r in retries] == [1, 2]
    assert await dead_letters(producer) == []


async def test_an_event_that_always_fails_is_dead_lettered_and_the_consumer_moves_on(
    engine: AsyncEngine, nats_server: NatsServer, producer: Broker
) -> None:
    ledger = Ledger(failures={"orders/doomed": ALWAYS})
    doomed = await publish(producer, "orders/doomed")
    await publish(producer, "orders/next")
    async with consuming(engine, nats_server, ledger) as consumer:
        await until(lambda: settled(producer), "every event acknowledged or dead-lettered")
        assert consumer.dead_lettered == 1
        await publish(producer, "orders/later")
        await until(lambda: settled(producer), "a later event acknowledged")
        assert consumer.handled == 2
    assert await names(engine) == ["orders/next", "orders/later"]
    assert ledger.deliveries("orders/doomed") == [1, 2, 3]  # max_deliver, then given up on

    [letter] = await dead_letters(producer)
    assert letter.subject == f"agora.deadletters.{CONSUMER}"
    assert letter.data == payload("orders/doomed")  # the original payload
    headers = letter.headers or {}
    assert headers[REASON_HEADER] == (
        "RuntimeError: ledger closed for orders/doomed until further notice"
    )
    assert headers[CONSUMER_HEADER] == CONSUMER
    assert headers[SUBJECT_HEADER] == SUBJECT
    assert headers[DELIVERIES_HEADER] == str(MAX_DELIVER)
    # The event's own envelope travels with it.
    assert headers[EVENT_ID_HEADER] == doomed
    assert headers[EVENT_TYPE_HEADER] == SUBJECT
    assert headers[SOURCE_HEADER] == SOURCE
    assert headers[TRACEPARENT_HEADER] == TRACE
    info = await consumer_info(producer)
    assert info.ack_floor is not None
    assert info.ack_floor.stream_seq == 3


async def test_an_undecodable_event_or_one_without_an_id_is_dead_lettered_at_once(
    engine: AsyncEngine, nats_server: NatsServer, producer: Broker
) -> None:
    garbled = str(uuid.uuid4())
    assert await producer.publish(SUBJECT, b"\xff\xff\xff", envelope(garbled))
    anonymous = envelope("unused")
    del anonymous[EVENT_ID_HEADER]
    assert await producer.publish(SUBJECT, payload("orders/anonymous"), anonymous)
    await publish(producer, "orders/fine")
    ledger = Ledger()
    async with consuming(engine, nats_server, ledger) as consumer:
        await until(lambda: settled(producer), "every message acknowledged or dead-lettered")
        assert consumer.dead_lettered == 2
        assert consumer.sequences == [1, 2, 3]  # no redelivery before giving up
    assert ledger.attempts == [("orders/fine", 1)]  # the handler never saw the others
    assert await names(engine) == ["orders/fine"]

    first, second = await dead_letters(producer)
    assert first.data == b"\xff\xff\xff"
    assert (first.headers or {})[EVENT_ID_HEADER] == garbled
    assert (first.headers or {})[REASON_HEADER].startswith(
        "poison: cannot decode agora.orders.v1.OrderPlaced"
    )
    assert second.data == payload("orders/anonymous")
    assert (second.headers or {})[REASON_HEADER] == f"poison: no {EVENT_ID_HEADER} header"
    for letter in (first, second):
        assert (letter.headers or {})[DELIVERIES_HEADER] == "1"
        assert (letter.headers or {})[CONSUMER_HEADER] == CONSUMER
        assert (letter.headers or {})[SUBJECT_HEADER] == SUBJECT


async def test_a_restarted_consumer_resumes_after_the_last_acknowledged_event(
    engine: AsyncEngine, nats_server: NatsServer, producer: Broker
) -> None:
    await publish(producer, "orders/r1")
    await publish(producer, "orders/r2")
    async with consuming(engine, nats_server, Ledger()):
        await until(lambda: settled(producer), "the first events acknowledged")
    await until(lambda: idle(producer), "no pull request of the stopped consumer waits")
    await publish(producer, "orders/r3")

    ledger = Ledger()
    async with consuming(engine, nats_server, ledger) as restarted:
        await until(lambda: settled(producer), "the new event acknowledged")
        # Nothing before it is handled again. It is usually not even delivered again, but
        # under load JetStream has been seen to redeliver the acknowledged events once to
        # the new subscription; the inbox drops them, which is the promise that matters.
        assert restarted.sequences[-1] == 3
        assert restarted.handled == 1
    assert ledger.attempts == [("orders/r3", 1)]
    assert await names(engine) == ["orders/r1", "orders/r2", "orders/r3"]


async def test_the_handler_runs_in_the_trace_of_its_event(
    engine: AsyncEngine, nats_server: NatsServer, producer: Broker
) -> None:
    await publish(producer, "orders/t1", trace=TRACE)
    await publish(producer, "orders/t2", trace=OTHER_TRACE)
    await publish(producer, "orders/t3", trace="")  # from before traces were recorded
    async with consuming(engine, nats_server, Ledger()):
        await until(lambda: settled(producer), "every event acknowledged")
    # Handled one after the other in one task: an event without a trace gets none, not
    # the trace of the event before it.
    assert await ledger_rows(engine) == [
        ("orders/t1", TRACE),
        ("orders/t2", OTHER_TRACE),
        ("orders/t3", ""),
    ]


async def test_the_consumer_resumes_by_itself_when_the_broker_comes_back(
    engine: AsyncEngine,
    nats_server: NatsServer,
    producer: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="agora.consumer")
    ledger = Ledger()
    await publish(producer, "orders/before")
    async with consuming(engine, nats_server, ledger) as consumer:
        await until(lambda: settled(producer), "the first event acknowledged")

        nats_server.stop()

        async def waiting() -> bool:
            return any(r.getMessage() == "consumer waiting for the broker" for r in caplog.records)

        await until(waiting, "the consumer noticed the broker is gone")
        # From this thread: a server started by a worker thread dies with it.
        nats_server.start()
        nats_server.wait_ready()

        await publish(producer, "orders/after")
        await until(lambda: settled(producer), "the event published after the restart handled")
        assert consumer.handled == 2
    assert ledger.attempts == [("orders/before", 1), ("orders/after", 1)]
    assert await names(engine) == ["orders/before", "orders/after"]
