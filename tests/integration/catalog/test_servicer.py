"""CatalogService over a real socket: production interceptors, generated client, both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.type import money_pb2

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2_grpc
from agora.catalog.v1 import catalog_service_pb2 as pb
from catalog.bootstrap import build
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.status import error_info, field_violations

if TYPE_CHECKING:
    from agora.catalog.v1.catalog_service_pb2_grpc import CatalogServiceAsyncStub


@pytest.fixture
async def channel(database_url: str, tmp_path: Path) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a catalog served in-process on a free port, with its production wiring."""
    settings = load_server_settings(
        "catalog",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    service = await build(settings)
    async with (
        running(service, settings) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield channel


@pytest.fixture
def catalog(channel: grpc.aio.Channel) -> CatalogServiceAsyncStub:
    return catalog_service_pb2_grpc.CatalogServiceStub(channel)


def eur(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units, nanos=nanos)


async def create_tea_shop(stub: CatalogServiceAsyncStub) -> None:
    await stub.CreateCategory(
        pb.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Tea"), category_id="tea"
        )
    )
    for product_id, units in [("assam", 3), ("darjeeling", 7), ("earl-grey", 4)]:
        await stub.CreateProduct(
            pb.CreateProductRequest(
                product=catalog_pb2.Product(
                    display_name=product_id.title(), category="categories/tea", price=eur(units)
                ),
                product_id=product_id,
            )
        )


async def test_create_get_list_update_delete(
    catalog: CatalogServiceAsyncStub,
) -> None:
    await create_tea_shop(catalog)
    got = await catalog.GetProduct(pb.GetProductRequest(name="products/assam"))
    assert got.product.price == eur(3)
    assert got.product.category == "categories/tea"

    listed = await catalog.ListProducts(pb.ListProductsRequest(page_size=2))
    assert [p.name for p in listed.products] == ["products/assam", "products/darjeeling"]
    rest = await catalog.ListProducts(
        pb.ListProductsRequest(page_size=2, page_token=listed.next_page_token)
    )
    assert [p.name for p in rest.products] == ["products/earl-grey"]
    assert rest.next_page_token == ""

    updated = await catalog.UpdateProduct(
        pb.UpdateProductRequest(
            product=catalog_pb2.Product(
                name="products/assam", price=eur(3, 500_000_000), etag=got.product.etag
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["price"]),
        )
    )
    assert updated.product.price == eur(3, 500_000_000)
    assert updated.product.display_name == "Assam"
    assert updated.product.etag != got.product.etag

    await catalog.DeleteProduct(pb.DeleteProductRequest(name="products/assam"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.GetProduct(pb.GetProductRequest(name="products/assam"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(caught.value)
    assert (info.reason, info.domain) == ("PRODUCT_NOT_FOUND", "catalog.agora")
    assert info.metadata["product"] == "products/assam"


async def test_filters_by_category_and_price(
    catalog: CatalogServiceAsyncStub,
) -> None:
    await create_tea_shop(catalog)
    await catalog.CreateCategory(
        pb.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Coffee"), category_id="coffee"
        )
    )
    await catalog.CreateProduct(
        pb.CreateProductRequest(
            product=catalog_pb2.Product(
                display_name="Mocha", category="categories/coffee", price=eur(4)
            ),
            product_id="mocha",
        )
    )
    by_price = await catalog.ListProducts(
        pb.ListProductsRequest(min_price=eur(4), max_price=eur(7))
    )
    assert [p.name for p in by_price.products] == [
        "products/darjeeling",
        "products/earl-grey",
        "products/mocha",
    ]
    tea_by_price = await catalog.ListProducts(
        pb.ListProductsRequest(category="categories/tea", max_price=eur(4))
    )
    assert [p.name for p in tea_by_price.products] == ["products/assam", "products/earl-grey"]


async def test_bad_input_is_invalid_argument_with_field_violations_and_stores_nothing(
    catalog: CatalogServiceAsyncStub,
) -> None:
    await create_tea_shop(catalog)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.CreateProduct(
            pb.CreateProductRequest(
                product=catalog_pb2.Product(
                    category="categories/tea",
                    price=money_pb2.Money(currency_code="euro", units=-2),
                ),
                product_id="bad-tea",
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == [
        "product.display_name",
        "product.price.currency_code",
        "product.price",
    ]
    listed = await catalog.ListProducts(pb.ListProductsRequest())
    assert "products/bad-tea" not in [p.name for p in listed.products]


async def test_each_failure_has_its_code_and_reason(
    catalog: CatalogServiceAsyncStub,
) -> None:
    await create_tea_shop(catalog)
    tea = catalog_pb2.Product(display_name="Assam", category="categories/tea", price=eur(1))
    cases: list[tuple[Awaitable[object], grpc.StatusCode, str]] = [
        (
            catalog.CreateProduct(pb.CreateProductRequest(product=tea, product_id="assam")),
            grpc.StatusCode.ALREADY_EXISTS,
            "PRODUCT_ALREADY_EXISTS",
        ),
        (
            catalog.CreateProduct(
                pb.CreateProductRequest(
                    product=catalog_pb2.Product(
                        display_name="Beans", category="categories/coffee", price=eur(1)
                    )
                )
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "CATEGORY_NOT_FOUND",
        ),
        (
            catalog.GetCategory(pb.GetCategoryRequest(name="categories/coffee")),
            grpc.StatusCode.NOT_FOUND,
            "CATEGORY_NOT_FOUND",
        ),
        (
            catalog.UpdateProduct(
                pb.UpdateProductRequest(
                    product=catalog_pb2.Product(
                        name="products/assam", display_name="X", etag="stale"
                    )
                )
            ),
            grpc.StatusCode.ABORTED,
            "ETAG_MISMATCH",
        ),
        (
            catalog.ListProducts(pb.ListProductsRequest(page_token="not-a-token")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
        ),
        (
            # The contract's rule (`page_size` >= 0) rejects it before the service runs.
            catalog.ListProducts(pb.ListProductsRequest(page_size=-1)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        (
            catalog.BatchGetProducts(
                pb.BatchGetProductsRequest(names=["products/assam", "products/nope"])
            ),
            grpc.StatusCode.NOT_FOUND,
            "PRODUCT_NOT_FOUND",
        ),
    ]
    for call, code, reason in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert (caught.value.code(), error_info(caught.value).reason) == (code, reason)


async def test_a_repeated_create_with_one_request_id_creates_one_product(
    catalog: CatalogServiceAsyncStub,
) -> None:
    await create_tea_shop(catalog)
    request = pb.CreateProductRequest(
        product=catalog_pb2.Product(display_name="Sencha", category="categories/tea", price=eur(6)),
        request_id=str(uuid.uuid4()),
    )
    first, *repeats = await asyncio.gather(*(catalog.CreateProduct(request) for _ in range(3)))
    assert all(r.product.name == first.product.name for r in repeats)
    listed = await catalog.ListProducts(pb.ListProductsRequest())
    assert [p.display_name for p in listed.products].count("Sencha") == 1

    reused = pb.CreateProductRequest()
    reused.CopyFrom(request)
    reused.product.display_name = "Gyokuro"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.CreateProduct(reused)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "REQUEST_ID_REUSED"


async def test_a_malformed_body_is_invalid_argument_not_unknown(
    channel: grpc.aio.Channel,
) -> None:
    raw = channel.unary_unary(
        "/agora.catalog.v1.CatalogService/GetProduct",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\xff\xff\xff\xff")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "MALFORMED_REQUEST"
