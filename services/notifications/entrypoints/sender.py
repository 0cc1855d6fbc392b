"""The sender: a background job that delivers due notifications through the mail sink."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from notifications.domain import usecases
from notifications.domain.model import RetryPolicy
from notifications.domain.ports import MailSink, UnitOfWork


class NotificationSender:
    """Delivers due notifications in batches; polls, or starts at once when woken."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        sink: MailSink,
        clock: Callable[[], datetime],
        policy: RetryPolicy,
        *,
        poll_interval: float = 1.0,
        batch: int = 20,
    ) -> None:
        self._uow = uow
        self._sink = sink
        self._clock = clock
        self._policy = policy
        self._poll_interval = poll_interval
        self._batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Looks for due notifications now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Delivers until cancelled."""
        while True:
            attempted = await self.deliver_once()
            if attempted < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
                self._wake.clear()

    async def deliver_once(self) -> int:
        """One batch of attempts; how many were made."""
        return await usecases.deliver_due(
            self._uow, self._sink, self._clock, self._policy, self._batch
        )
