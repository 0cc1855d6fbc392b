"""Orders' errors; each names its condition and carries a stable reason."""

from __future__ import annotations

from collections.abc import Sequence

from runtime.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)

DOMAIN = "orders.agora"


class OrderNotFound(NotFound):
    reason = "ORDER_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"order {name!r} does not exist", metadata={"order": name})


class NotOrderOwner(PermissionDenied):
    """The caller is a user other than the one who placed the order, and no admin.

    Also raised for an order that does not exist: permission is checked before existence
    (AIP-211), so a user cannot probe which orders exist.
    """

    reason = "NOT_RESOURCE_OWNER"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"order {name!r} is not one of yours: only the user who placed it and admins "
            "may see or change it",
            metadata={"order": name},
        )


class ActingForAnotherUser(PermissionDenied):
    """A user (no admin) names another user's orders, to place or list them."""

    reason = "NOT_RESOURCE_OWNER"

    def __init__(self, user: str) -> None:
        super().__init__(
            f"you may only place and list your own orders, not those of {user!r}",
            metadata={"user": user},
        )


class OrderNotCancellable(FailedPrecondition):
    reason = "ORDER_NOT_CANCELLABLE"

    def __init__(self, name: str, state: str) -> None:
        super().__init__(
            f"order {name!r} is {state}; only a PENDING order can be cancelled",
            metadata={"order": name, "state": f"ORDER_STATE_{state}"},
        )


class EtagMismatch(Aborted):
    reason = "ETAG_MISMATCH"

    def __init__(self, name: str, current: str) -> None:
        super().__init__(
            f"order {name!r} has changed since the etag was read; get it again",
            metadata={"order": name, "current_etag": current},
        )


class OrderChanged(Aborted):
    """Another writer changed the order between read and write; the caller may retry."""

    reason = "CONCURRENT_UPDATE"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"order {name!r} was changed by another call; retry", metadata={"order": name}
        )


class ProductsNotFound(FailedPrecondition):
    reason = "PRODUCT_NOT_FOUND"

    def __init__(self, names: Sequence[str]) -> None:
        listed = ", ".join(repr(name) for name in names)
        super().__init__(
            f"the catalog has no product {listed}", metadata={"products": ",".join(names)}
        )


class CurrencyMismatch(FailedPrecondition):
    reason = "CURRENCY_MISMATCH"

    def __init__(self, currencies: Sequence[str]) -> None:
        super().__init__(
            f"the products are priced in several currencies ({', '.join(currencies)}); "
            "order them separately",
            metadata={"currencies": ",".join(currencies)},
        )


class CatalogUnavailable(Unavailable):
    reason = "CATALOG_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__(
            "the catalog cannot be reached to price the order; retry later", retry_after=1.0
        )


class InvalidPaymentToken(InvalidArgument):
    reason = "INVALID_PAYMENT_TOKEN"

    def __init__(self, description: str) -> None:
        super().__init__(
            f"payment_token {description}",
            violations=[FieldViolation("payment_token", description)],
        )
