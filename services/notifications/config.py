"""Notifications' own settings, read from the environment when called, never at import.

They come on top of the runtime's :class:`runtime.config.ServerSettings`::

    settings = load_notifications_settings(data_dir=server_settings.data_dir)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from notifications.adapters.sinks import DEFAULT_SENDER
from runtime.broker import nats_url
from runtime.config import ConfigError, EnvReader, port, positive_float, positive_int

SINKS = ("maildir", "smtp")


def _sink(raw: str) -> str:
    value = raw.strip().lower()
    if value not in SINKS:
        raise ValueError("must be one of " + ", ".join(SINKS))
    return value


@dataclass(frozen=True)
class NotificationsSettings:
    """Where messages go, how delivery is retried, and where the events come from."""

    #: ``maildir`` (default) or ``smtp`` (``NOTIFICATIONS_SINK``).
    sink: str = "maildir"
    #: The maildir's directory (``NOTIFICATIONS_MAILDIR``, default ``<AGORA_DATA_DIR>/mail``).
    maildir: Path = Path("var/mail")
    #: The SMTP server (``NOTIFICATIONS_SMTP_HOST``, default ``127.0.0.1``; required in
    #: effect when the sink is ``smtp``).
    smtp_host: str = "127.0.0.1"
    #: Its port (``NOTIFICATIONS_SMTP_PORT``, default 25).
    smtp_port: int = 25
    #: The From of every message, in either sink (``NOTIFICATIONS_SMTP_FROM``).
    sender: str = DEFAULT_SENDER
    #: Seconds an SMTP connection and each of its commands may take
    #: (``NOTIFICATIONS_SMTP_TIMEOUT_SECONDS``, default 10).
    smtp_timeout: float = 10.0
    #: Delivery attempts before a notification is FAILED (``NOTIFICATIONS_MAX_ATTEMPTS``,
    #: default 5, as the contract documents).
    max_attempts: int = 5
    #: Wait after the first failed attempt, doubled after each further one
    #: (``NOTIFICATIONS_RETRY_SECONDS``, default 2) up to ``NOTIFICATIONS_RETRY_MAX_SECONDS``
    #: (default 60).
    retry_initial: float = 2.0
    retry_max: float = 60.0
    #: Seconds between looks for due notifications (``NOTIFICATIONS_POLL_SECONDS``, default 1).
    poll_interval: float = 1.0
    #: Where the broker is (``NATS_URL``).
    nats_url: str = "nats://127.0.0.1:4222"
    #: Deliveries of an event before the consumer dead-letters it
    #: (``NOTIFICATIONS_MAX_DELIVER``, default 5).
    max_deliver: int = 5
    #: Pauses before each redelivery of an event whose handling failed, in seconds.
    redelivery_backoff: tuple[float, ...] = (0.5, 2.0, 5.0, 10.0)


def load_notifications_settings(
    environ: Mapping[str, str] | None = None, data_dir: Path = Path("var")
) -> NotificationsSettings:
    """Reads notifications' settings from ``environ`` (default: the process environment).

    Raises:
        ConfigError: naming every variable whose value is unusable.
    """
    env = os.environ if environ is None else environ
    reader = EnvReader(env)
    settings = NotificationsSettings(
        sink=reader.get("NOTIFICATIONS_SINK", "maildir", _sink),
        maildir=Path(env.get("NOTIFICATIONS_MAILDIR") or data_dir / "mail"),
        smtp_host=env.get("NOTIFICATIONS_SMTP_HOST") or "127.0.0.1",
        smtp_port=reader.get("NOTIFICATIONS_SMTP_PORT", 25, port),
        sender=env.get("NOTIFICATIONS_SMTP_FROM") or DEFAULT_SENDER,
        smtp_timeout=reader.get("NOTIFICATIONS_SMTP_TIMEOUT_SECONDS", 10.0, positive_float),
        max_attempts=reader.get("NOTIFICATIONS_MAX_ATTEMPTS", 5, positive_int),
        retry_initial=reader.get("NOTIFICATIONS_RETRY_SECONDS", 2.0, positive_float),
        retry_max=reader.get("NOTIFICATIONS_RETRY_MAX_SECONDS", 60.0, positive_float),
        poll_interval=reader.get("NOTIFICATIONS_POLL_SECONDS", 1.0, positive_float),
        nats_url=nats_url(env),
        max_deliver=reader.get("NOTIFICATIONS_MAX_DELIVER", 5, positive_int),
    )
    reader.raise_if_invalid()
    if settings.sink == "smtp" and settings.smtp_port == 0:
        raise ConfigError("invalid configuration: NOTIFICATIONS_SMTP_PORT=0: must not be 0")
    return settings
