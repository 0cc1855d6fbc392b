"""NATS JetStream: a service's connection, its event stream, and publishing with acks.

Every emitting service publishes its events (``events.proto``) on subjects named after
the message, ``agora.<service>.v1.<Event>``, into one stream per service,
``AGORA_<SERVICE>_EVENTS``, kept in files. The stream is declared at start-up, and
declaring it again with the same settings changes nothing, so any number of replicas
may start at once::

    broker = Broker(nats_url(), "orders")
    await broker.publish("agora.orders.v1.OrderPlaced", payload, headers)

Publishing waits for the stream's acknowledgement, which is what lets the outbox relay
mark an event sent. The broker being away is :class:`BrokerUnavailable`; the connection
reconnects by itself.
"""

from __future__ import annotations

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

    async def _connect(self) -> JetStreamContext:
        if self._jetstream is not None and self._client is not None and self._client.is_connected:
            return self._jetstream
        if self._client is None or self._client.is_closed:
            try:
                self._client = await nats.connect(
                    self.url,
                    name=f"agora-{self.source}",
                    connect_timeout=max(1, int(self._timeout)),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
            except Exception as error:
                self._client = None
                raise BrokerUnavailable(f"cannot connect to {self.url}: {error}") from error
        if not self._client.is_connected:
            raise BrokerUnavailable(f"reconnecting to {self.url}")
        self._jetstream = self._client.jetstream(timeout=self._timeout)
        return self._jetstream

    async def ensure_stream(self) -> None:
        """Creates the service's stream, or brings its settings up to date. Idempotent."""
        jetstream = await self._connect()
        config = stream_config(self.source)
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
        if client is not None and not client.is_closed:
            try:
                await client.drain()
            except Exception:
                await client.close()

    async def _on_error(self, error: Exception) -> None:
        log.debug("broker connection error", extra={"url": self.url, "error": str(error)})

    async def _on_disconnected(self) -> None:
        log.warning("broker disconnected; reconnecting", extra={"url": self.url})

    async def _on_reconnected(self) -> None:
        log.info("broker reconnected", extra={"url": self.url})
