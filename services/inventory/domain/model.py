"""Inventory's domain model: stock levels and reservations, with their rules."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from runtime.errors import FieldViolation

MAX_ON_HAND = 1_000_000_000
MAX_QUANTITY = 10_000
MAX_ITEMS = 100
DEFAULT_TTL = timedelta(minutes=15)
MIN_TTL = timedelta(seconds=1)
MAX_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class Stock:
    """Units of one product: ``0 <= reserved <= on_hand``. ``revision`` counts changes."""

    product_id: str
    on_hand: int
    reserved: int = 0
    update_time: datetime | None = None
    revision: int = 1

    @property
    def name(self) -> str:
        return f"products/{self.product_id}/stock"

    @property
    def product(self) -> str:
        return f"products/{self.product_id}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def etag(self) -> str:
        digest = hashlib.sha256(f"{self.product_id}/{self.revision}".encode()).hexdigest()
        return digest[:16]


class ReservationState(enum.Enum):
    """Where a reservation is in its life; every state but ACTIVE is final."""

    ACTIVE = "ACTIVE"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


#: States in which a reservation still counts for its order (one per order at most).
LIVE_STATES = (ReservationState.ACTIVE, ReservationState.COMMITTED)


@dataclass(frozen=True)
class ReservationItem:
    """A number of units of one product."""

    product_id: str
    quantity: int

    @property
    def product(self) -> str:
        return f"products/{self.product_id}"


@dataclass(frozen=True)
class Reservation:
    """Units of several products held for one order until committed, released or expired."""

    id: str
    order_id: str
    items: tuple[ReservationItem, ...]
    state: ReservationState
    create_time: datetime
    expire_time: datetime
    update_time: datetime

    @property
    def name(self) -> str:
        return f"reservations/{self.id}"

    @property
    def order(self) -> str:
        return f"orders/{self.order_id}"

    def is_overdue(self, now: datetime) -> bool:
        """Active past its expiry: it can no longer be committed and awaits the sweeper."""
        return self.state is ReservationState.ACTIVE and now >= self.expire_time

    def moved_to(self, state: ReservationState, now: datetime) -> Reservation:
        return replace(self, state=state, update_time=now)

    def items_by_product(self) -> list[ReservationItem]:
        """The items sorted by product: every writer locks stock rows in this one order."""
        return sorted(self.items, key=lambda item: item.product_id)


class ReservationEventType(enum.Enum):
    """A reservation's lifecycle events, as the contract's ``events.proto`` names them."""

    RESERVED = "StockReserved"
    COMMITTED = "ReservationCommitted"
    RELEASED = "ReservationReleased"
    EXPIRED = "ReservationExpired"


_EVENT_OF_STATE = {
    ReservationState.ACTIVE: ReservationEventType.RESERVED,
    ReservationState.COMMITTED: ReservationEventType.COMMITTED,
    ReservationState.RELEASED: ReservationEventType.RELEASED,
    ReservationState.EXPIRED: ReservationEventType.EXPIRED,
}


@dataclass(frozen=True)
class ReservationEvent:
    """A reservation entered a state: taken, committed, released or expired."""

    type: ReservationEventType
    #: The reservation as it is once it happened.
    reservation: Reservation

    @classmethod
    def entered(cls, reservation: Reservation) -> ReservationEvent:
        """The event of ``reservation`` having just entered its current state."""
        return cls(_EVENT_OF_STATE[reservation.state], reservation)


@dataclass(frozen=True)
class StockLevelChanged:
    """A product's ``on_hand``, ``reserved`` or ``available`` quantity changed.

    Both previous quantities are 0 when the stock was just created.
    """

    #: The stock after the change.
    stock: Stock
    previous_on_hand: int
    previous_available: int

    @classmethod
    def by(cls, after: Stock, *, on_hand: int = 0, reserved: int = 0) -> StockLevelChanged:
        """The change that added ``on_hand`` and ``reserved`` units (negative: took them
        away) and left the stock as ``after``."""
        return cls(after, after.on_hand - on_hand, after.available - (on_hand - reserved))

    @classmethod
    def between(cls, before: Stock | None, after: Stock) -> list[StockLevelChanged]:
        """The change from ``before`` (None: the stock is new) to ``after``; none if no
        quantity changed."""
        if before is None:
            return [cls(after, 0, 0)]
        if (before.on_hand, before.reserved) == (after.on_hand, after.reserved):
            return []
        return [cls(after, before.on_hand, before.available)]


def validate_on_hand(value: int, field_path: str) -> list[FieldViolation]:
    if 0 <= value <= MAX_ON_HAND:
        return []
    return [FieldViolation(field_path, f"must be from 0 to {MAX_ON_HAND}")]


def validate_quantity(value: int, field_path: str) -> list[FieldViolation]:
    if 1 <= value <= MAX_QUANTITY:
        return []
    return [FieldViolation(field_path, f"must be from 1 to {MAX_QUANTITY}")]


def validate_ttl(value: timedelta, field_path: str) -> list[FieldViolation]:
    if MIN_TTL <= value <= MAX_TTL:
        return []
    return [FieldViolation(field_path, "must be unset, or from 1 second to 1 hour")]
