"""Payments' own typed settings, read from the environment when asked for, never at import.

The server settings every service shares come from :mod:`runtime.config`; these are the
ones only payments has::

    settings = load_payments_settings()
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.config import ConfigError

#: The processor timeout the contract documents.
DEFAULT_PROCESSOR_TIMEOUT = 2.0
PROCESSOR_TIMEOUT_ENV = "PAYMENTS_PROCESSOR_TIMEOUT_SECONDS"


@dataclass(frozen=True)
class PaymentsSettings:
    #: Seconds a card processor call may take before it fails with PROCESSOR_TIMEOUT
    #: (``PAYMENTS_PROCESSOR_TIMEOUT_SECONDS``, default 2).
    processor_timeout: float = DEFAULT_PROCESSOR_TIMEOUT


def load_payments_settings(environ: Mapping[str, str] | None = None) -> PaymentsSettings:
    """Reads payments' settings from ``environ`` (default: the process environment).

    Raises:
        ConfigError: naming the variable whose value is unusable.
    """
    env = os.environ if environ is None else environ
    raw = env.get(PROCESSOR_TIMEOUT_ENV, "")
    if raw == "":
        return PaymentsSettings()
    try:
        timeout = float(raw)
    except ValueError:
        timeout = math.nan
    if not (timeout > 0 and math.isfinite(timeout)):  # also rejects NaN
        raise ConfigError(
            f"invalid configuration: {PROCESSOR_TIMEOUT_ENV}={raw!r}: "
            "must be a number of seconds > 0"
        )
    return PaymentsSettings(processor_timeout=timeout)
