"""The background job that runs checkouts: finds unfinished orders, leases them, drives them.

Every ``poll_interval`` (or at once when :meth:`CheckoutRunner.wake` is called, as
PlaceOrder and CancelOrder do) the runner looks for unfinished orders whose lease is free,
takes a lease on each and drives its checkout in a task of its own, up to ``concurrency``
at a time. Leases are renewed while the work goes on, so another replica never drives
the same order; if this process dies, its leases run out and any replica (or this one,
restarted with the same instance id, at once) resumes the orders where their stored
progress says. That is how a crash is recovered: there is no separate recovery path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from orders.domain.checkout import Checkout
from orders.domain.ports import UnitOfWork

log = logging.getLogger("agora.orders.runner")


class CheckoutRunner:
    def __init__(
        self,
        checkout: Checkout,
        uow: Callable[[], UnitOfWork],
        clock: Callable[[], datetime],
        *,
        owner: str,
        lease: float,
        poll_interval: float,
        concurrency: int,
    ) -> None:
        self._checkout = checkout
        self._uow = uow
        self._clock = clock
        self._owner = owner
        self._lease = timedelta(seconds=lease)
        self._poll_interval = poll_interval
        self._concurrency = concurrency
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Looks for work now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Runs checkouts until cancelled; unfinished work stays stored for the next run."""
        renewing = asyncio.create_task(self._renew_leases(), name="renew-checkout-leases")
        try:
            while True:
                self._wake.clear()
                await self._start_claimable()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        finally:
            renewing.cancel()
            tasks = [renewing, *self._running.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_claimable(self) -> None:
        free = self._concurrency - len(self._running)
        if free <= 0:
            return
        now = self._clock()
        async with self._uow() as uow:
            candidates = await uow.leases.claimable(self._owner, now, free + len(self._running))
        for order_id in candidates:
            if order_id in self._running or len(self._running) >= self._concurrency:
                continue
            async with self._uow().writing() as uow:
                claimed = await uow.leases.claim(order_id, self._owner, now, now + self._lease)
                await uow.commit()
            if claimed:
                self._running[order_id] = asyncio.create_task(
                    self._drive(order_id), name=f"checkout-{order_id}"
                )

    async def _drive(self, order_id: str) -> None:
        try:
            order = await self._checkout.drive(order_id)
            if order is not None:
                log.info(
                    "checkout finished",
                    extra={"order": order.name, "state": order.state.value},
                )
            await self._release(order_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Stored progress is intact; the order is picked up again at the next poll.
            log.exception("checkout interrupted", extra={"order": f"orders/{order_id}"})
            with contextlib.suppress(Exception):
                await self._release(order_id)
        finally:
            self._running.pop(order_id, None)

    async def _release(self, order_id: str) -> None:
        async with self._uow().writing() as uow:
            await uow.leases.release(order_id, self._owner)
            await uow.commit()

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            if not self._running:
                continue
            try:
                async with self._uow().writing() as uow:
                    await uow.leases.renew(
                        list(self._running), self._owner, self._clock() + self._lease
                    )
                    await uow.commit()
            except Exception:
                log.exception("could not renew checkout leases; retrying")
