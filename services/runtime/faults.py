"""Fault injection for the fault runs (``make test-faults``); off unless its variables are set.

``AGORA_FAULT_RELAY_KILL_RATE`` (a probability, 0 to 1): every time the broker acknowledges
an event, the outbox relay SIGKILLs its own process with this probability, before the row
is marked sent. That is the moment a crash makes a relay publish events again, so a fault
run can prove the broker and the consumers absorb the duplicates. ``AGORA_FAULT_LOG``
names a file that gets one line per kill (``relay killed with N acknowledged, unmarked``),
written to disk before the process dies, so the run can count its kills.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from runtime.config import EnvReader

RELAY_KILL_RATE_ENV = "AGORA_FAULT_RELAY_KILL_RATE"
LOG_ENV = "AGORA_FAULT_LOG"

#: Called by the relay after each acknowledged publish with how many rows of the batch are
#: acknowledged but not yet marked sent.
AfterAck = Callable[[int], None]


def probability(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be a probability from 0 to 1")
    return value


def relay_kill_switch(env: Mapping[str, str] | None = None) -> AfterAck | None:
    """The relay's fault hook for ``env`` (default: the process environment); None if off.

    Raises:
        runtime.config.ConfigError: if the rate is not a probability.
    """
    reader = EnvReader(os.environ if env is None else env)
    rate = reader.get(RELAY_KILL_RATE_ENV, 0.0, probability)
    log_path = reader.get(LOG_ENV, "", str)
    reader.raise_if_invalid()
    if rate == 0.0:
        return None

    def after_ack(unmarked: int) -> None:
        if random.random() >= rate:
            return
        if log_path:
            with Path(log_path).open("a") as log:
                log.write(f"relay killed with {unmarked} acknowledged, unmarked\n")
                log.flush()
                os.fsync(log.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    return after_ack
