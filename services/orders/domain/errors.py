"""Orders' errors; each names its condition and carries a stable reason."""

from __future__ import annotations

from collections.abc import Sequence

from runtime.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)

DOMAIN = "orders.agora"


class OrderNotFound(NotFound):
    reason = "ORDER_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"order {name!r} does not exist", metadata={"order": name})


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
