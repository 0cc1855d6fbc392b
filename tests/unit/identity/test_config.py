"""Identity's own settings from the environment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from identity.config import load_identity_settings
from runtime.config import ConfigError


def test_defaults_are_fifteen_minutes_thirty_days_and_rfc_9106() -> None:
    settings = load_identity_settings({})
    assert settings.lifetimes.access == timedelta(minutes=15)
    assert settings.lifetimes.refresh == timedelta(days=30)
    assert (settings.argon2.time_cost, settings.argon2.memory_kib) == (3, 65536)


def test_lifetimes_and_cost_come_from_the_environment() -> None:
    settings = load_identity_settings(
        {
            "IDENTITY_ACCESS_TOKEN_TTL_SECONDS": "60",
            "IDENTITY_REFRESH_TOKEN_TTL_SECONDS": "3600",
            "IDENTITY_ARGON2_TIME_COST": "1",
            "IDENTITY_ARGON2_MEMORY_KIB": "8192",
            "IDENTITY_ARGON2_PARALLELISM": "1",
        }
    )
    assert settings.lifetimes.access == timedelta(seconds=60)
    assert settings.lifetimes.refresh == timedelta(hours=1)
    assert (settings.argon2.time_cost, settings.argon2.parallelism) == (1, 1)


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_identity_settings(
            {
                "IDENTITY_ACCESS_TOKEN_TTL_SECONDS": "soon",
                "IDENTITY_REFRESH_TOKEN_TTL_SECONDS": "0",
                "IDENTITY_ARGON2_MEMORY_KIB": "16",
            }
        )
    message = str(caught.value)
    for name in (
        "IDENTITY_ACCESS_TOKEN_TTL_SECONDS",
        "IDENTITY_REFRESH_TOKEN_TTL_SECONDS",
        "IDENTITY_ARGON2_MEMORY_KIB",
    ):
        assert name in message
