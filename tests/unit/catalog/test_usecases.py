"""The catalog's use cases over in-memory fakes: rules, idempotency, optimistic concurrency."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catalog.domain import usecases
from catalog.domain.commands import (
    CreateCategory,
    CreateProduct,
    DeleteProduct,
    UpdateProduct,
)
from catalog.domain.errors import (
    CategoryAlreadyExists,
    CategoryNotFound,
    EtagMismatch,
    ProductAlreadyExists,
    ProductNotFound,
    UnknownCategory,
)
from catalog.domain.model import Money, ProductChanges, ProductQuery
from runtime.errors import InvalidArgument
from runtime.idempotency import Idempotency
from tests.unit.catalog.fakes import FakeStore, FakeUnitOfWork

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
TEA_PRICE = Money("EUR", 4, 500_000_000)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


async def seed_tea(store: FakeStore) -> None:
    await usecases.create_category(uow(store), CreateCategory("tea", "Tea"), NOON)
    await usecases.create_product(
        uow(store), CreateProduct("green-tea", "Green tea", "tea", TEA_PRICE), NOON
    )


async def test_a_product_needs_an_existing_category(store: FakeStore) -> None:
    with pytest.raises(UnknownCategory) as caught:
        await usecases.create_product(
            uow(store), CreateProduct("green-tea", "Green tea", "tea", TEA_PRICE), NOON
        )
    assert caught.value.reason == "CATEGORY_NOT_FOUND"
    assert store.products == {}


async def test_duplicate_ids_are_refused(store: FakeStore) -> None:
    await seed_tea(store)
    with pytest.raises(CategoryAlreadyExists):
        await usecases.create_category(uow(store), CreateCategory("tea", "Other"), NOON)
    with pytest.raises(ProductAlreadyExists):
        await usecases.create_product(
            uow(store), CreateProduct("green-tea", "Other", "tea", TEA_PRICE), NOON
        )


async def test_server_assigns_a_valid_id_when_none_is_given(store: FakeStore) -> None:
    await seed_tea(store)
    product = await usecases.create_product(
        uow(store), CreateProduct("", "Black tea", "tea", TEA_PRICE), NOON
    )
    assert product.name.startswith("products/p")
    assert product.id in store.products


async def test_a_repeated_create_returns_the_first_product_and_creates_nothing(
    store: FakeStore,
) -> None:
    await seed_tea(store)
    command = CreateProduct("", "Oolong", "tea", TEA_PRICE, idempotency=Idempotency("r-1", "fp"))
    first = await usecases.create_product(uow(store), command, NOON)
    second = await usecases.create_product(uow(store), command, LATER)
    assert second == first
    assert len(store.products) == 2


async def test_a_request_id_reused_for_another_request_is_refused(store: FakeStore) -> None:
    await seed_tea(store)
    await usecases.create_product(
        uow(store),
        CreateProduct("", "Oolong", "tea", TEA_PRICE, idempotency=Idempotency("r-1", "fp-a")),
        NOON,
    )
    with pytest.raises(InvalidArgument) as caught:
        await usecases.create_product(
            uow(store),
            CreateProduct("", "Sencha", "tea", TEA_PRICE, idempotency=Idempotency("r-1", "fp-b")),
            NOON,
        )
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert len(store.products) == 2


async def test_update_changes_only_the_given_fields_and_moves_the_etag(store: FakeStore) -> None:
    await seed_tea(store)
    before = store.products["green-tea"]
    after = await usecases.update_product(
        uow(store),
        UpdateProduct("green-tea", ProductChanges(price=Money("EUR", 5)), etag=before.etag),
        LATER,
    )
    assert after.price == Money("EUR", 5)
    assert after.display_name == before.display_name
    assert after.update_time == LATER
    assert after.etag != before.etag
    assert store.products["green-tea"] == after


async def test_update_with_a_stale_etag_is_aborted_and_changes_nothing(store: FakeStore) -> None:
    await seed_tea(store)
    stale = store.products["green-tea"].etag
    await usecases.update_product(
        uow(store), UpdateProduct("green-tea", ProductChanges(display_name="Sencha")), LATER
    )
    with pytest.raises(EtagMismatch) as caught:
        await usecases.update_product(
            uow(store),
            UpdateProduct("green-tea", ProductChanges(display_name="Matcha"), etag=stale),
            LATER,
        )
    assert caught.value.metadata["current_etag"] == store.products["green-tea"].etag
    assert store.products["green-tea"].display_name == "Sencha"


async def test_update_to_an_unknown_category_is_refused(store: FakeStore) -> None:
    await seed_tea(store)
    with pytest.raises(UnknownCategory):
        await usecases.update_product(
            uow(store), UpdateProduct("green-tea", ProductChanges(category_id="coffee")), LATER
        )


async def test_delete_removes_and_a_repeat_with_the_same_request_id_succeeds(
    store: FakeStore,
) -> None:
    await seed_tea(store)
    command = DeleteProduct("green-tea", idempotency=Idempotency("d-1", "fp"))
    await usecases.delete_product(uow(store), command)
    await usecases.delete_product(uow(store), command)
    assert "green-tea" not in store.products
    with pytest.raises(ProductNotFound):
        await usecases.delete_product(uow(store), DeleteProduct("green-tea"))


async def test_batch_get_is_all_or_nothing_and_keeps_the_order(store: FakeStore) -> None:
    await seed_tea(store)
    await usecases.create_product(
        uow(store), CreateProduct("black-tea", "Black tea", "tea", TEA_PRICE), NOON
    )
    found = await usecases.batch_get_products(uow(store), ["green-tea", "black-tea", "green-tea"])
    assert [p.id for p in found] == ["green-tea", "black-tea", "green-tea"]
    with pytest.raises(ProductNotFound) as caught:
        await usecases.batch_get_products(uow(store), ["green-tea", "nope", "gone"])
    assert caught.value.metadata["product"] == "products/nope,products/gone"


async def test_list_pages_through_every_match_once(store: FakeStore) -> None:
    await usecases.create_category(uow(store), CreateCategory("tea", "Tea"), NOON)
    for index in range(7):
        await usecases.create_product(
            uow(store),
            CreateProduct(f"tea-{index}", f"Tea {index}", "tea", Money("EUR", index)),
            NOON,
        )
    seen: list[str] = []
    after = None
    while True:
        page = await usecases.list_products(
            uow(store),
            ProductQuery(3, "tea", Money("EUR", 2), Money("EUR", 5), after_id=after),
        )
        seen.extend(p.id for p in page.items)
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == ["tea-2", "tea-3", "tea-4", "tea-5"]


async def test_get_unknown_category_is_not_found(store: FakeStore) -> None:
    with pytest.raises(CategoryNotFound):
        await usecases.get_category(uow(store), "coffee")
