"""Background jobs stop when the server stops, even if a library loses a cancellation."""

from __future__ import annotations

import asyncio

from runtime.server import _stop_jobs

WAIT_S = 5.0


async def test_a_job_that_swallows_a_cancellation_still_stops() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(WAIT_S * 10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # as a library that turns it into a connection error would

    job = asyncio.create_task(stubborn())
    await asyncio.sleep(0.01)
    async with asyncio.timeout(WAIT_S):
        await _stop_jobs([job])
    assert job.cancelled()
    assert swallowed == 1
