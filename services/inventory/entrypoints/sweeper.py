"""The background job that expires overdue reservations, run by the runtime with the server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from inventory.domain import usecases
from inventory.domain.ports import UnitOfWork
from runtime.errors import Unavailable

log = logging.getLogger("agora.inventory.sweeper")


class ReservationSweeper:
    """Every ``interval`` seconds, expires the reservations whose time to live ran out."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        clock: Callable[[], datetime],
        interval: float,
        batch: int,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._interval = interval
        self._batch = batch

    async def sweep(self) -> int:
        """Expires every overdue reservation, a batch per transaction; returns how many."""
        total = 0
        while True:
            expired = await usecases.expire_overdue_reservations(
                self._uow, self._clock(), self._batch
            )
            total += expired
            if expired < self._batch:
                return total

    async def run(self) -> None:
        """Sweeps until cancelled; a database outage is logged and waited out."""
        while True:
            try:
                expired = await self.sweep()
            except Unavailable as error:
                log.warning("sweep skipped: %s", error.message)
            else:
                if expired:
                    log.info("expired reservations", extra={"count": expired})
            await asyncio.sleep(self._interval)
