"""Token buckets per caller: bursts, refill, the wait they report, bounded memory."""

from __future__ import annotations

import pytest

from runtime.errors import ResourceExhausted
from runtime.ratelimit import RateLimiter, peer_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_rested_caller_may_burst_then_waits_for_the_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("a") == pytest.approx(0.5)  # one token every 1/2 s
    clock.now += 0.25
    assert limiter.acquire("a") == pytest.approx(0.25)  # half a token so far
    clock.now += 0.25
    assert limiter.acquire("a") is None
    clock.now += 60
    assert [limiter.acquire("a") for _ in range(4)][-1] is not None  # refills to burst only


def test_callers_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=Clock())
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None
    assert limiter.acquire("b") is None


def test_the_refusal_says_how_long_to_wait() -> None:
    limiter = RateLimiter(rate=4, burst=1, clock=Clock())
    limiter.check("a", "/agora.catalog.v1.CatalogService/GetProduct")
    with pytest.raises(ResourceExhausted) as refused:
        limiter.check("a", "/agora.catalog.v1.CatalogService/GetProduct")
    assert refused.value.reason == "RATE_LIMITED"
    assert refused.value.retry_after == pytest.approx(0.25)
    assert refused.value.metadata["rate_per_second"] == "4"


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_caller() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, max_callers=2, clock=clock)
    limiter.acquire("a")
    limiter.acquire("b")
    limiter.acquire("a")  # a is now the most recent
    limiter.acquire("c")  # b is dropped
    assert len(limiter) == 2
    assert limiter.acquire("a") is not None  # a's empty bucket was kept
    assert limiter.acquire("b") is None  # b starts afresh: forgetting only lets through


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_limiter_that_could_never_let_a_call_through_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimiter(rate=rate, burst=burst)


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("ipv4:203.0.113.7:51234", "ipv4:203.0.113.7"),
        ("ipv6:[::1]:51234", "ipv6:[::1]"),
        ("unix:/tmp/agora.sock", "unix:/tmp/agora.sock"),
    ],
)
def test_a_caller_is_its_address_without_the_port(peer: str, key: str) -> None:
    assert peer_key(peer) == key
