"""Identity's own settings, read from the environment when called, never at import time.

The server-wide settings (port, database, ...) come from :mod:`runtime.config`; these are
the ones only identity has. Bad values fail start-up with one message naming each::

    settings = load_identity_settings()
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from identity.adapters.passwords import Argon2Cost
from identity.domain.model import TokenLifetimes
from runtime.config import ConfigError

_DEFAULT_COST = Argon2Cost()


@dataclass(frozen=True)
class IdentitySettings:
    """Token lifetimes and password hashing cost."""

    #: ``IDENTITY_ACCESS_TOKEN_TTL_SECONDS`` (default 900, 15 minutes) and
    #: ``IDENTITY_REFRESH_TOKEN_TTL_SECONDS`` (default 2592000, 30 days).
    lifetimes: TokenLifetimes = field(default_factory=TokenLifetimes)
    #: ``IDENTITY_ARGON2_TIME_COST`` (default 3), ``IDENTITY_ARGON2_MEMORY_KIB`` (default
    #: 65536) and ``IDENTITY_ARGON2_PARALLELISM`` (default 4): RFC 9106's low-memory profile.
    argon2: Argon2Cost = field(default_factory=Argon2Cost)


def load_identity_settings(environ: Mapping[str, str] | None = None) -> IdentitySettings:
    """Reads identity's settings from ``environ`` (default: the process environment).

    Raises:
        ConfigError: naming every variable whose value is unusable.
    """
    env = os.environ if environ is None else environ
    errors: list[str] = []

    def integer(name: str, default: int, minimum: int) -> int:
        raw = env.get(name, "")
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            errors.append(f"{name}={raw!r}: must be an integer >= {minimum}")
            return default
        return value

    defaults = TokenLifetimes()
    settings = IdentitySettings(
        lifetimes=TokenLifetimes(
            access=timedelta(
                seconds=integer(
                    "IDENTITY_ACCESS_TOKEN_TTL_SECONDS", int(defaults.access.total_seconds()), 1
                )
            ),
            refresh=timedelta(
                seconds=integer(
                    "IDENTITY_REFRESH_TOKEN_TTL_SECONDS", int(defaults.refresh.total_seconds()), 1
                )
            ),
        ),
        argon2=Argon2Cost(
            time_cost=integer("IDENTITY_ARGON2_TIME_COST", _DEFAULT_COST.time_cost, 1),
            memory_kib=integer("IDENTITY_ARGON2_MEMORY_KIB", _DEFAULT_COST.memory_kib, 8),
            parallelism=integer("IDENTITY_ARGON2_PARALLELISM", _DEFAULT_COST.parallelism, 1),
        ),
    )
    if settings.argon2.memory_kib < 8 * settings.argon2.parallelism:
        errors.append(
            "IDENTITY_ARGON2_MEMORY_KIB: must be at least 8 x IDENTITY_ARGON2_PARALLELISM"
        )
    if errors:
        raise ConfigError("invalid configuration: " + "; ".join(errors))
    return settings
