"""The catalog's use cases: one async function each, over the ports in :mod:`ports`.

Each mutating use case runs in one unit of work: it checks the request log first (a
repeat of an earlier call answers with what that call produced), applies the rules,
writes, emits the event of the change (see :mod:`events`), records the request id and
commits, all in one transaction. A repeat emits nothing, and neither does a failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from catalog.domain.commands import (
    CreateCategory,
    CreateProduct,
    DeleteProduct,
    UpdateProduct,
)
from catalog.domain.errors import (
    CategoryNotFound,
    EtagMismatch,
    ProductNotFound,
    UnknownCategory,
)
from catalog.domain.events import (
    CategoryCreated,
    ProductCreated,
    ProductDeleted,
    ProductUpdated,
)
from catalog.domain.model import Category, Page, Product, ProductQuery
from catalog.domain.ports import UnitOfWork
from runtime import idempotency


def new_id(prefix: str) -> str:
    """A server-assigned id that satisfies the id rules: a letter, then hex digits."""
    return f"{prefix}{uuid.uuid4().hex}"


async def create_category(uow: UnitOfWork, command: CreateCategory, now: datetime) -> Category:
    async with uow.writing():
        replay = await idempotency.replay(uow.requests, command.idempotency, "create_category")
        if replay is not None:
            existing = await uow.categories.get(replay.resource.removeprefix("categories/"))
            if existing is None:
                raise CategoryNotFound(replay.resource)
            return existing
        category = Category(
            id=command.category_id or new_id("c"),
            display_name=command.display_name,
            create_time=now,
        )
        await uow.categories.add(category)
        uow.emit(CategoryCreated(category))
        await idempotency.record(
            uow.requests, command.idempotency, "create_category", category.name
        )
        await uow.commit()
        return category


async def get_category(uow: UnitOfWork, category_id: str) -> Category:
    async with uow:
        category = await uow.categories.get(category_id)
    if category is None:
        raise CategoryNotFound(f"categories/{category_id}")
    return category


async def list_categories(
    uow: UnitOfWork, page_size: int, after_id: str | None
) -> tuple[list[Category], str | None]:
    async with uow:
        return await uow.categories.list(page_size, after_id)


async def create_product(uow: UnitOfWork, command: CreateProduct, now: datetime) -> Product:
    async with uow.writing():
        replay = await idempotency.replay(uow.requests, command.idempotency, "create_product")
        if replay is not None:
            return await _require_product(uow, replay.resource.removeprefix("products/"))
        if not await uow.categories.exists(command.category_id):
            raise UnknownCategory(f"categories/{command.category_id}")
        product = Product(
            id=command.product_id or new_id("p"),
            display_name=command.display_name,
            description=command.description,
            category_id=command.category_id,
            price=command.price,
            create_time=now,
            update_time=now,
        )
        await uow.products.add(product)
        uow.emit(ProductCreated(product))
        await idempotency.record(uow.requests, command.idempotency, "create_product", product.name)
        await uow.commit()
        return product


async def get_product(uow: UnitOfWork, product_id: str) -> Product:
    async with uow:
        return await _require_product(uow, product_id)


async def batch_get_products(uow: UnitOfWork, product_ids: Sequence[str]) -> list[Product]:
    """The products in the order asked for; all or nothing."""
    async with uow:
        found = await uow.products.get_many(sorted(set(product_ids)))
    missing = [f"products/{pid}" for pid in dict.fromkeys(product_ids) if pid not in found]
    if missing:
        raise ProductNotFound(missing)
    return [found[pid] for pid in product_ids]


async def list_products(uow: UnitOfWork, query: ProductQuery) -> Page:
    async with uow:
        return await uow.products.query(query)


async def update_product(uow: UnitOfWork, command: UpdateProduct, now: datetime) -> Product:
    """Applies the changes; one that changes no value leaves the product as it is.

    Such a no-op keeps the etag and the update time and publishes nothing; any other
    update publishes :class:`ProductUpdated` with the fields whose value changed.
    """
    async with uow.writing():
        replay = await idempotency.replay(uow.requests, command.idempotency, "update_product")
        if replay is not None:
            return await _require_product(uow, command.product_id)
        current = await _require_product(uow, command.product_id)
        if command.etag and command.etag != current.etag:
            raise EtagMismatch(current.name, current.etag)
        new_category = command.changes.category_id
        if new_category is not None and not await uow.categories.exists(new_category):
            raise UnknownCategory(f"categories/{new_category}")
        changed = command.changes.differences(current)
        updated = current
        if changed:
            updated = command.changes.apply(current, now)
            if not await uow.products.update(updated, expected_revision=current.revision):
                # Someone else saved in between our read and our write.
                latest = await _require_product(uow, command.product_id)
                raise EtagMismatch(latest.name, latest.etag)
            uow.emit(ProductUpdated(updated, tuple(changed)))
        await idempotency.record(uow.requests, command.idempotency, "update_product", updated.name)
        await uow.commit()
        return updated


async def delete_product(uow: UnitOfWork, command: DeleteProduct) -> None:
    async with uow.writing():
        if (
            await idempotency.replay(uow.requests, command.idempotency, "delete_product")
            is not None
        ):
            return
        current = await _require_product(uow, command.product_id)
        if command.etag and command.etag != current.etag:
            raise EtagMismatch(current.name, current.etag)
        if not await uow.products.delete(command.product_id, expected_revision=current.revision):
            latest = await uow.products.get(command.product_id)
            if latest is None:
                raise ProductNotFound([current.name])
            raise EtagMismatch(latest.name, latest.etag)
        uow.emit(ProductDeleted(current.id))
        await idempotency.record(uow.requests, command.idempotency, "delete_product", current.name)
        await uow.commit()


async def _require_product(uow: UnitOfWork, product_id: str) -> Product:
    product = await uow.products.get(product_id)
    if product is None:
        raise ProductNotFound([f"products/{product_id}"])
    return product
