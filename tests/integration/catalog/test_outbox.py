"""The catalog's events reach its outbox in the transaction of the change, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agora.catalog.v1 import events_pb2
from catalog.adapters.orm import outbox
from catalog.adapters.unit_of_work import SqlAlchemyUnitOfWork
from catalog.bootstrap import MIGRATIONS
from catalog.domain import usecases
from catalog.domain.commands import CreateCategory, CreateProduct, DeleteProduct, UpdateProduct
from catalog.domain.errors import EtagMismatch
from catalog.domain.events import CategoryCreated
from catalog.domain.model import Category, Money, ProductChanges
from tests.support.database import migrated_engine

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ASSAM = CreateProduct("assam", "Assam", "tea", Money("EUR", 3))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


def uow(engine: AsyncEngine) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(engine)


async def outbox_rows(engine: AsyncEngine) -> list[sa.Row[Any]]:
    async with engine.connect() as connection:
        return list((await connection.execute(sa.select(outbox).order_by(outbox.c.position))).all())


async def test_each_committed_change_leaves_one_unsent_event_and_a_rolled_back_one_none(
    engine: AsyncEngine,
) -> None:
    await usecases.create_category(uow(engine), CreateCategory("tea", "Tea"), NOON)
    assam = await usecases.create_product(uow(engine), ASSAM, NOON)
    changes = ProductChanges(display_name="Assam", price=Money("EUR", 4))
    updated = await usecases.update_product(uow(engine), UpdateProduct("assam", changes), NOON)
    # A stale etag, a no-op update and an uncommitted transaction write no event.
    with pytest.raises(EtagMismatch):
        await usecases.update_product(
            uow(engine), UpdateProduct("assam", changes, etag=assam.etag), NOON
        )
    await usecases.update_product(uow(engine), UpdateProduct("assam", changes), NOON)
    async with uow(engine).writing() as work:
        coffee = Category("coffee", "Coffee", NOON)
        await work.categories.add(coffee)
        work.emit(CategoryCreated(coffee))  # never committed
    await usecases.delete_product(uow(engine), DeleteProduct("assam"))

    rows = await outbox_rows(engine)
    assert [(r.event_type, r.aggregate) for r in rows] == [
        ("agora.catalog.v1.CategoryCreated", "categories/tea"),
        ("agora.catalog.v1.ProductCreated", "products/assam"),
        ("agora.catalog.v1.ProductUpdated", "products/assam"),
        ("agora.catalog.v1.ProductDeleted", "products/assam"),
    ]
    assert all(r.sent_time is None for r in rows)
    assert len({r.event_id for r in rows}) == 4
    assert events_pb2.ProductCreated.FromString(rows[1].payload).product.etag == assam.etag
    update = events_pb2.ProductUpdated.FromString(rows[2].payload)
    assert update.product.etag == updated.etag
    assert list(update.changed_fields) == ["price"]
    deleted = events_pb2.ProductDeleted.FromString(rows[3].payload)
    assert deleted.product == "products/assam"
    assert await usecases.list_categories(uow(engine), 10, None) == (
        [await usecases.get_category(uow(engine), "tea")],
        None,
    )
