"""Background jobs of a service: started with the server, restarted on failure, stopped first."""

from __future__ import annotations

import asyncio

import pytest

from runtime import server
from runtime.config import load_server_settings
from runtime.server import Service, running

WAIT_S = 10  # bound on every wait; nothing here depends on how fast the machine is


async def _ready() -> bool:
    return True


async def test_a_failing_job_is_restarted_and_every_job_stops_before_the_cleanups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "RESTART_DELAY", 0.01)
    events: list[str] = []
    second_run = asyncio.Event()
    runs = 0

    async def sweeper() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("the first run fails")
        second_run.set()
        try:
            await asyncio.Event().wait()
        finally:
            events.append("sweeper stopped")

    async def cleanup() -> None:
        events.append("cleanup")

    service = Service(
        name="catalog",
        domain="test.agora",
        service_names=[],
        register=lambda _server: None,
        readiness=_ready,
        cleanups=[cleanup],
        background=[sweeper],
    )
    settings = load_server_settings(
        "catalog", environ={"AGORA_PORT": "0", "AGORA_GRACE_SECONDS": "1"}
    )
    async with running(service, settings):
        await asyncio.wait_for(second_run.wait(), WAIT_S)
    assert runs == 2
    assert events == ["sweeper stopped", "cleanup"]
