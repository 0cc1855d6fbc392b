"""What the catalog publishes: which use case emits which event, and the contract's message."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Self

import pytest

from agora.catalog.v1 import events_pb2
from catalog.adapters.events import to_messages
from catalog.domain import usecases
from catalog.domain.commands import CreateCategory, CreateProduct, DeleteProduct, UpdateProduct
from catalog.domain.errors import (
    CategoryAlreadyExists,
    EtagMismatch,
    ProductAlreadyExists,
    ProductNotFound,
    UnknownCategory,
)
from catalog.domain.events import CategoryCreated, ProductCreated, ProductDeleted, ProductUpdated
from catalog.domain.model import Category, Money, Product, ProductChanges
from runtime.errors import InvalidArgument
from runtime.idempotency import ConcurrentRequest, Idempotency, RecordedRequest
from tests.support.fakes import FakeRequestLog
from tests.unit.catalog.fakes import FakeStore, FakeUnitOfWork

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
TEA_PRICE = Money("EUR", 4, 500_000_000)
GREEN_TEA = CreateProduct("green-tea", "Green tea", "tea", TEA_PRICE)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


def published(store: FakeStore) -> list[object]:
    return uow(store).published


class RacingRequestLog(FakeRequestLog):
    """A request log whose id another call with the same id has just taken."""

    async def add(self, request: RecordedRequest) -> None:
        raise ConcurrentRequest(request.request_id)


class RacedUnitOfWork(FakeUnitOfWork):
    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.requests = RacingRequestLog({})
        return self


@pytest.fixture
async def tea(store: FakeStore) -> Product:
    """The tea category with green tea in it; what that published is forgotten."""
    await usecases.create_category(uow(store), CreateCategory("tea", "Tea"), NOON)
    await usecases.create_category(uow(store), CreateCategory("herbal", "Herbal"), NOON)
    product = await usecases.create_product(uow(store), GREEN_TEA, NOON)
    published(store).clear()
    return product


async def test_creating_a_category_publishes_category_created(store: FakeStore) -> None:
    command = CreateCategory("tea", "Tea", Idempotency("c-1", "fp"))
    tea = await usecases.create_category(uow(store), command, NOON)
    assert published(store) == [CategoryCreated(tea)]
    again = await usecases.create_category(uow(store), command, LATER)
    assert again == tea
    with pytest.raises(CategoryAlreadyExists):
        await usecases.create_category(uow(store), CreateCategory("tea", "Other"), NOON)
    assert published(store) == [CategoryCreated(tea)]


async def test_creating_a_product_publishes_product_created(store: FakeStore) -> None:
    await usecases.create_category(uow(store), CreateCategory("tea", "Tea"), NOON)
    command = replace(GREEN_TEA, idempotency=Idempotency("p-1", "fp"))
    product = await usecases.create_product(uow(store), command, NOON)
    assert published(store)[1:] == [ProductCreated(product)]
    assert await usecases.create_product(uow(store), command, LATER) == product
    assert published(store)[1:] == [ProductCreated(product)]


async def test_refused_creates_publish_nothing(store: FakeStore) -> None:
    with pytest.raises(UnknownCategory):
        await usecases.create_product(uow(store), GREEN_TEA, NOON)
    assert published(store) == []
    await usecases.create_category(uow(store), CreateCategory("tea", "Tea"), NOON)
    first = replace(GREEN_TEA, idempotency=Idempotency("p-1", "a"))
    await usecases.create_product(uow(store), first, NOON)
    published(store).clear()
    with pytest.raises(ProductAlreadyExists):
        await usecases.create_product(uow(store), GREEN_TEA, NOON)
    with pytest.raises(InvalidArgument):  # the request id of another request
        await usecases.create_product(
            uow(store), replace(first, product_id="", idempotency=Idempotency("p-1", "b")), NOON
        )
    assert published(store) == []


async def test_an_update_publishes_the_product_after_it_and_only_the_fields_that_changed(
    store: FakeStore, tea: Product
) -> None:
    changes = ProductChanges(display_name="Green tea", price=Money("EUR", 5), category_id="herbal")
    updated = await usecases.update_product(uow(store), UpdateProduct("green-tea", changes), LATER)
    assert published(store) == [ProductUpdated(updated, ("category_id", "price"))]
    assert published(store)[0] == ProductUpdated(
        store.products["green-tea"], ("category_id", "price")
    )
    assert updated.update_time == LATER


async def test_an_update_that_changes_no_value_keeps_the_product_and_publishes_nothing(
    store: FakeStore, tea: Product
) -> None:
    same = ProductChanges(display_name="Green tea", description="", price=TEA_PRICE)
    result = await usecases.update_product(
        uow(store), UpdateProduct("green-tea", same, etag=tea.etag), LATER
    )
    assert result == tea
    assert store.products["green-tea"] == tea
    assert published(store) == []


async def test_a_replayed_update_publishes_nothing_new(store: FakeStore, tea: Product) -> None:
    command = UpdateProduct(
        "green-tea", ProductChanges(price=Money("EUR", 5)), idempotency=Idempotency("u-1", "fp")
    )
    updated = await usecases.update_product(uow(store), command, LATER)
    assert await usecases.update_product(uow(store), command, LATER) == updated
    assert published(store) == [ProductUpdated(updated, ("price",))]


async def test_refused_updates_publish_nothing(store: FakeStore, tea: Product) -> None:
    with pytest.raises(EtagMismatch):
        await usecases.update_product(
            uow(store),
            UpdateProduct("green-tea", ProductChanges(display_name="Sencha"), etag="stale"),
            LATER,
        )
    with pytest.raises(UnknownCategory):
        await usecases.update_product(
            uow(store), UpdateProduct("green-tea", ProductChanges(category_id="coffee")), LATER
        )
    with pytest.raises(ProductNotFound):
        await usecases.update_product(
            uow(store), UpdateProduct("black-tea", ProductChanges(display_name="Black")), LATER
        )
    assert published(store) == []


async def test_a_delete_publishes_product_deleted_once(store: FakeStore, tea: Product) -> None:
    command = DeleteProduct("green-tea", idempotency=Idempotency("d-1", "fp"))
    await usecases.delete_product(uow(store), command)
    await usecases.delete_product(uow(store), command)
    assert published(store) == [ProductDeleted("green-tea")]


async def test_refused_deletes_publish_nothing(store: FakeStore, tea: Product) -> None:
    with pytest.raises(EtagMismatch):
        await usecases.delete_product(uow(store), DeleteProduct("green-tea", etag="stale"))
    with pytest.raises(ProductNotFound):
        await usecases.delete_product(uow(store), DeleteProduct("black-tea"))
    assert "green-tea" in store.products
    assert published(store) == []


async def test_changes_rolled_back_after_their_event_was_emitted_publish_nothing(
    store: FakeStore, tea: Product
) -> None:
    def raced() -> RacedUnitOfWork:
        return RacedUnitOfWork(store)

    taken = Idempotency("taken", "fp")
    with pytest.raises(ConcurrentRequest):
        await usecases.create_category(raced(), CreateCategory("coffee", "Coffee", taken), NOON)
    with pytest.raises(ConcurrentRequest):
        await usecases.create_product(
            raced(), CreateProduct("sencha", "Sencha", "tea", TEA_PRICE, "", taken), NOON
        )
    with pytest.raises(ConcurrentRequest):
        await usecases.update_product(
            raced(), UpdateProduct("green-tea", ProductChanges(display_name="X"), "", taken), LATER
        )
    with pytest.raises(ConcurrentRequest):
        await usecases.delete_product(raced(), DeleteProduct("green-tea", "", taken))
    assert set(store.categories) == {"tea", "herbal"}
    assert store.products == {"green-tea": tea}
    assert published(store) == []


def test_category_created_is_the_contract_message_about_the_category() -> None:
    [(message, aggregate)] = to_messages(CategoryCreated(Category("tea", "Tea", NOON)))
    assert isinstance(message, events_pb2.CategoryCreated)
    assert aggregate == "categories/tea"
    assert message.category.name == "categories/tea"
    assert message.category.display_name == "Tea"


def test_product_created_and_updated_carry_the_product_as_the_servicer_shows_it() -> None:
    product = Product("green-tea", "Green tea", "tea", TEA_PRICE, "", NOON, LATER, revision=2)
    [(created, aggregate)] = to_messages(ProductCreated(product))
    assert isinstance(created, events_pb2.ProductCreated)
    assert aggregate == "products/green-tea"
    assert created.product.category == "categories/tea"
    assert (created.product.price.units, created.product.price.nanos) == (4, 500_000_000)
    assert created.product.etag == product.etag
    [(updated, aggregate)] = to_messages(
        ProductUpdated(product, ("display_name", "category_id", "price"))
    )
    assert isinstance(updated, events_pb2.ProductUpdated)
    assert aggregate == "products/green-tea"
    assert updated.product == created.product
    # Paths relative to the contract's Product, which calls the category `category`.
    assert list(updated.changed_fields) == ["display_name", "category", "price"]


def test_product_deleted_names_the_product() -> None:
    [(message, aggregate)] = to_messages(ProductDeleted("green-tea"))
    assert message == events_pb2.ProductDeleted(product="products/green-tea")
    assert aggregate == "products/green-tea"


def test_anything_else_is_not_the_catalog_s_to_publish() -> None:
    with pytest.raises(TypeError, match="catalog does not publish"):
        to_messages(object())
