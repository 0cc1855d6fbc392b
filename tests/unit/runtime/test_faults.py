"""The relay's kill switch: off by default, validated, and it logs before it kills."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from runtime import faults
from runtime.config import ConfigError


def test_the_switch_is_off_unless_a_rate_is_set() -> None:
    assert faults.relay_kill_switch({}) is None
    assert faults.relay_kill_switch({faults.RELAY_KILL_RATE_ENV: "0"}) is None


@pytest.mark.parametrize("rate", ["1.5", "-0.1", "often"])
def test_a_rate_that_is_no_probability_is_refused(rate: str) -> None:
    with pytest.raises(ConfigError, match=faults.RELAY_KILL_RATE_ENV):
        faults.relay_kill_switch({faults.RELAY_KILL_RATE_ENV: rate})


def test_at_rate_one_it_logs_then_sigkills_its_own_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "faults.log"
    kills: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: kills.append((pid, sig)))
    switch = faults.relay_kill_switch({faults.RELAY_KILL_RATE_ENV: "1", faults.LOG_ENV: str(log)})
    assert switch is not None
    switch(3)
    assert kills == [(os.getpid(), signal.SIGKILL)]
    assert log.read_text() == "relay killed with 3 acknowledged, unmarked\n"
