"""Inputs of inventory's mutating use cases, already validated by the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from inventory.domain.model import DEFAULT_TTL, ReservationItem
from runtime.idempotency import Idempotency


@dataclass(frozen=True)
class SetStock:
    product_id: str
    on_hand: int
    etag: str = ""
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class ReserveStock:
    order_id: str
    items: tuple[ReservationItem, ...]
    ttl: timedelta = DEFAULT_TTL
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class CommitReservation:
    reservation_id: str
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class ReleaseReservation:
    reservation_id: str
    idempotency: Idempotency | None = None
