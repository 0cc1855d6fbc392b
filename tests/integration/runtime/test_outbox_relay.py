"""The outbox and its relay against a real database and a real NATS JetStream server.

A tiny service of its own (one ``things`` table, an outbox, events that are the orders
contract's ``OrderPlaced`` messages) so the runtime is tested without any real service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agora.orders.v1 import events_pb2, order_pb2
from runtime import context, db
from runtime.broker import Broker, stream_name
from runtime.outbox import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    MSG_ID_HEADER,
    SOURCE_HEADER,
    TIME_HEADER,
    TRACEPARENT_HEADER,
    OutboxWriter,
    outbox_table,
)
from runtime.relay import OutboxRelay
from runtime.unit_of_work import UnitOfWork
from tests.support.nats import NatsServer

SOURCE = "orders"
SUBJECT = "agora.orders.v1.OrderPlaced"
WAIT_S = 20.0
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

metadata = sa.MetaData()
things = sa.Table("things", metadata, sa.Column("name", sa.String(63), primary_key=True))
outbox = outbox_table(metadata)


@dataclass(frozen=True)
class ThingMade:
    name: str


def to_messages(event: object) -> Sequence[tuple[Message, str]]:
    assert isinstance(event, ThingMade)
    return [(events_pb2.OrderPlaced(order=order_pb2.Order(name=event.name)), event.name)]


class UnitOfWorkWithThings(db.SqlAlchemyUnitOfWork, UnitOfWork):
    request_log = db.request_log_table(sa.MetaData())

    def _bind(self, connection: AsyncConnection) -> None:
        self.connection = connection


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def make(engine: AsyncEngine, *names: str, commit: bool = True) -> None:
    """One transaction that stores ``names`` and emits one event per name."""
    uow = UnitOfWorkWithThings(engine, OutboxWriter(outbox, SOURCE, to_messages))
    async with uow.writing():
        for name in names:
            await uow.connection.execute(sa.insert(things).values(name=name))
            uow.emit(ThingMade(name))
        if commit:
            await uow.commit()


async def unsent(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(outbox.c.sent_time.is_(None))
        return int((await connection.execute(query)).scalar_one())


@contextlib.asynccontextmanager
async def relaying(engine: AsyncEngine, server: NatsServer) -> AsyncIterator[OutboxRelay]:
    broker = Broker(server.url, SOURCE, timeout=1.0)
    relay = OutboxRelay(engine, outbox, broker, poll_interval=0.05, lag_log_interval=0.0)
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await broker.close()


async def wait_all_sent(engine: AsyncEngine) -> None:
    async with asyncio.timeout(WAIT_S):
        while True:
            if not await unsent(engine):
                return
            await asyncio.sleep(0.05)


async def stream_messages(server: NatsServer) -> list[Any]:
    """Every message in the source's stream, in stream order."""
    client = await nats.connect(server.url)
    try:
        jetstream = client.jetstream()
        info = await jetstream.stream_info(stream_name(SOURCE))
        subscription = await jetstream.pull_subscribe(
            SUBJECT, stream=stream_name(SOURCE), config=None
        )
        messages: list[Any] = []
        while len(messages) < info.state.messages:
            messages.extend(await subscription.fetch(info.state.messages, timeout=5))
        return messages
    finally:
        await client.close()


async def test_committed_events_are_published_in_order_with_their_envelope(
    engine: AsyncEngine, nats_server: NatsServer
) -> None:
    async def traced() -> None:  # in a task of its own, so the trace context stays there
        context.use_traceparent(TRACE)
        await make(engine, "orders/a1", "orders/b1")
        await make(engine, "orders/a2")

    await asyncio.create_task(traced())
    async with relaying(engine, nats_server) as relay:
        await wait_all_sent(engine)
        assert relay.published == 3
    messages = await stream_messages(nats_server)
    names = [events_pb2.OrderPlaced.FromString(m.data).order.name for m in messages]
    assert names == ["orders/a1", "orders/b1", "orders/a2"]  # commit order
    first = messages[0].headers
    assert first[MSG_ID_HEADER] == first[EVENT_ID_HEADER]
    assert first[EVENT_TYPE_HEADER] == "agora.orders.v1.OrderPlaced"
    assert first[SOURCE_HEADER] == SOURCE
    assert first[TIME_HEADER].endswith("Z")
    assert first[TRACEPARENT_HEADER] == TRACE
    assert len({m.headers[EVENT_ID_HEADER] for m in messages}) == 3


async def test_a_rolled_back_transaction_publishes_nothing(
    engine: AsyncEngine, nats_server: NatsServer
) -> None:
    await make(engine, "orders/kept")
    await make(engine, "orders/lost", commit=False)
    async with relaying(engine, nats_server):
        await wait_all_sent(engine)
    names = [
        events_pb2.OrderPlaced.FromString(m.data).order.name
        for m in await stream_messages(nats_server)
    ]
    assert names == ["orders/kept"]


async def test_an_event_published_twice_is_stored_once(
    engine: AsyncEngine, nats_server: NatsServer
) -> None:
    # A relay that crashed after the broker's ack but before marking the row sent
    # publishes it again; the broker drops it by its Nats-Msg-Id.
    await make(engine, "orders/once")
    async with relaying(engine, nats_server):
        await wait_all_sent(engine)
    async with engine.begin() as connection:
        await connection.execute(sa.update(outbox).values(sent_time=None))
    async with relaying(engine, nats_server):
        await wait_all_sent(engine)
    assert len(await stream_messages(nats_server)) == 1


async def test_while_the_broker_is_down_events_wait_and_the_lag_is_logged(
    engine: AsyncEngine, nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    nats_server.stop()
    caplog.set_level(logging.WARNING, logger="agora.outbox")
    async with relaying(engine, nats_server) as relay:
        await make(engine, "orders/w1", "orders/w2")
        async with asyncio.timeout(WAIT_S):
            while True:
                if any(r.getMessage().startswith("outbox lag") for r in caplog.records):
                    break
                await asyncio.sleep(0.05)
        assert await unsent(engine) == 2
        lag = next(r for r in caplog.records if r.getMessage().startswith("outbox lag"))
        assert getattr(lag, "pending_events", None) == 2
        assert await relay.pending() >= (2, 0.0)

        # From this thread: a server started by a worker thread dies with it.
        nats_server.start()
        nats_server.wait_ready()
        await wait_all_sent(engine)
    names = [
        events_pb2.OrderPlaced.FromString(m.data).order.name
        for m in await stream_messages(nats_server)
    ]
    assert names == ["orders/w1", "orders/w2"]


async def test_declaring_the_stream_twice_changes_nothing(nats_server: NatsServer) -> None:
    first, second = Broker(nats_server.url, SOURCE), Broker(nats_server.url, SOURCE)
    try:
        await first.ensure_stream()
        await second.ensure_stream()
        assert await first.publish(SUBJECT, b"x", {MSG_ID_HEADER: "e1"})
        assert not await second.publish(SUBJECT, b"x", {MSG_ID_HEADER: "e1"})  # duplicate
    finally:
        await first.close()
        await second.close()
    assert len(await stream_messages(nats_server)) == 1


async def test_a_lost_broker_is_a_warning_and_closing_is_not(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agora.broker")
    closed, lost = Broker(nats_server.url, SOURCE), Broker(nats_server.url, SOURCE)
    await closed.ensure_stream()
    await lost.ensure_stream()
    await closed.close()
    nats_server.kill()
    async with asyncio.timeout(10):
        while True:
            if any(r.getMessage() == "broker disconnected" for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    await lost.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["broker disconnected"]
