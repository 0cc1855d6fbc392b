"""In-memory fakes of the catalog's ports, for unit tests of the use cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from catalog.domain.errors import CategoryAlreadyExists, ProductAlreadyExists
from catalog.domain.model import Category, Page, Product, ProductQuery
from catalog.domain.ports import CategoryRepository, ProductRepository, UnitOfWork
from runtime.idempotency import RecordedRequest
from tests.support import fakes


@dataclass
class FakeStore:
    """What a committed "database" holds."""

    categories: dict[str, Category] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    requests: dict[str, RecordedRequest] = field(default_factory=dict)


class FakeCategoryRepository(CategoryRepository):
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, category_id: str) -> Category | None:
        return self._store.categories.get(category_id)

    async def exists(self, category_id: str) -> bool:
        return category_id in self._store.categories

    async def add(self, category: Category) -> None:
        if category.id in self._store.categories:
            raise CategoryAlreadyExists(category.name)
        self._store.categories[category.id] = category

    async def list(self, page_size: int, after_id: str | None) -> tuple[list[Category], str | None]:
        ids = sorted(i for i in self._store.categories if after_id is None or i > after_id)
        items = [self._store.categories[i] for i in ids[:page_size]]
        return items, (items[-1].id if len(ids) > page_size else None)


class FakeProductRepository(ProductRepository):
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, product_id: str) -> Product | None:
        return self._store.products.get(product_id)

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        return {i: self._store.products[i] for i in product_ids if i in self._store.products}

    async def add(self, product: Product) -> None:
        if product.id in self._store.products:
            raise ProductAlreadyExists(product.name)
        self._store.products[product.id] = product

    async def update(self, product: Product, expected_revision: int) -> bool:
        current = self._store.products.get(product.id)
        if current is None or current.revision != expected_revision:
            return False
        self._store.products[product.id] = product
        return True

    async def delete(self, product_id: str, expected_revision: int) -> bool:
        current = self._store.products.get(product_id)
        if current is None or current.revision != expected_revision:
            return False
        del self._store.products[product_id]
        return True

    async def query(self, query: ProductQuery) -> Page:
        def matches(p: Product) -> bool:
            return (
                (query.category_id is None or p.category_id == query.category_id)
                and (query.currency_code is None or p.price.currency_code == query.currency_code)
                and (query.min_price is None or p.price.total_nanos >= query.min_price.total_nanos)
                and (query.max_price is None or p.price.total_nanos <= query.max_price.total_nanos)
                and (query.after_id is None or p.id > query.after_id)
            )

        found = sorted((p for p in self._store.products.values() if matches(p)), key=lambda p: p.id)
        items = found[: query.page_size]
        return Page(items, items[-1].id if len(found) > query.page_size else None)


class FakeUnitOfWork(fakes.FakeUnitOfWork[FakeStore], UnitOfWork):
    """Works on a copy of the store; commit publishes the copy, so rollback really discards."""

    def _bind(self, working: FakeStore) -> None:
        self.categories = FakeCategoryRepository(working)
        self.products = FakeProductRepository(working)
