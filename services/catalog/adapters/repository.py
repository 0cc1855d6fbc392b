"""SQLAlchemy (Core) implementations of the catalog's repositories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog.adapters.orm import categories, products
from catalog.domain.errors import CategoryAlreadyExists, ProductAlreadyExists
from catalog.domain.model import Category, Money, Page, Product, ProductQuery
from catalog.domain.ports import CategoryRepository, ProductRepository


class SqlAlchemyCategoryRepository(CategoryRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, category_id: str) -> Category | None:
        row = (
            await self._connection.execute(
                sa.select(categories).where(categories.c.id == category_id)
            )
        ).first()
        return None if row is None else _category(row)

    async def exists(self, category_id: str) -> bool:
        found = await self._connection.scalar(
            sa.select(categories.c.id).where(categories.c.id == category_id)
        )
        return found is not None

    async def add(self, category: Category) -> None:
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    sa.insert(categories).values(
                        id=category.id,
                        display_name=category.display_name,
                        create_time=category.create_time,
                    )
                )
        except IntegrityError:
            raise CategoryAlreadyExists(category.name) from None

    async def list(self, page_size: int, after_id: str | None) -> tuple[list[Category], str | None]:
        statement = sa.select(categories).order_by(categories.c.id).limit(page_size + 1)
        if after_id is not None:
            statement = statement.where(categories.c.id > after_id)
        rows = (await self._connection.execute(statement)).all()
        items = [_category(row) for row in rows[:page_size]]
        return items, (items[-1].id if len(rows) > page_size else None)


# Built once: building a statement and its cache key costs more than running it on SQLite.
_PRODUCT_BY_ID = sa.select(products).where(products.c.id == sa.bindparam("product_id"))


class SqlAlchemyProductRepository(ProductRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, product_id: str) -> Product | None:
        row = (await self._connection.execute(_PRODUCT_BY_ID, {"product_id": product_id})).first()
        return None if row is None else _product(row)

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        if not product_ids:
            return {}
        rows = await self._connection.execute(
            sa.select(products).where(products.c.id.in_(product_ids))
        )
        return {row.id: _product(row) for row in rows}

    async def add(self, product: Product) -> None:
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    sa.insert(products).values(id=product.id, **_product_values(product))
                )
        except IntegrityError:
            raise ProductAlreadyExists(product.name) from None

    async def update(self, product: Product, expected_revision: int) -> bool:
        result = await self._connection.execute(
            sa.update(products)
            .where(products.c.id == product.id, products.c.revision == expected_revision)
            .values(**_product_values(product))
        )
        return bool(result.rowcount)

    async def delete(self, product_id: str, expected_revision: int) -> bool:
        result = await self._connection.execute(
            sa.delete(products).where(
                products.c.id == product_id, products.c.revision == expected_revision
            )
        )
        return bool(result.rowcount)

    async def query(self, query: ProductQuery) -> Page:
        statement = sa.select(products).order_by(products.c.id).limit(query.page_size + 1)
        if query.category_id is not None:
            statement = statement.where(products.c.category_id == query.category_id)
        if query.currency_code is not None:
            statement = statement.where(products.c.price_currency == query.currency_code)
        price = sa.tuple_(products.c.price_units, products.c.price_nanos)
        if query.min_price is not None:
            statement = statement.where(price >= (query.min_price.units, query.min_price.nanos))
        if query.max_price is not None:
            statement = statement.where(price <= (query.max_price.units, query.max_price.nanos))
        if query.after_id is not None:
            statement = statement.where(products.c.id > query.after_id)
        rows = (await self._connection.execute(statement)).all()
        items = [_product(row) for row in rows[: query.page_size]]
        return Page(items, items[-1].id if len(rows) > query.page_size else None)


def _product_values(product: Product) -> dict[str, Any]:
    return {
        "display_name": product.display_name,
        "description": product.description,
        "category_id": product.category_id,
        "price_currency": product.price.currency_code,
        "price_units": product.price.units,
        "price_nanos": product.price.nanos,
        "create_time": product.create_time,
        "update_time": product.update_time,
        "revision": product.revision,
    }


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _category(row: sa.Row[Any]) -> Category:
    return Category(id=row.id, display_name=row.display_name, create_time=_utc(row.create_time))


def _product(row: sa.Row[Any]) -> Product:
    return Product(
        id=row.id,
        display_name=row.display_name,
        description=row.description,
        category_id=row.category_id,
        price=Money(row.price_currency, row.price_units, row.price_nanos),
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        revision=row.revision,
    )
