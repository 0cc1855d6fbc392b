"""What access control and request validation cost per call, in process: CPU microseconds.

    .venv/bin/python bench/auth_cost.py                  # every item, about 15 s
    .venv/bin/python bench/auth_cost.py --seconds 0.5    # longer repeats, steadier figures

It times the runtime's own functions, as the interceptor calls them for every request,
without gRPC, a server or a network:

- ``bearer_token``: reading ``authorization: Bearer <token>`` from the call's metadata;
- ``TokenVerifier.verify``, **cached**: the same token again, found in the verifier's
  cache of verified tokens (what every call but a client's first costs);
- ``TokenVerifier.verify``, **uncached**: a verifier that remembers nothing
  (``cache_size=0``): the header read, the key lookup, PyJWT's ES256 signature check and
  the claim checks, on every call (what every call cost before the cache);
- ``RateLimiter.check``: one caller's token bucket (under its limit);
- a refusal: ``RateLimiter.check`` past the limit, raising ``ResourceExhausted``, and the
  ``google.rpc.Status`` the interceptor builds from it (``ErrorInfo``, ``RetryInfo``) before
  it aborts the call: the Python part of answering RATE_LIMITED;
- ``AccessControl.admit`` for GetProduct (``ACCESS_PUBLIC``): with the token, cached, and
  the rate limiter (a remote user's call); and without a token from loopback (the local
  operator, not limited: the default ``make bench`` row);
- ``runtime.validation.violations`` on a valid ``GetProductRequest``, a valid
  ``CreateProductRequest`` and a ``GetProductRequest`` that breaks its name rule.

The token is a real one: signed by identity's own signer (``JwtTokenSigner``, ES256 on a
fresh P-256 key) and verified against that key's JWK, as a service gets it from GetJwks.
Each item runs for ``--seconds`` per repeat (the call count is calibrated first), and is
repeated ``--repeats`` times; the table shows the median and the lowest per-call CPU time
of the repeats (the thread's CPU clock, so time the OS gives other processes does not
count) and the median wall time. The JSON goes to ``bench/results/auth-cost-<time>.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import the siblings through the ``bench`` package, and keep bench/
    # itself off the path, where bench/profile.py would shadow the standard library's.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any, cast

import grpc
from google.protobuf import descriptor
from google.protobuf.message import Message
from google.type import money_pb2

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2
from bench import harness
from identity.adapters.tokens import JwtTokenSigner
from identity.domain.model import AccessToken
from runtime import validation
from runtime.access import AccessControl
from runtime.auth import JwksCache, TokenVerifier, bearer_token
from runtime.errors import ResourceExhausted
from runtime.policy import method_rules, services_named
from runtime.ratelimit import RateLimiter
from runtime.status import to_grpc_status

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_SECONDS = 0.25
DEFAULT_REPEATS = 5
#: A limit no loop here reaches, so every check takes a token and none is refused.
OUT_OF_REACH = 1e12
GET_PRODUCT = f"/{harness.CATALOG_SERVICE}/GetProduct"
#: The catalog's ErrorInfo domain.
DOMAIN = "catalog.agora"
#: How a loopback caller's address reads in a gRPC call.
LOOPBACK_PEER = "ipv4:127.0.0.1:50000"


@dataclass(frozen=True)
class Timing:
    """Per-call times of one item, over its repeats."""

    item: str
    calls_per_repeat: int
    cpu_us_median: float
    cpu_us_min: float
    wall_us_median: float


class _CallContext:
    """What :meth:`AccessControl.admit` reads from a call: its metadata and its peer."""

    def __init__(self, metadata: Sequence[tuple[str, str]], peer: str) -> None:
        self._metadata = tuple(metadata)
        self._peer = peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> Mapping[str, Iterable[bytes]]:
        return {}


def _as_context(call: _CallContext) -> grpc.aio.ServicerContext[Any, Any]:
    return cast("grpc.aio.ServicerContext[Any, Any]", call)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CPU cost per call of token verification, access control and validation."
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help="about how long each repeat of each item runs (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help="repeats per item; the median is shown (default: %(default)s)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where the JSON report goes (default: bench/results)",
    )
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


async def _loop_sync(call: Callable[[], object], calls: int) -> tuple[float, float]:
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(calls):
        call()
    return time.thread_time() - cpu, time.perf_counter() - wall


async def _loop_async(call: Callable[[], Awaitable[object]], calls: int) -> tuple[float, float]:
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(calls):
        await call()
    return time.thread_time() - cpu, time.perf_counter() - wall


Loop = Callable[[int], Awaitable[tuple[float, float]]]


async def measure(item: str, loop: Loop, seconds: float, repeats: int) -> Timing:
    """Calibrates the call count to last about ``seconds``, then times ``repeats`` runs."""
    calls = 1
    while True:
        cpu, _ = await loop(calls)
        if cpu >= seconds / 10 or calls >= 10_000_000:
            break
        calls *= 4
    calls = max(1, round(calls * seconds / max(cpu, 1e-9)))
    cpu_us: list[float] = []
    wall_us: list[float] = []
    for _ in range(repeats):
        cpu, wall = await loop(calls)
        cpu_us.append(cpu / calls * 1e6)
        wall_us.append(wall / calls * 1e6)
    timing = Timing(
        item,
        calls,
        harness.median(cpu_us),
        min(cpu_us),
        harness.median(wall_us),
    )
    print(
        f"{item}: {timing.cpu_us_median:.2f} us CPU per call ({calls:,} calls x {repeats})",
        file=sys.stderr,
        flush=True,
    )
    return timing


def access_token() -> tuple[str, list[dict[str, str]]]:
    """A customer's access token, signed as identity signs them, and the key set verifying it."""
    signer = JwtTokenSigner()
    now = datetime.now(UTC)
    key = signer.new_key(now)
    token = signer.sign(
        AccessToken(
            user_id="bench", roles=(), issue_time=now, expire_time=now + timedelta(hours=1)
        ),
        key,
    )
    return token, [dict(key.public_jwk)]


def create_product_request() -> catalog_service_pb2.CreateProductRequest:
    """A valid CreateProductRequest, as the benchmark seeds the catalog with."""
    return catalog_service_pb2.CreateProductRequest(
        product_id="p0100",
        product=catalog_pb2.Product(
            display_name="Benchmark product 100",
            description="Product number 100, made for the benchmark.",
            category=f"categories/{harness.CATEGORY_ID}",
            price=money_pb2.Money(currency_code="EUR", units=20, nanos=990_000_000),
        ),
    )


async def measure_all(seconds: float, repeats: int) -> list[Timing]:
    token, jwks = access_token()

    async def fetch() -> list[dict[str, str]]:
        return jwks

    keys = JwksCache(fetch)
    cached = TokenVerifier(keys)
    uncached = TokenVerifier(keys, cache_size=0)
    # Both verify the token once first: the keys are fetched, the cache filled.
    caller = await cached.verify(token)
    if caller.subject != "users/bench" or (await uncached.verify(token)) != caller:
        raise SystemExit(f"the token verified as {caller}, not users/bench")

    metadata = (("authorization", f"Bearer {token}"), ("user-agent", "grpc-python/1.85"))
    limiter = RateLimiter(OUT_OF_REACH, int(OUT_OF_REACH))
    # One token, refilled once in some thirty years: after the first call, every call is refused.
    refusing = RateLimiter(1e-9, 1)
    refusing.acquire("users/bench")

    def refuse() -> None:
        try:
            refusing.check("users/bench", GET_PRODUCT)
        except ResourceExhausted as error:
            to_grpc_status(error, DOMAIN)
            return
        raise SystemExit("the rate limiter let a call through past its limit")

    descriptors = services_named([harness.CATALOG_SERVICE])
    rules = method_rules(descriptors)
    remote = AccessControl(rules, cached, RateLimiter(OUT_OF_REACH, int(OUT_OF_REACH)))
    local = AccessControl(
        rules, cached, RateLimiter(OUT_OF_REACH, int(OUT_OF_REACH)), trust_loopback=True
    )
    with_token = _as_context(_CallContext(metadata, "ipv4:203.0.113.7:50000"))
    without_token = _as_context(_CallContext(metadata[1:], LOOPBACK_PEER))

    get = harness.get_product_request([harness.product_name(100)])
    create = create_product_request()
    bad_get = catalog_service_pb2.GetProductRequest(name="products/Not A Name")
    validation.compile_rules(descriptors)
    for request, broken in ((get, 0), (create, 0), (bad_get, 1)):
        found = validation.violations(request)
        if len(found) != broken:
            raise SystemExit(f"{type(request).__name__} breaks {found}, expected {broken} rules")
    _check_has_rules(get, create)

    items: list[tuple[str, Loop]] = [
        (
            "bearer_token (read the metadata)",
            lambda n: _loop_sync(lambda: bearer_token(metadata), n),
        ),
        ("TokenVerifier.verify, cached", lambda n: _loop_async(lambda: cached.verify(token), n)),
        (
            "TokenVerifier.verify, uncached (ES256 check)",
            lambda n: _loop_async(lambda: uncached.verify(token), n),
        ),
        (
            "RateLimiter.check (one caller)",
            lambda n: _loop_sync(lambda: limiter.check("users/bench", GET_PRODUCT), n),
        ),
        ("refusal: RateLimiter.check past the limit + its status", lambda n: _loop_sync(refuse, n)),
        (
            "AccessControl.admit GetProduct, token (cached) + rate limit",
            lambda n: _loop_async(lambda: remote.admit(GET_PRODUCT, with_token), n),
        ),
        (
            "AccessControl.admit GetProduct, loopback operator, no token",
            lambda n: _loop_async(lambda: local.admit(GET_PRODUCT, without_token), n),
        ),
        (
            "validation.violations GetProductRequest",
            lambda n: _loop_sync(lambda: validation.violations(get), n),
        ),
        (
            "validation.violations CreateProductRequest",
            lambda n: _loop_sync(lambda: validation.violations(create), n),
        ),
        (
            "validation.violations GetProductRequest, bad name (1 violation)",
            lambda n: _loop_sync(lambda: validation.violations(bad_get), n),
        ),
    ]
    return [await measure(item, loop, seconds, repeats) for item, loop in items]


def _check_has_rules(*requests: Message) -> None:
    """The requests timed must carry rules, or validation would be skipped and cost nothing."""
    for request in requests:
        message_type = cast(descriptor.Descriptor, request.DESCRIPTOR)
        if not validation.has_rules(message_type):
            raise SystemExit(f"{message_type.full_name} has no validation rules to time")


def render(timings: Sequence[Timing], header: Mapping[str, Any]) -> str:
    host = header["machine"]
    lines = [
        f"agora auth cost, {header['date']}",
        f"machine: nproc={host['nproc']}, {host['cpu']}; Python {host['python']}, "
        f"protobuf {host['protobuf']}, PyJWT {header['pyjwt']}, cryptography "
        f"{header['cryptography']}, protovalidate {header['protovalidate']}",
        f"each item: {header['repeats']} repeats of about {header['seconds']:g}s",
        "",
        "| item | CPU us/call (median) | CPU us/call (min) | wall us/call (median) |",
        "|---|---:|---:|---:|",
    ]
    for timing in timings:
        lines.append(
            f"| {timing.item} | {timing.cpu_us_median:.2f} | {timing.cpu_us_min:.2f} "
            f"| {timing.wall_us_median:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    timings = asyncio.run(measure_all(args.seconds, args.repeats))
    header: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": harness.machine(),
        "pyjwt": metadata.version("pyjwt"),
        "cryptography": metadata.version("cryptography"),
        "protovalidate": metadata.version("protovalidate"),
        "seconds": args.seconds,
        "repeats": args.repeats,
    }
    print(render(timings, header))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"auth-cost-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    report = {**header, "timings": [asdict(timing) for timing in timings]}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
