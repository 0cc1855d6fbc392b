"""The checkout's fault hook for tests: pause or die at a named point of the saga.

Off unless ``ORDERS_FAULT_PAUSE_AT`` or ``ORDERS_FAULT_KILL_RATE`` is set. The crash tests
start orders with ``ORDERS_FAULT_PAUSE_AT=authorize_payment:after``, wait until the point
shows up in ``ORDERS_FAULT_LOG``, SIGKILL the process and restart it without the hook.
The randomized fault run sets ``ORDERS_FAULT_KILL_RATE``: at every point the process
kills itself with that probability, so kills land on exact step boundaries, and the
log says which; with ``ORDERS_FAULT_KILL_FIRST`` it also dies the first time it reaches
each point.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

from orders.domain.checkout import HOOK_POINTS, Hook, no_hook


def fault_hook(pause_at: str, kill_rate: float, log_path: str, kill_first: bool = False) -> Hook:
    """The hook for these settings; :func:`no_hook` when all are off.

    ``kill_first`` (``ORDERS_FAULT_KILL_FIRST``) kills at every point the first time any
    process reaches it, as the log (which outlives the processes) tells, so a fault run
    covers every point it passes, not only those its dice pick.
    """
    if pause_at and pause_at not in HOOK_POINTS:
        raise ValueError(f"ORDERS_FAULT_PAUSE_AT={pause_at!r} is not one of {HOOK_POINTS}")
    if kill_first and not log_path:
        raise ValueError("ORDERS_FAULT_KILL_FIRST needs ORDERS_FAULT_LOG")
    if not pause_at and kill_rate <= 0 and not kill_first:
        return no_hook

    def killed_before(point: str) -> bool:
        path = Path(log_path)
        return path.is_file() and f"killed {point}" in path.read_text().splitlines()

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
        if (kill_first and not killed_before(point)) or (
            kill_rate > 0 and random.random() < kill_rate
        ):
            note(f"killed {point}")
            os.kill(os.getpid(), signal.SIGKILL)

    return hook
