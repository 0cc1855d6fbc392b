"""Inventory's own settings: defaults, overrides and every bad value reported at once."""

from __future__ import annotations

import pytest

from inventory.config import load_inventory_settings
from runtime.config import ConfigError


def test_defaults_sweep_every_two_seconds_and_find_the_catalog_on_loopback() -> None:
    settings = load_inventory_settings({})
    assert (settings.sweep_interval, settings.sweep_batch) == (2.0, 100)
    assert settings.catalog_address == "127.0.0.1:50052"


def test_the_environment_overrides_each_setting() -> None:
    settings = load_inventory_settings(
        {
            "INVENTORY_SWEEP_INTERVAL_SECONDS": "0.5",
            "INVENTORY_SWEEP_BATCH": "10",
            "AGORA_CATALOG_ADDR": "catalog:50052",
        }
    )
    assert (settings.sweep_interval, settings.sweep_batch) == (0.5, 10)
    assert settings.catalog_address == "catalog:50052"


def test_every_unusable_value_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_inventory_settings(
            {"INVENTORY_SWEEP_INTERVAL_SECONDS": "soon", "INVENTORY_SWEEP_BATCH": "0"}
        )
    assert "INVENTORY_SWEEP_INTERVAL_SECONDS" in str(caught.value)
    assert "INVENTORY_SWEEP_BATCH" in str(caught.value)
