"""The outbox relay: publishes committed outbox rows to JetStream, in order, at least once.

A background job of every service that emits events (see :mod:`runtime.outbox`). In a
loop it reads the oldest unsent rows, publishes them one by one in ``position`` order
(so the events of one aggregate arrive in the order they happened), and marks each
published row sent only after the broker acknowledged it. If the broker is away, it
keeps the rows, logs the lag (how many rows wait and how old the oldest is) and tries
again with backoff; the service itself keeps serving and keeps writing its outbox.

Replicas on PostgreSQL take turns through a session advisory lock, so one relay at a
time publishes a database's outbox and order holds across replicas too. On SQLite
there is one process per database file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from runtime.broker import Broker, BrokerUnavailable, raise_if_cancelled
from runtime.db import begin
from runtime.faults import AfterAck, relay_kill_switch
from runtime.outbox import headers

log = logging.getLogger("agora.outbox")

#: Key of the PostgreSQL advisory lock a relay holds while it publishes.
RELAY_LOCK = "agora-outbox-relay"


def utc_now() -> datetime:
    return datetime.now(UTC)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        table: sa.Table,
        broker: Broker,
        *,
        batch: int = 100,
        poll_interval: float = 0.2,
        lag_log_interval: float = 5.0,
        max_backoff: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
        after_ack: AfterAck | None = None,
    ) -> None:
        """``after_ack`` runs after every acknowledged publish (default: the fault run's
        kill switch, see :mod:`runtime.faults`, which is off unless configured)."""
        self._engine = engine
        self._table = table
        self._broker = broker
        self._batch = batch
        self._poll_interval = poll_interval
        self._lag_log_interval = lag_log_interval
        self._max_backoff = max_backoff
        self._clock = clock
        self._after_ack = after_ack or relay_kill_switch()
        self._wake = asyncio.Event()
        self._lock_connection: AsyncConnection | None = None
        self._last_lag_log = 0.0
        #: Events published since start (duplicates the broker dropped included).
        self.published = 0
        self._unsent = (
            sa.select(table.c.position, table.c.event_id, table.c.event_type)
            .add_columns(table.c.payload, table.c.traceparent, table.c.create_time)
            .where(table.c.sent_time.is_(None))
            .order_by(table.c.position)
            .limit(batch)
        )

    def wake(self) -> None:
        """Publishes now rather than at the next poll (after a commit that wrote events)."""
        self._wake.set()

    async def run(self) -> None:
        """Publishes until cancelled."""
        backoff = self._poll_interval
        try:
            while True:
                try:
                    if not await self._lead():
                        await asyncio.sleep(self._max_backoff)
                        continue
                    published = await self.publish_pending()
                    backoff = self._poll_interval
                    if published < self._batch:
                        await self._idle()
                except BrokerUnavailable as error:
                    raise_if_cancelled()
                    await self._log_lag(str(error))
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
        finally:
            await self._release_lead()

    async def publish_pending(self) -> int:
        """Publishes one batch of unsent rows in order; returns how many were sent.

        Raises:
            BrokerUnavailable: at the first row not acknowledged; the rows before it are
                marked sent, it and the rest stay for the next attempt.
        """
        async with self._engine.connect() as connection:
            rows = (await connection.execute(self._unsent)).all()
        sent: list[int] = []
        try:
            for row in rows:
                await self._broker.publish(row.event_type, row.payload, headers(row, self._source))
                sent.append(row.position)
                if self._after_ack is not None:
                    self._after_ack(len(sent))
        finally:
            if sent:
                await self._mark_sent(sent)
        self.published += len(sent)
        return len(sent)

    async def pending(self) -> tuple[int, float]:
        """How many rows wait, and the age in seconds of the oldest (0 if none)."""
        table = self._table
        async with self._engine.connect() as connection:
            count, oldest = (
                await connection.execute(
                    sa.select(sa.func.count(), sa.func.min(table.c.create_time)).where(
                        table.c.sent_time.is_(None)
                    )
                )
            ).one()
        if oldest is None:
            return 0, 0.0
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return int(count), max((self._clock() - oldest).total_seconds(), 0.0)

    @property
    def _source(self) -> str:
        return self._broker.source

    async def _mark_sent(self, positions: list[int]) -> None:
        connection = await begin(self._engine, writes=True)
        try:
            await connection.execute(
                sa.update(self._table)
                .where(self._table.c.position.in_(positions))
                .values(sent_time=self._clock())
            )
            await connection.commit()
        finally:
            await connection.close()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        self._wake.clear()

    async def _log_lag(self, error: str) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_lag_log < self._lag_log_interval:
            return
        self._last_lag_log = now
        try:
            count, age = await self.pending()
        except Exception:  # the lag is reported best-effort; the database may be away too
            count, age = -1, -1.0
        log.warning(
            "outbox lag: broker unavailable",
            extra={"pending_events": count, "oldest_age_seconds": round(age, 3), "error": error},
        )

    async def _lead(self) -> bool:
        """True if this relay may publish: always on SQLite, with the lock on PostgreSQL."""
        if self._engine.dialect.name != "postgresql":
            return True
        if self._lock_connection is not None and not self._lock_connection.closed:
            return True
        connection = await self._engine.connect()
        got = (
            await connection.execute(
                sa.text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))"),
                {"key": RELAY_LOCK},
            )
        ).scalar_one()
        await connection.commit()
        if not got:
            await connection.close()
            return False
        self._lock_connection = connection
        return True

    async def _release_lead(self) -> None:
        """Unlocks and returns the lock's connection. A pooled connection keeps a session
        lock, so it is unlocked first, or thrown away if that fails."""
        connection, self._lock_connection = self._lock_connection, None
        if connection is None:
            return
        try:
            await connection.execute(
                sa.text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"),
                {"key": RELAY_LOCK},
            )
            await connection.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            raise
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
