"""Orders' own settings, read from the environment when called, never at import.

They come on top of the runtime's :class:`runtime.config.ServerSettings`::

    settings = load_orders_settings()
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from runtime.config import EnvReader, boolean, peer_address, positive_float, positive_int

#: The stock reservation's time to live the contract documents (15 minutes).
DEFAULT_RESERVATION_TTL = 900


def _ttl_seconds(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 3600:  # what inventory accepts
        raise ValueError("must be a whole number of seconds from 1 to 3600")
    return value


def _rate(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be a probability from 0 to 1")
    return value


def _default_instance(port: int) -> str:
    """``<hostname>:<port>``: two live processes never share it, a restart gets it back.

    With port 0 (an ephemeral port) it would not be unique, so a random suffix is used.
    """
    return f"{socket.gethostname()}:{port or uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class OrdersSettings:
    """How orders runs checkouts and where it finds the other services."""

    #: Time to live of the stock reservation, which is also how long a checkout may take
    #: before it is cancelled (``ORDERS_RESERVATION_TTL_SECONDS``, default 900).
    reservation_ttl: timedelta
    #: Seconds a process holds an order's checkout before another may take it over
    #: (``ORDERS_LEASE_SECONDS``, default 30); renewed while it works.
    lease: float
    #: Seconds between looks for unfinished checkouts (``ORDERS_POLL_SECONDS``, default 1).
    poll_interval: float
    #: Checkouts one process runs at once (``ORDERS_CHECKOUT_CONCURRENCY``, default 64).
    concurrency: int
    #: Longest pause between retries of a failing step (``ORDERS_RETRY_MAX_SECONDS``, default 5).
    retry_max: float
    #: Seconds one call to another service may take (``ORDERS_STEP_TIMEOUT_SECONDS``, default 10).
    step_timeout: float
    #: Who holds leases (``ORDERS_INSTANCE_ID``, default ``<hostname>:<port>``): a
    #: restarted process with the same id takes its leases back at once.
    instance_id: str
    catalog_address: str
    inventory_address: str
    payments_address: str
    #: Test hook: pause the checkout at this point (``ORDERS_FAULT_PAUSE_AT``, see
    #: :data:`orders.domain.checkout.HOOK_POINTS`). Empty in normal operation.
    fault_pause_at: str
    #: Test hook: probability of SIGKILLing the process at each hook point
    #: (``ORDERS_FAULT_KILL_RATE``, default 0).
    fault_kill_rate: float
    #: Test hook: a file the hook appends each point it pauses or kills at to.
    fault_log: str
    #: Test hook: SIGKILL at each point the first time it is reached
    #: (``ORDERS_FAULT_KILL_FIRST``, default false; needs ``ORDERS_FAULT_LOG``).
    fault_kill_first: bool = False


def load_orders_settings(environ: Mapping[str, str] | None = None, port: int = 0) -> OrdersSettings:
    """Reads orders' settings from ``environ`` (default: the process environment).

    Raises:
        ConfigError: naming every variable whose value is unusable.
    """
    env = os.environ if environ is None else environ
    reader = EnvReader(env)
    settings = OrdersSettings(
        reservation_ttl=timedelta(
            seconds=reader.get(
                "ORDERS_RESERVATION_TTL_SECONDS", DEFAULT_RESERVATION_TTL, _ttl_seconds
            )
        ),
        lease=reader.get("ORDERS_LEASE_SECONDS", 30.0, positive_float),
        poll_interval=reader.get("ORDERS_POLL_SECONDS", 1.0, positive_float),
        concurrency=reader.get("ORDERS_CHECKOUT_CONCURRENCY", 64, positive_int),
        retry_max=reader.get("ORDERS_RETRY_MAX_SECONDS", 5.0, positive_float),
        step_timeout=reader.get("ORDERS_STEP_TIMEOUT_SECONDS", 10.0, positive_float),
        instance_id=env.get("ORDERS_INSTANCE_ID") or _default_instance(port),
        catalog_address=peer_address("catalog", env),
        inventory_address=peer_address("inventory", env),
        payments_address=peer_address("payments", env),
        fault_pause_at=env.get("ORDERS_FAULT_PAUSE_AT", ""),
        fault_kill_rate=reader.get("ORDERS_FAULT_KILL_RATE", 0.0, _rate),
        fault_log=env.get("ORDERS_FAULT_LOG", ""),
        fault_kill_first=reader.get("ORDERS_FAULT_KILL_FIRST", False, boolean),
    )
    reader.raise_if_invalid()
    return settings
