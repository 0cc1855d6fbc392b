"""The checkout's fault hook for tests: pause or die at a named point of the saga.

Off unless ``ORDERS_FAULT_PAUSE_AT`` or ``ORDERS_FAULT_KILL_RATE`` is set. The crash tests
start orders with ``ORDERS_FAULT_PAUSE_AT=authorize_payment:after``, wait until the point
shows up in ``ORDERS_FAULT_LOG``, SIGKILL the process and restart it without the hook.
The randomized fault run sets ``ORDERS_FAULT_KILL_RATE``: at every point the process
kills itself with that probability, so kills land on exact step boundaries, and the
log says which.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

from orders.domain.checkout import HOOK_POINTS, Hook, no_hook


def fault_hook(pause_at: str, kill_rate: float, log_path: str) -> Hook:
    """The hook for these settings; :func:`no_hook` when both are off."""
    if pause_at and pause_at not in HOOK_POINTS:
        raise ValueError(f"ORDERS_FAULT_PAUSE_AT={pause_at!r} is not one of {HOOK_POINTS}")
    if not pause_at and kill_rate <= 0:
        return no_hook

    def note(line: str) -> None:
        if log_path:
            with Path(log_path).open("a") as log:
                log.write(line + "\n")
                log.flush()
                os.fsync(log.fileno())

    async def hook(point: str) -> None:
        if point == pause_at:
            note(f"paused {point}")
            await asyncio.Event().wait()  # until the test kills the process
        if kill_rate > 0 and random.random() < kill_rate:
            note(f"killed {point}")
            os.kill(os.getpid(), signal.SIGKILL)

    return hook
