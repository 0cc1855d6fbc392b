"""Inputs of the catalog's mutating use cases, already validated by the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.domain.model import Money, ProductChanges
from runtime.idempotency import Idempotency


@dataclass(frozen=True)
class CreateCategory:
    category_id: str
    display_name: str
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class CreateProduct:
    product_id: str
    display_name: str
    category_id: str
    price: Money
    description: str = ""
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class UpdateProduct:
    product_id: str
    changes: ProductChanges
    etag: str = ""
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class DeleteProduct:
    product_id: str
    etag: str = ""
    idempotency: Idempotency | None = None
