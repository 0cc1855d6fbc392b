"""Payments' own settings: the processor timeout."""

from __future__ import annotations

import pytest

from payments.config import DEFAULT_PROCESSOR_TIMEOUT, load_payments_settings
from runtime.config import ConfigError


def test_the_processor_timeout_defaults_to_the_contract_value() -> None:
    assert load_payments_settings({}).processor_timeout == DEFAULT_PROCESSOR_TIMEOUT == 2.0


def test_the_processor_timeout_is_read_from_the_environment() -> None:
    settings = load_payments_settings({"PAYMENTS_PROCESSOR_TIMEOUT_SECONDS": "0.25"})
    assert settings.processor_timeout == 0.25


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "nan", "inf"])
def test_an_unusable_processor_timeout_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="PAYMENTS_PROCESSOR_TIMEOUT_SECONDS"):
        load_payments_settings({"PAYMENTS_PROCESSOR_TIMEOUT_SECONDS": raw})
