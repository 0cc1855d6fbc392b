"""``python -m runtime.deadletters`` against a real NATS JetStream server.

Events are dead-lettered by the consuming service of ``test_consumer`` (its ledger),
and the command runs as a process, as an operator runs it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime import db
from runtime.broker import DEAD_LETTER_STREAM, Broker, stream_name
from runtime.consumer import CONSUMER_HEADER, DELIVERIES_HEADER, REASON_HEADER, SUBJECT_HEADER
from runtime.outbox import EVENT_ID_HEADER, MSG_ID_HEADER, TRACEPARENT_HEADER
from tests.integration.runtime.test_consumer import (
    ALWAYS,
    CONSUMER,
    MAX_DELIVER,
    SOURCE,
    SUBJECT,
    TRACE,
    WAIT_S,
    Ledger,
    consuming,
    idle,
    metadata,
    names,
    payload,
    publish,
    settled,
    until,
)
from tests.support.nats import NatsServer

#: A second consumer of the orders stream, which handles every event at once.
AUDIT = "audit-orders"
REASON = "RuntimeError: ledger closed for orders/stuck until further notice"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def producer(nats_server: NatsServer) -> AsyncIterator[Broker]:
    broker = Broker(nats_server.url, SOURCE, timeout=2.0)
    yield broker
    await broker.close()


async def deadletters(url: str, *args: str) -> tuple[int, list[str], str]:
    """Runs the command; its exit status, its output lines and its error output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtime.deadletters",
        "--nats-url",
        url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(WAIT_S):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines(), err.decode()


async def dead_letter_count(producer: Broker) -> int:
    jetstream = await producer.jetstream()
    return int((await jetstream.stream_info(DEAD_LETTER_STREAM)).state.messages)


async def test_a_dead_letter_is_listed_then_replayed_to_the_fixed_consumer_exactly_once(
    engine: AsyncEngine, nats_server: NatsServer, producer: Broker
) -> None:
    stuck = await publish(producer, "orders/stuck")
    await publish(producer, "orders/fine")
    broken = Ledger(failures={"orders/stuck": ALWAYS})
    audit = Ledger(consumer=AUDIT)
    async with consuming(engine, nats_server, audit) as auditor:
        async with consuming(engine, nats_server, broken) as consumer:
            await until(lambda: settled(producer), "the ledger gave up on orders/stuck")
            await until(lambda: settled(producer, AUDIT), "the audit handled both")
            assert consumer.dead_lettered == 1
        await until(lambda: idle(producer), "no pull request of the stopped ledger waits")

        status, lines, _ = await deadletters(nats_server.url, "list")
        assert status == 0
        [line] = lines
        fields = line.split("\t")
        assert fields[:6] == ["1", CONSUMER, SUBJECT, stuck, str(MAX_DELIVER), REASON]
        assert fields[6].endswith("Z")
        assert (await deadletters(nats_server.url, "list", "--consumer", AUDIT))[:2] == (0, [])

        fixed = Ledger()  # the ledger, its bug fixed and redeployed
        async with consuming(engine, nats_server, fixed) as redeployed:
            status, lines, _ = await deadletters(nats_server.url, "replay", "--all")
            assert status == 0
            assert lines == [f"replayed 1 ({SUBJECT} {stuck}) to {stream_name(SOURCE)}"]
            await until(lambda: settled(producer), "the ledger handled the replayed event")
            await until(lambda: settled(producer, AUDIT), "the audit got the replayed event")
            assert redeployed.handled == 1
        assert fixed.attempts == [("orders/stuck", 1)]
        # The audit had handled it already: its inbox dropped the replayed copy.
        assert auditor.sequences == [1, 2, 3]
        assert audit.deliveries("orders/stuck") == [1]

    assert await names(engine, CONSUMER) == ["orders/fine", "orders/stuck"]
    assert await names(engine, AUDIT) == ["orders/stuck", "orders/fine"]
    assert await dead_letter_count(producer) == 0
    assert (await deadletters(nats_server.url, "list"))[:2] == (0, [])

    # The replayed message: the event's own envelope and payload, a new Nats-Msg-Id.
    jetstream = await producer.jetstream()
    replayed = await jetstream.get_msg(stream_name(SOURCE), 3)
    assert replayed.subject == SUBJECT
    assert replayed.data == payload("orders/stuck")
    headers = replayed.headers or {}
    assert headers[EVENT_ID_HEADER] == stuck
    assert headers[TRACEPARENT_HEADER] == TRACE
    assert headers[MSG_ID_HEADER] == f"{stuck}:replay:1"
    for header in (REASON_HEADER, CONSUMER_HEADER, SUBJECT_HEADER, DELIVERIES_HEADER):
        assert header not in headers


async def test_a_replayed_event_that_fails_again_is_dead_lettered_again_then_deleted(
    engine: AsyncEngine, nats_server: NatsServer, producer: Broker
) -> None:
    stuck = await publish(producer, "orders/stuck")
    broken = Ledger(failures={"orders/stuck": ALWAYS})
    async with consuming(engine, nats_server, broken) as consumer:
        await until(lambda: settled(producer), "the ledger gave up on orders/stuck")
        assert (await deadletters(nats_server.url, "replay", "99"))[0] == 2  # not there

        status, lines, _ = await deadletters(nats_server.url, "replay", "1", "--consumer", CONSUMER)
        assert status == 0
        assert len(lines) == 1

        async def dead_lettered_again() -> bool:
            return consumer.dead_lettered == 2 and await settled(producer)

        await until(dead_lettered_again, "the replayed event dead-lettered again")
    assert broken.deliveries("orders/stuck") == [1, 2, 3, 1, 2, 3]

    # Within the broker's duplicate window, and still not dropped as a duplicate.
    status, lines, _ = await deadletters(nats_server.url, "list", "--consumer", CONSUMER)
    assert status == 0
    [line] = lines
    assert line.split("\t")[:4] == ["2", CONSUMER, SUBJECT, stuck]

    assert (await deadletters(nats_server.url, "delete", "1"))[0] == 2  # replayed: gone
    status, lines, _ = await deadletters(nats_server.url, "delete", "2")
    assert status == 0
    assert lines == [f"deleted 2 ({SUBJECT} {stuck})"]
    assert await dead_letter_count(producer) == 0
    assert await names(engine) == []  # every failed handling was rolled back


async def test_an_absent_broker_and_bad_arguments_have_their_own_exit_status() -> None:
    status, lines, err = await deadletters("nats://127.0.0.1:1", "list")
    assert (status, lines) == (1, [])
    assert "the broker is unavailable" in err
    assert (await deadletters("nats://127.0.0.1:1", "replay"))[0] == 2  # --all or SEQ
    assert (await deadletters("nats://127.0.0.1:1", "replay", "--all", "3"))[0] == 2
    assert (await deadletters("nats://127.0.0.1:1", "delete", "zero"))[0] == 2
    assert (await deadletters("nats://127.0.0.1:1", "list", "--consumer", "a.*"))[0] == 2
