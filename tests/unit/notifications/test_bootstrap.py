"""The background jobs stop when the server stops, even if a library loses a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from notifications.bootstrap import stoppable

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

    job: asyncio.Future[None] = asyncio.ensure_future(stoppable("stubborn", stubborn)())
    await asyncio.sleep(0.01)
    job.cancel()
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(asyncio.CancelledError):
            await job
    assert swallowed == 1


async def test_a_failing_job_fails_the_wrapper_so_the_runtime_restarts_it() -> None:
    async def failing() -> None:
        raise RuntimeError("database away")

    wrapped = stoppable("failing", failing)
    assert wrapped.__name__ == "failing"
    with pytest.raises(RuntimeError, match="database away"):
        await wrapped()
