"""Inventory's errors; each names its condition and carries a stable reason."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from runtime.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound, Unavailable

DOMAIN = "inventory.agora"


class UnknownProduct(FailedPrecondition):
    """SetStock named a product the catalog does not have."""

    reason = "PRODUCT_NOT_FOUND"

    def __init__(self, product: str) -> None:
        super().__init__(
            f"product {product!r} does not exist in the catalog; create it there first",
            metadata={"product": product},
        )


class CatalogUnavailable(Unavailable):
    """The catalog could not be asked whether a product exists."""

    reason = "CATALOG_UNAVAILABLE"

    def __init__(self, product: str) -> None:
        super().__init__(
            f"the catalog could not be reached to check product {product!r}; retry shortly",
            metadata={"product": product},
            retry_after=1.0,
        )


class StockNotFound(NotFound):
    reason = "STOCK_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"stock {name!r} has never been set", metadata={"stock": name})


class OnHandBelowReserved(FailedPrecondition):
    reason = "ON_HAND_BELOW_RESERVED"

    def __init__(self, name: str, on_hand: int, reserved: int) -> None:
        super().__init__(
            f"stock {name!r} cannot be set to {on_hand} units: {reserved} are reserved",
            metadata={"stock": name, "onHand": str(on_hand), "reserved": str(reserved)},
        )


class EtagMismatch(Aborted):
    reason = "ETAG_MISMATCH"

    def __init__(self, name: str, current: str) -> None:
        super().__init__(
            f"stock {name!r} changed since it was read; read it again and retry",
            metadata={"stock": name, "currentEtag": current},
        )


class InsufficientStock(FailedPrecondition):
    reason = "INSUFFICIENT_STOCK"

    def __init__(self, products: Sequence[str]) -> None:
        listed = ", ".join(repr(p) for p in products)
        super().__init__(
            f"not enough units available of {listed}; nothing was reserved",
            metadata={"products": ",".join(products)},
        )


class ReservationNotFound(NotFound):
    reason = "RESERVATION_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"reservation {name!r} does not exist", metadata={"reservation": name})


class ReservationAlreadyExists(AlreadyExists):
    """The order already holds a reservation that is active or committed."""

    reason = "RESERVATION_ALREADY_EXISTS"

    def __init__(self, name: str, order: str) -> None:
        super().__init__(
            f"order {order!r} already holds reservation {name!r}",
            metadata={"reservation": name, "order": order},
        )


class ReservationExpired(FailedPrecondition):
    reason = "RESERVATION_EXPIRED"

    def __init__(self, name: str, expire_time: datetime) -> None:
        stamp = expire_time.isoformat().replace("+00:00", "Z")
        super().__init__(
            f"reservation {name!r} expired at {stamp}; reserve again",
            metadata={"reservation": name, "expireTime": stamp},
        )


class ReservationReleased(FailedPrecondition):
    reason = "RESERVATION_RELEASED"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"reservation {name!r} was released; reserve again", metadata={"reservation": name}
        )


class ReservationCommitted(FailedPrecondition):
    reason = "RESERVATION_COMMITTED"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"reservation {name!r} was committed; its units have left stock",
            metadata={"reservation": name},
        )
