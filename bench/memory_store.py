"""An in-memory catalog store, for one experiment: the catalog with no database under it.

``bench/instrumented_catalog.py --memory-store`` hands :class:`MemoryUnitOfWork` to the
catalog's composition root (``build(settings, uow=...)``), so every call runs the real
runtime, interceptor, servicer, conversions and use cases, but no SQL, no connection pool
and no aiosqlite thread hop. What such a catalog costs less than the real one is what the
database path costs.

Unlike the unit tests' fakes it copies nothing per call: the benchmark only reads after
seeding, and a copy of the store per call would measure the copy. Writes apply at once and
``rollback`` undoes nothing, so it is no database for anything but this measurement.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from catalog.domain.errors import CategoryAlreadyExists, ProductAlreadyExists
from catalog.domain.model import Category, Page, Product, ProductQuery
from catalog.domain.ports import CategoryRepository, ProductRepository, UnitOfWork
from runtime.idempotency import RecordedRequest, RequestLog


@dataclass
class MemoryStore:
    """Everything stored, shared by every unit of work; ``product_ids`` is kept sorted."""

    categories: dict[str, Category] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    product_ids: list[str] = field(default_factory=list)
    requests: dict[str, RecordedRequest] = field(default_factory=dict)


class MemoryCategoryRepository(CategoryRepository):
    def __init__(self, store: MemoryStore) -> None:
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


class MemoryProductRepository(ProductRepository):
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def get(self, product_id: str) -> Product | None:
        return self._store.products.get(product_id)

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        products = self._store.products
        return {i: products[i] for i in product_ids if i in products}

    async def add(self, product: Product) -> None:
        if product.id in self._store.products:
            raise ProductAlreadyExists(product.name)
        self._store.products[product.id] = product
        bisect.insort(self._store.product_ids, product.id)

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
        self._store.product_ids.remove(product_id)
        return True

    async def query(self, query: ProductQuery) -> Page:
        """Walks the ids in order from ``after_id``, as an index scan would."""
        ids = self._store.product_ids
        start = 0 if query.after_id is None else bisect.bisect_right(ids, query.after_id)
        items: list[Product] = []
        for product_id in ids[start:]:
            product = self._store.products[product_id]
            if _matches(product, query):
                if len(items) == query.page_size:
                    return Page(items, items[-1].id)
                items.append(product)
        return Page(items, None)


def _matches(product: Product, query: ProductQuery) -> bool:
    price = product.price
    return (
        (query.category_id is None or product.category_id == query.category_id)
        and (query.currency_code is None or price.currency_code == query.currency_code)
        and (query.min_price is None or price.total_nanos >= query.min_price.total_nanos)
        and (query.max_price is None or price.total_nanos <= query.max_price.total_nanos)
    )


class MemoryRequestLog(RequestLog):
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def find(self, request_id: str) -> RecordedRequest | None:
        return self._store.requests.get(request_id)

    async def add(self, request: RecordedRequest) -> None:
        self._store.requests[request.request_id] = request


class MemoryUnitOfWork(UnitOfWork):
    """A unit of work over the shared :class:`MemoryStore`: no copy, no transaction."""

    def __init__(self, store: MemoryStore) -> None:
        self.categories = MemoryCategoryRepository(store)
        self.products = MemoryProductRepository(store)
        self.requests = MemoryRequestLog(store)

    async def commit(self) -> None:
        return None

    async def rollback(self) -> None:
        return None
