"""NATS JetStream: a service's connection, its event stream, and publishing with acks.

Every emitting service publishes its events (``events.proto``) on subjects named after
the message, ``agora.<service>.v1.<Event>``, into one stream per service,
``AGORA_<SERVICE>_EVENTS``, kept in files. The stream is declared at start-up, and
declaring it again with the same settings changes nothing, so any number of replicas
may start at once::

    broker = Broker(nats_url(), "orders")
    await broker.publish("agora.orders.v1.OrderPlaced", payload, headers)

Publishing waits for the stream's acknowledgement, which is what lets the outbox relay
mark an event sent. The broker being away is :class:`BrokerUnavailable`, raised at once;
the next call connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger("agora.broker")

NATS_URL_ENV = "NATS_URL"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
#: How long JetStream remembers a Nats-Msg-Id to drop a duplicate publish (seconds).
DUPLICATE_WINDOW = 120.0
#: How long events are kept in a stream (seconds): a consumer down for less loses nothing.
MAX_AGE = 7 * 24 * 3600.0


def nats_url(environ: Mapping[str, str] | None = None) -> str:
    """Where the broker is (``NATS_URL``); by default a local server on its usual port."""
    env = os.environ if environ is None else environ
    return env.get(NATS_URL_ENV) or DEFAULT_NATS_URL


def stream_name(source: str) -> str:
    return f"AGORA_{source.upper()}_EVENTS"


def stream_config(source: str) -> StreamConfig:
    """The stream of ``source``'s events: every subject of its v1 package, on disk."""
    return StreamConfig(
        name=stream_name(source),
        subjects=[f"agora.{source}.v1.>"],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW,
        max_age=MAX_AGE,
    )


#: Events a consumer gave up on, with the reason, kept until replayed or deleted.
DEAD_LETTER_STREAM = "AGORA_DEAD_LETTERS"
DEAD_LETTER_SUBJECTS = "agora.deadletters.>"


def dead_letter_config() -> StreamConfig:
    return StreamConfig(
        name=DEAD_LETTER_STREAM,
        subjects=[DEAD_LETTER_SUBJECTS],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW,
        max_age=MAX_AGE * 4,
    )


def raise_if_cancelled() -> None:
    """Re-raises a cancellation a client library swallowed and turned into an error.

    Jobs that retry on :class:`BrokerUnavailable` call it first, so a stopping service is
    not kept waiting by a retry loop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class BrokerUnavailable(Exception):
    """The broker could not be reached, or did not acknowledge in time."""


class Broker:
    """One service's connection to JetStream, made when first needed."""

    def __init__(self, url: str, source: str, *, timeout: float = 2.0) -> None:
        self.url = url
        self.source = source
        self._timeout = timeout
        self._client: Client | None = None
        self._jetstream: JetStreamContext | None = None
        self._stream_ready = False
        # Jobs sharing the broker (a relay, consumers) connect once, not once each.
        self._connecting = asyncio.Lock()
        # Set by close(): the disconnection that follows is ours, not news.
        self._closing = False

    async def _connect(self) -> JetStreamContext:
        """The JetStream context on a live connection, connecting if there is none.

        Reconnecting is ours, not the client library's: a lost connection is closed and
        the next call connects afresh, failing fast (BrokerUnavailable) while the broker
        is away, so the caller's backoff decides when to try again.
        """
        client = self._client
        if client is not None and client.is_connected and self._jetstream is not None:
            return self._jetstream
        async with self._connecting:
            return await self._reconnect()

    async def _reconnect(self) -> JetStreamContext:
        client = self._client
        if client is not None and client.is_connected and self._jetstream is not None:
            return self._jetstream  # another job connected while this one waited
        if client is not None:
            self._client, self._jetstream, self._stream_ready = None, None, False
            with contextlib.suppress(Exception):
                await client.close()
        try:
            client = await nats.connect(
                self.url,
                name=f"agora-{self.source}",
                connect_timeout=max(1, int(self._timeout)),
                allow_reconnect=False,
                # The library retries even a first connection in a loop; two attempts,
                # then NoServersError, so an absent broker is reported at once.
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                # Closing drains the subscriptions; bounded like every other call.
                drain_timeout=max(1, int(self._timeout)),
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
            )
        except Exception as error:
            raise BrokerUnavailable(f"cannot connect to {self.url}: {error}") from error
        self._client = client
        self._jetstream = client.jetstream(timeout=self._timeout)
        return self._jetstream

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context on a live connection (consumers use it directly).

        Raises:
            BrokerUnavailable: if the broker cannot be reached now.
        """
        return await self._connect()

    async def ensure_stream(self, config: StreamConfig | None = None) -> None:
        """Creates a stream (by default the service's own), or brings its settings up to
        date. Idempotent, so every replica and every consumer of it may call it."""
        jetstream = await self._connect()
        own = config is None
        config = config or stream_config(self.source)
        try:
            try:
                await jetstream.stream_info(config.name or "")
            except NotFoundError:
                await jetstream.add_stream(config)
                log.info("stream created", extra={"stream": config.name})
            else:
                await jetstream.update_stream(config)
        except BrokerUnavailable:
            raise
        except Exception as error:
            raise BrokerUnavailable(f"cannot declare stream {config.name}: {error}") from error
        if own:
            self._stream_ready = True

    async def publish(self, subject: str, payload: bytes, headers: Mapping[str, str]) -> bool:
        """Publishes and waits for the stream's ack; False if it was a dropped duplicate."""
        if not self._stream_ready:
            await self.ensure_stream()
        jetstream = await self._connect()
        try:
            ack = await jetstream.publish(
                subject,
                payload,
                timeout=self._timeout,
                stream=stream_name(self.source),
                headers=dict(headers),
            )
        except Exception as error:
            raise BrokerUnavailable(f"publish to {subject} not acknowledged: {error}") from error
        return not ack.duplicate

    async def close(self) -> None:
        client, self._client, self._jetstream = self._client, None, None
        self._closing = True
        if client is not None and not client.is_closed:
            try:
                await client.drain()
            except Exception:
                await client.close()

    async def _on_error(self, error: Exception) -> None:
        log.debug("broker connection error", extra={"url": self.url, "error": str(error)})

    async def _on_disconnected(self) -> None:
        if self._closing:
            log.debug("broker connection closed", extra={"url": self.url})
        else:
            log.warning("broker disconnected", extra={"url": self.url})
