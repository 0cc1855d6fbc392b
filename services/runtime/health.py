"""gRPC health (Check and Watch) tied to the service's real dependencies.

A readiness loop probes the dependencies (the database, for most services) every few
seconds and flips every served name between SERVING and NOT_SERVING; ``Watch`` streams
each change. On shutdown every name goes NOT_SERVING for good before the server drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health_pb2

# The asyncio servicer; ``grpc_health.v1.health.aio`` re-exports this module, untyped.
from grpc_health.v1._async import HealthServicer

__all__ = ["NOT_SERVING", "SERVING", "HealthServicer", "Probe", "Readiness"]

log = logging.getLogger("agora.health")

Probe = Callable[[], Awaitable[bool]]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness:
    """Keeps the health servicer's statuses in line with a readiness probe."""

    def __init__(
        self,
        servicer: HealthServicer,
        service_names: Sequence[str],
        probe: Probe,
        interval: float,
    ) -> None:
        self._servicer = servicer
        self._names = ["", *service_names]
        self._probe = probe
        self._interval = interval
        self._ready: bool | None = None

    @property
    def ready(self) -> bool:
        """The outcome of the latest probe."""
        return bool(self._ready)

    async def check_once(self) -> bool:
        """Runs the probe (bounded by the interval) and publishes its outcome."""
        try:
            ready = await asyncio.wait_for(self._probe(), timeout=self._interval)
        except (TimeoutError, Exception):  # a probe that fails or hangs means "not ready"
            ready = False
        if ready != self._ready:
            (log.info if ready else log.warning)("readiness changed", extra={"ready": ready})
            self._ready = ready
            for name in self._names:
                await self._servicer.set(name, SERVING if ready else NOT_SERVING)
        return ready

    async def run(self) -> None:
        """Probes forever; cancel the task to stop."""
        while True:
            await asyncio.sleep(self._interval)
            await self.check_once()
