"""The catalog's errors; each names its condition and carries a stable reason."""

from __future__ import annotations

from runtime.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound

DOMAIN = "catalog.agora"


class CategoryNotFound(NotFound):
    reason = "CATEGORY_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"category {name!r} does not exist", metadata={"category": name})


class UnknownCategory(FailedPrecondition):
    """A product refers to a category that does not exist."""

    reason = "CATEGORY_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"category {name!r} does not exist; create it first", metadata={"category": name}
        )


class CategoryAlreadyExists(AlreadyExists):
    reason = "CATEGORY_ALREADY_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"category {name!r} already exists", metadata={"category": name})


class ProductNotFound(NotFound):
    reason = "PRODUCT_NOT_FOUND"

    def __init__(self, names: list[str]) -> None:
        listed = ", ".join(repr(n) for n in names)
        noun = "product" if len(names) == 1 else "products"
        super().__init__(f"{noun} {listed} not found", metadata={"product": ",".join(names)})


class ProductAlreadyExists(AlreadyExists):
    reason = "PRODUCT_ALREADY_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"product {name!r} already exists", metadata={"product": name})


class EtagMismatch(Aborted):
    reason = "ETAG_MISMATCH"

    def __init__(self, name: str, current: str) -> None:
        super().__init__(
            f"product {name!r} changed since it was read; read it again and retry",
            metadata={"product": name, "current_etag": current},
        )
