"""Hostile input against every RPC of every running service (the whole shop as processes).

Each method gets generated request messages, mutated encodings, random bytes, a body over
the 4 MiB limit and groups nested far past the parser's limit, sent as raw bytes on the
wire. No answer may be INTERNAL, UNKNOWN or DATA_LOSS, or any code a caller's mistake
does not earn; afterwards every process is alive and SERVING, no log has an
``unhandled error``, the databases hold nothing half-written, and a checkout still
completes. The small run is part of ``make test``; ``make test-fuzz`` runs the long one
(``AGORA_FUZZ_INPUTS``, default 100,000; ``AGORA_FUZZ_SEED`` replays a run).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agora.orders.v1 import order_pb2
from tests.support.fuzzing import (
    Fuzzer,
    Input,
    Method,
    agora_methods,
    consistency_problems,
    hostile_bodies,
)
from tests.support.processes import health_status
from tests.support.shop import CHECKOUT_SERVICES, NOTIFICATION_SERVICES, Shop, running_shop

SERVICES = CHECKOUT_SERVICES + NOTIFICATION_SERVICES
#: Inputs of the run in ``make test``: about 25 s here, most of it starting the shop.
SMALL_INPUTS = 4_000
#: Inputs of ``make test-fuzz`` unless AGORA_FUZZ_INPUTS says otherwise.
LONG_INPUTS = 100_000


def interleaved(methods: list[Method], per_method: int, seed: int) -> Iterator[Input]:
    """Every method's bodies, round-robin, so load and state changes mix across services."""
    streams = [
        hostile_bodies(method, per_method, random.Random(f"{seed}:{method.path}"))
        for method in methods
    ]
    for batch in itertools.zip_longest(*streams):
        yield from (item for item in batch if item is not None)


async def fuzz_shop(shop: Shop, data_dir: Path, inputs: int, seed: int) -> dict[str, Any]:
    async with shop.clients() as clients:
        await clients.stock({"tea": 50, "cup": 50})
        await clients.sign_up("alice@example.com")
    methods = agora_methods(SERVICES)
    per_method = max(1, inputs // len(methods))
    addresses = {name: shop.running[name].address for name in SERVICES}
    started = time.monotonic()
    tally = await Fuzzer(addresses).run(interleaved(methods, per_method, seed))
    duration = time.monotonic() - started

    problems: list[str] = []
    for name in SERVICES:
        process = shop.running[name]
        if process.process.poll() is not None:
            problems.append(f"{name} exited with {process.process.returncode}")
            continue
        if (status := health_status(process.address)) != "SERVING":
            problems.append(f"{name} is {status} after the run")
        unhandled = Counter(
            f"{name} logged {entry.get('message')}: "
            + str(entry.get("exception", "")).strip().rsplit("\n", 1)[-1][:300]
            for entry in process.log_entries()
            if str(entry.get("message", "")).startswith("unhandled error")
        )
        problems += [f"{count} x {line}" for line, count in unhandled.most_common(10)]
    # The shop still works: a checkout of a product the fuzz does not name completes.
    async with shop.clients() as clients:
        await clients.stock({"pot": 5})
        order = await clients.place({"pot": 1})
        final = await clients.wait_final(order.name)
        if final.state != order_pb2.ORDER_STATE_COMPLETED:
            problems.append(f"a checkout after the run ended {final}")
    problems += consistency_problems(data_dir, SERVICES)

    report = {
        "seed": seed,
        "methods": len(methods),
        "duration_s": round(duration, 1),
        "inputs_per_s": round(tally.total / duration),
        **tally.report(),
    }
    print("fuzz report:", json.dumps(report, indent=2))
    problems += [f"{count} x {kind}" for kind, count in tally.failure_kinds().items()]
    problems += tally.failures[:20]
    assert not problems, "\n".join([f"seed {seed} (AGORA_FUZZ_SEED replays it):", *problems])
    return report


def seed_from_env() -> int:
    raw = os.environ.get("AGORA_FUZZ_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(2**32)


async def test_hostile_input_gets_a_callers_error_and_leaves_every_service_whole(
    tmp_path: Path,
) -> None:
    seed = seed_from_env()
    with running_shop(tmp_path, with_notifications=True) as shop:
        report = await fuzz_shop(shop, tmp_path, SMALL_INPUTS, seed)
    assert report["inputs"] >= SMALL_INPUTS


@pytest.mark.fuzz
@pytest.mark.timeout(3600)
async def test_long_hostile_input_run(tmp_path: Path) -> None:
    inputs = int(os.environ.get("AGORA_FUZZ_INPUTS", str(LONG_INPUTS)))
    seed = seed_from_env()
    with running_shop(tmp_path, with_notifications=True) as shop:
        report = await fuzz_shop(shop, tmp_path, inputs, seed)
    assert report["inputs"] >= inputs
