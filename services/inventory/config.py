"""Inventory's own settings, read from the environment when called, never at import.

They come on top of the runtime's :class:`runtime.config.ServerSettings`::

    settings = load_inventory_settings()
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.config import EnvReader, peer_address, positive_float, positive_int


@dataclass(frozen=True)
class InventorySettings:
    """How inventory sweeps expired reservations and where it finds the catalog."""

    #: Seconds between sweeps for expired reservations
    #: (``INVENTORY_SWEEP_INTERVAL_SECONDS``, default 2).
    sweep_interval: float
    #: Reservations expired per sweep transaction batch (``INVENTORY_SWEEP_BATCH``, default 100).
    sweep_batch: int
    #: ``host:port`` of the catalog (``AGORA_CATALOG_ADDR``, default its port on loopback).
    catalog_address: str


def load_inventory_settings(environ: Mapping[str, str] | None = None) -> InventorySettings:
    """Reads inventory's settings from ``environ`` (default: the process environment).

    Raises:
        ConfigError: naming every variable whose value is unusable.
    """
    env = os.environ if environ is None else environ
    reader = EnvReader(env)
    settings = InventorySettings(
        sweep_interval=reader.get("INVENTORY_SWEEP_INTERVAL_SECONDS", 2.0, positive_float),
        sweep_batch=reader.get("INVENTORY_SWEEP_BATCH", 100, positive_int),
        catalog_address=peer_address("catalog", env),
    )
    reader.raise_if_invalid()
    return settings
