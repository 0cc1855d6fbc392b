"""Token-bucket rate limits per caller, for the RPCs a contract declares ``ACCESS_PUBLIC``.

Each caller (the subject of its access token, else its network address) has a bucket of
``burst`` tokens that refills at ``rate`` tokens a second; a call takes one token. A
call that finds the bucket empty is refused with RESOURCE_EXHAUSTED (reason
``RATE_LIMITED``) and a ``RetryInfo`` saying when the next token arrives, so well-behaved
clients back off by exactly that much::

    limiter = RateLimiter(rate=50, burst=100)
    wait = limiter.acquire("ipv4:203.0.113.7")
    if wait is not None:
        raise ResourceExhausted(..., retry_after=wait)

Memory is bounded: at most ``max_callers`` buckets are kept, and the least recently seen
caller's bucket is dropped first. A dropped bucket was refilling anyway, so forgetting it
only ever lets a caller through sooner, never later.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from runtime.errors import ResourceExhausted


@dataclass
class TokenBucket:
    """``tokens`` out of ``burst``, refilled at ``rate`` a second since ``updated``."""

    tokens: float
    updated: float

    def take(self, now: float, rate: float, burst: float) -> float | None:
        """Takes a token; returns None if there was one, else seconds until there is."""
        self.tokens = min(burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / rate


class RateLimiter:
    """One token bucket per caller.

    Args:
        rate: tokens added to each bucket per second (positive).
        burst: the bucket's size: calls a rested caller may make at once (at least 1).
        max_callers: buckets kept at most; the least recently used is dropped first.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_callers: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_callers < 1:
            raise ValueError("rate must be positive, burst and max_callers at least 1")
        self.rate = rate
        self.burst = float(burst)
        self._max_callers = max_callers
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, caller: str) -> float | None:
        """Takes a token of ``caller``'s; None if it may call now, else seconds to wait."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = TokenBucket(self.burst, now)
            self._buckets[caller] = bucket
            if len(self._buckets) > self._max_callers:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(caller)
        return bucket.take(now, self.rate, self.burst)

    def check(self, caller: str, method: str) -> None:
        """Takes a token of ``caller``'s for a call of ``method``.

        Raises:
            ResourceExhausted: reason ``RATE_LIMITED``, with the wait in ``retry_after``.
        """
        wait = self.acquire(caller)
        if wait is None:
            return
        raise ResourceExhausted(
            f"too many calls; this method allows {self.rate:g} a second per caller "
            f"(bursts of {self.burst:g}); retry in {wait:.3f}s",
            reason="RATE_LIMITED",
            metadata={
                "method": method,
                "rate_per_second": f"{self.rate:g}",
                "burst": f"{self.burst:g}",
            },
            retry_after=wait,
        )


def peer_key(peer: str) -> str:
    """The part of a gRPC peer string that identifies a caller: its address, not its port.

    ``ipv4:203.0.113.7:51234`` -> ``ipv4:203.0.113.7``; ``ipv6:[::1]:51234`` ->
    ``ipv6:[::1]``; anything else (``unix:...``) as it is.
    """
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return f"ipv4:{rest.rsplit(':', 1)[0]}"
    if kind == "ipv6" and rest.startswith("["):
        return f"ipv6:{rest.split(']', 1)[0]}]"
    return peer
