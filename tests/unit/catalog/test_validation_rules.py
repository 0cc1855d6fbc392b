"""The catalog contract's ``buf.validate`` rules state what the catalog itself enforces.

The runtime rejects a request that breaks a rule before the servicer runs, so a rule
stricter than the service's own checks would refuse requests the catalog documents as
valid. Each bad request below breaks a rule of the contract; the service's own
conversion must reject it too, naming the same fields (or, for a missing message, a
field inside it).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from google.type import money_pb2

from agora.catalog.v1 import catalog_pb2
from agora.catalog.v1 import catalog_service_pb2 as pb
from catalog.entrypoints import convert
from runtime import paging, validation
from runtime.errors import InvalidArgument

LONG = "x" * 201
TOO_LONG_REQUEST_ID = "r" * 65
EUR = money_pb2.Money(currency_code="EUR", units=3)
TEA = catalog_pb2.Product(display_name="Assam", category="categories/tea", price=EUR)

#: What the service runs on each request type before any use case.
SERVICE_CHECKS: dict[type[Message], Callable[[Message], object]] = {
    pb.CreateCategoryRequest: convert.create_category_command,  # type: ignore[dict-item]
    pb.GetCategoryRequest: lambda r: convert.parse_category_name(r.name),  # type: ignore[attr-defined]
    pb.ListCategoriesRequest: lambda r: paging.page_size(r.page_size),  # type: ignore[attr-defined]
    pb.CreateProductRequest: convert.create_product_command,  # type: ignore[dict-item]
    pb.GetProductRequest: lambda r: convert.parse_product_name(r.name),  # type: ignore[attr-defined]
    pb.BatchGetProductsRequest: convert.batch_get_ids,  # type: ignore[dict-item]
    pb.ListProductsRequest: convert.product_query,  # type: ignore[dict-item]
    pb.UpdateProductRequest: convert.update_product_command,  # type: ignore[dict-item]
    pb.DeleteProductRequest: convert.delete_product_command,  # type: ignore[dict-item]
}


def product(**fields: object) -> catalog_pb2.Product:
    tea = catalog_pb2.Product()
    tea.CopyFrom(TEA)
    for name, value in fields.items():
        setattr(tea, name, value)
    return tea


BAD_REQUESTS: list[tuple[str, Message, list[str]]] = [
    ("category missing", pb.CreateCategoryRequest(), ["category"]),
    (
        "category display name empty",
        pb.CreateCategoryRequest(category=catalog_pb2.Category()),
        ["category.display_name"],
    ),
    (
        "category display name blank",
        pb.CreateCategoryRequest(category=catalog_pb2.Category(display_name=" \t ")),
        ["category.display_name"],
    ),
    (
        "category display name too long",
        pb.CreateCategoryRequest(category=catalog_pb2.Category(display_name=LONG)),
        ["category.display_name"],
    ),
    (
        "category id malformed, request id too long",
        pb.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Tea"),
            category_id="Green Tea",
            request_id=TOO_LONG_REQUEST_ID,
        ),
        ["category_id", "request_id"],
    ),
    ("category name missing", pb.GetCategoryRequest(), ["name"]),
    ("category name of a product", pb.GetCategoryRequest(name="products/tea"), ["name"]),
    ("negative category page size", pb.ListCategoriesRequest(page_size=-1), ["page_size"]),
    ("product missing", pb.CreateProductRequest(), ["product"]),
    (
        "product fields malformed",
        pb.CreateProductRequest(
            product=product(display_name=" ", description=LONG * 50, category="tea"),
            product_id="-tea",
            request_id=TOO_LONG_REQUEST_ID,
        ),
        [
            "product.display_name",
            "product.description",
            "product.category",
            "product_id",
            "request_id",
        ],
    ),
    (
        "product display name too long",
        pb.CreateProductRequest(product=product(display_name=LONG)),
        ["product.display_name"],
    ),
    ("product name missing", pb.GetProductRequest(), ["name"]),
    ("product id too long", pb.GetProductRequest(name="products/" + "t" * 64), ["name"]),
    ("no names", pb.BatchGetProductsRequest(), ["names"]),
    (
        "too many names",
        pb.BatchGetProductsRequest(names=[f"products/p{i}" for i in range(101)]),
        ["names"],
    ),
    (
        "one bad name of three",
        pb.BatchGetProductsRequest(names=["products/a", "categories/b", "products/c"]),
        ["names[1]"],
    ),
    # The service checks these two one after the other, so each gets a request of its own.
    ("negative product page size", pb.ListProductsRequest(page_size=-5), ["page_size"]),
    ("products of a malformed category", pb.ListProductsRequest(category="tea"), ["category"]),
    ("update without a product", pb.UpdateProductRequest(), ["product"]),
    (
        "update of a malformed category",
        pb.UpdateProductRequest(
            product=catalog_pb2.Product(name="products/tea", category="tea"),
            update_mask=field_mask_pb2.FieldMask(paths=["category"]),
            request_id=TOO_LONG_REQUEST_ID,
        ),
        ["product.category", "request_id"],
    ),
    ("delete without a name", pb.DeleteProductRequest(), ["name"]),
    (
        "delete of a malformed name",
        pb.DeleteProductRequest(name="products/Tea", request_id=TOO_LONG_REQUEST_ID),
        ["name", "request_id"],
    ),
]


@pytest.mark.parametrize(
    ("request_message", "fields"),
    [pytest.param(request, fields, id=case) for case, request, fields in BAD_REQUESTS],
)
def test_the_service_rejects_what_the_contract_rejects_naming_the_same_fields(
    request_message: Message, fields: list[str]
) -> None:
    assert [v.field for v in validation.violations(request_message)] == fields
    with pytest.raises(InvalidArgument) as rejected:
        SERVICE_CHECKS[type(request_message)](request_message)
    named = [v.field for v in rejected.value.violations]
    for field in fields:
        assert any(n == field or n.startswith((f"{field}.", f"{field}[")) for n in named), (
            f"the contract names {field!r}; the service names {named}"
        )


GOOD_REQUESTS: list[Message] = [
    pb.CreateCategoryRequest(category=catalog_pb2.Category(display_name="Tea")),
    pb.CreateCategoryRequest(
        category=catalog_pb2.Category(display_name="x" * 200),
        category_id="t" + "-" * 62,
        request_id="r" * 64,
    ),
    pb.GetCategoryRequest(name="categories/tea"),
    pb.ListCategoriesRequest(page_size=5000),
    pb.CreateProductRequest(product=TEA, product_id="assam-2", request_id="r-1"),
    pb.CreateProductRequest(product=product(description="y" * 10_000)),
    pb.GetProductRequest(name="products/assam"),
    pb.BatchGetProductsRequest(names=["products/assam"] * 100),
    pb.ListProductsRequest(category="categories/tea", min_price=EUR),
    pb.ListProductsRequest(),
    # An update names only what changes: the rest of the product may be empty.
    pb.UpdateProductRequest(
        product=catalog_pb2.Product(name="products/assam", price=EUR),
        update_mask=field_mask_pb2.FieldMask(paths=["price"]),
    ),
    pb.DeleteProductRequest(name="products/assam", etag="abc"),
]


@pytest.mark.parametrize("request_message", GOOD_REQUESTS, ids=lambda r: type(r).__name__)
def test_requests_the_service_accepts_break_no_rule(request_message: Message) -> None:
    SERVICE_CHECKS[type(request_message)](request_message)
    assert validation.violations(request_message) == []


def test_every_catalog_request_carries_rules() -> None:
    service = pb.DESCRIPTOR.services_by_name["CatalogService"]
    assert {m.input_type.full_name for m in service.methods} == {
        t.DESCRIPTOR.full_name for t in SERVICE_CHECKS
    }
    assert all(validation.has_rules(m.input_type) for m in service.methods)
