"""What the catalog's use cases need from the outside world, as abstract classes."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from catalog.domain.model import Category, Page, Product, ProductQuery
from runtime import unit_of_work


class CategoryRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, category_id: str) -> Category | None: ...

    @abc.abstractmethod
    async def exists(self, category_id: str) -> bool: ...

    @abc.abstractmethod
    async def add(self, category: Category) -> None:
        """Stores a new category; raises CategoryAlreadyExists if the id is taken."""

    @abc.abstractmethod
    async def list(self, page_size: int, after_id: str | None) -> tuple[list[Category], str | None]:
        """Categories ordered by id after ``after_id``, and the id to continue after (or None)."""


class ProductRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, product_id: str) -> Product | None: ...

    @abc.abstractmethod
    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products that exist among ``product_ids``, by id."""

    @abc.abstractmethod
    async def add(self, product: Product) -> None:
        """Stores a new product; raises ProductAlreadyExists if the id is taken."""

    @abc.abstractmethod
    async def update(self, product: Product, expected_revision: int) -> bool:
        """Saves ``product`` if its stored revision is still ``expected_revision``."""

    @abc.abstractmethod
    async def delete(self, product_id: str, expected_revision: int) -> bool:
        """Deletes the product if its stored revision is still ``expected_revision``."""

    @abc.abstractmethod
    async def query(self, query: ProductQuery) -> Page: ...


class UnitOfWork(unit_of_work.UnitOfWork):
    """One transaction over the catalog's repositories; ``commit`` makes the changes durable."""

    categories: CategoryRepository
    products: ProductRepository
