"""Notifications' settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifications.config import load_notifications_settings
from runtime.config import ConfigError


def test_the_defaults_write_a_maildir_under_the_data_dir() -> None:
    settings = load_notifications_settings({}, data_dir=Path("/srv/agora"))
    assert settings.sink == "maildir"
    assert settings.maildir == Path("/srv/agora/mail")
    assert settings.max_attempts == 5
    assert settings.nats_url == "nats://127.0.0.1:4222"


def test_smtp_settings() -> None:
    settings = load_notifications_settings(
        {
            "NOTIFICATIONS_SINK": "SMTP",
            "NOTIFICATIONS_SMTP_HOST": "mail.internal",
            "NOTIFICATIONS_SMTP_PORT": "2525",
            "NOTIFICATIONS_SMTP_FROM": "Shop <shop@example.com>",
            "NATS_URL": "nats://broker:4222",
        }
    )
    assert (settings.sink, settings.smtp_host, settings.smtp_port) == (
        "smtp",
        "mail.internal",
        2525,
    )
    assert settings.sender == "Shop <shop@example.com>"
    assert settings.nats_url == "nats://broker:4222"


def test_every_bad_value_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_notifications_settings(
            {
                "NOTIFICATIONS_SINK": "pigeon",
                "NOTIFICATIONS_SMTP_PORT": "70000",
                "NOTIFICATIONS_MAX_ATTEMPTS": "0",
            }
        )
    message = str(caught.value)
    for name in ("NOTIFICATIONS_SINK", "NOTIFICATIONS_SMTP_PORT", "NOTIFICATIONS_MAX_ATTEMPTS"):
        assert name in message
