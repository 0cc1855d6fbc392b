"""What the catalog tells other services, as plain domain events.

A use case emits them on its unit of work in the transaction that makes the change, so
they are published if and only if that change commits (see :mod:`runtime.outbox`). A
replayed request and a change that changes nothing emit none.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.domain.model import Category, Product


@dataclass(frozen=True)
class CategoryCreated:
    """A category was created."""

    category: Category


@dataclass(frozen=True)
class ProductCreated:
    """A product was created."""

    product: Product


@dataclass(frozen=True)
class ProductUpdated:
    """A product changed: ``product`` is how it is now.

    ``changed_fields`` names the product's fields (as the domain names them, such as
    ``category_id``) whose value differs from before, in field order; never empty.
    """

    product: Product
    changed_fields: tuple[str, ...]


@dataclass(frozen=True)
class ProductDeleted:
    """A product was deleted."""

    product_id: str

    @property
    def name(self) -> str:
        return f"products/{self.product_id}"
