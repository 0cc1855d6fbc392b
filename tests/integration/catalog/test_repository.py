"""The catalog's SQLAlchemy adapters against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from catalog.adapters.orm import metadata
from catalog.adapters.unit_of_work import SqlAlchemyUnitOfWork
from catalog.bootstrap import MIGRATIONS
from catalog.domain import usecases
from catalog.domain.commands import CreateCategory, CreateProduct, UpdateProduct
from catalog.domain.errors import EtagMismatch, ProductAlreadyExists
from catalog.domain.model import Money, ProductChanges, ProductQuery
from runtime import db
from runtime.idempotency import Idempotency
from tests.support.database import migrated_engine, schema_differences

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


async def test_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    assert await schema_differences(engine, metadata) == []


async def test_migrating_twice_changes_nothing(engine: AsyncEngine) -> None:
    await db.migrate(engine, MIGRATIONS)


async def seed(engine: AsyncEngine) -> None:
    await usecases.create_category(SqlAlchemyUnitOfWork(engine), CreateCategory("tea", "Tea"), NOON)
    for product_id, units, nanos, currency in [
        ("assam", 3, 0, "EUR"),
        ("darjeeling", 7, 250_000_000, "EUR"),
        ("earl-grey", 4, 999_999_999, "EUR"),
        ("gyokuro", 5, 0, "EUR"),
        ("matcha", 5, 0, "USD"),
    ]:
        await usecases.create_product(
            SqlAlchemyUnitOfWork(engine),
            CreateProduct(product_id, product_id.title(), "tea", Money(currency, units, nanos)),
            NOON,
        )


async def test_price_filters_compare_units_and_nanos_and_respect_currency(
    engine: AsyncEngine,
) -> None:
    await seed(engine)
    page = await usecases.list_products(
        SqlAlchemyUnitOfWork(engine),
        ProductQuery(50, min_price=Money("EUR", 4, 999_999_999), max_price=Money("EUR", 5)),
    )
    assert [p.id for p in page.items] == ["earl-grey", "gyokuro"]
    assert page.next_after is None


async def test_keyset_paging_visits_each_product_once(engine: AsyncEngine) -> None:
    await seed(engine)
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await usecases.list_products(
            SqlAlchemyUnitOfWork(engine), ProductQuery(2, category_id="tea", after_id=after)
        )
        seen.extend(p.id for p in page.items)
        after = page.next_after
        if after is None:
            break
    assert seen == ["assam", "darjeeling", "earl-grey", "gyokuro", "matcha"]


async def test_stored_products_read_back_equal_with_utc_times(engine: AsyncEngine) -> None:
    await seed(engine)
    product = await usecases.get_product(SqlAlchemyUnitOfWork(engine), "darjeeling")
    assert product.price == Money("EUR", 7, 250_000_000)
    assert product.create_time == NOON
    assert product.create_time is not None
    assert product.create_time.tzinfo is not None


async def test_a_duplicate_id_is_already_exists_and_leaves_the_first_intact(
    engine: AsyncEngine,
) -> None:
    await seed(engine)
    with pytest.raises(ProductAlreadyExists):
        await usecases.create_product(
            SqlAlchemyUnitOfWork(engine),
            CreateProduct("assam", "Impostor", "tea", Money("EUR", 1)),
            NOON,
        )
    product = await usecases.get_product(SqlAlchemyUnitOfWork(engine), "assam")
    assert product.display_name == "Assam"


async def test_concurrent_updates_from_one_version_let_exactly_one_win(
    engine: AsyncEngine,
) -> None:
    await seed(engine)
    etag = (await usecases.get_product(SqlAlchemyUnitOfWork(engine), "assam")).etag
    outcomes = await asyncio.gather(
        *(
            usecases.update_product(
                SqlAlchemyUnitOfWork(engine),
                UpdateProduct("assam", ProductChanges(display_name=f"Assam {i}"), etag=etag),
                NOON,
            )
            for i in range(5)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(o, EtagMismatch) for o in losers), losers
    stored = await usecases.get_product(SqlAlchemyUnitOfWork(engine), "assam")
    assert stored.display_name == winners[0].display_name
    assert stored.revision == 2


async def test_concurrent_creates_with_one_request_id_create_one_product(
    engine: AsyncEngine,
) -> None:
    await seed(engine)
    command = CreateProduct(
        "", "Sencha", "tea", Money("EUR", 6), idempotency=Idempotency("same-request", "fp")
    )
    outcomes = await asyncio.gather(
        *(usecases.create_product(SqlAlchemyUnitOfWork(engine), command, NOON) for _ in range(4)),
        return_exceptions=True,
    )
    created = {o.id for o in outcomes if not isinstance(o, BaseException)}
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    # Losers either replayed the winner's product or were told to retry (ABORTED).
    assert all(getattr(f, "reason", None) == "CONCURRENT_REQUEST" for f in failures), failures
    page = await usecases.list_products(SqlAlchemyUnitOfWork(engine), ProductQuery(50))
    senchas = [p.id for p in page.items if p.display_name == "Sencha"]
    assert len(senchas) == 1
    assert created <= set(senchas)
