"""Request checks and proto <-> domain conversion of the catalog entrypoint."""

from __future__ import annotations

import pytest
from google.protobuf import field_mask_pb2
from google.type import money_pb2

from agora.catalog.v1 import catalog_pb2
from agora.catalog.v1 import catalog_service_pb2 as pb
from catalog.entrypoints import convert
from runtime import requests
from runtime.errors import InvalidArgument

TEA = catalog_pb2.Product(
    display_name="Green tea",
    category="categories/tea",
    price=money_pb2.Money(currency_code="EUR", units=4, nanos=500_000_000),
)


def violated_fields(error: InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


def test_a_create_reports_every_bad_field_at_once() -> None:
    request = pb.CreateProductRequest(
        product=catalog_pb2.Product(
            category="tea", price=money_pb2.Money(currency_code="eu", units=-1)
        ),
        product_id="Bad Id",
        request_id="x" * 65,
    )
    with pytest.raises(InvalidArgument) as caught:
        convert.create_product_command(request)
    assert violated_fields(caught.value) == [
        "product.display_name",
        "product.category",
        "product.price.currency_code",
        "product.price",
        "product_id",
        "request_id",
    ]


def test_a_good_create_becomes_a_command_with_a_fingerprint() -> None:
    command = convert.create_product_command(
        pb.CreateProductRequest(product=TEA, product_id="green-tea", request_id="r-1")
    )
    assert command.category_id == "tea"
    assert command.price.units == 4
    assert command.idempotency is not None
    assert command.idempotency.request_id == "r-1"


def test_the_fingerprint_ignores_the_request_id_but_not_the_content() -> None:
    a = pb.CreateProductRequest(product=TEA, request_id="r-1")
    b = pb.CreateProductRequest(product=TEA, request_id="r-2")
    c = pb.CreateProductRequest(product=TEA, product_id="other", request_id="r-1")
    assert requests.fingerprint(a) == requests.fingerprint(b)
    assert requests.fingerprint(a) != requests.fingerprint(c)


def test_update_without_a_mask_changes_the_fields_that_are_set() -> None:
    request = pb.UpdateProductRequest(
        product=catalog_pb2.Product(name="products/green-tea", display_name="Sencha")
    )
    command = convert.update_product_command(request)
    assert command.changes.changed_fields() == ["display_name"]


def test_update_with_star_replaces_every_mutable_field() -> None:
    product = catalog_pb2.Product()
    product.CopyFrom(TEA)
    product.name = "products/green-tea"
    request = pb.UpdateProductRequest(
        product=product, update_mask=field_mask_pb2.FieldMask(paths=["*"])
    )
    command = convert.update_product_command(request)
    assert command.changes.changed_fields() == [
        "display_name",
        "description",
        "category_id",
        "price",
    ]
    assert command.changes.description == ""


def test_update_ignores_output_only_paths_and_refuses_unknown_ones() -> None:
    ok = pb.UpdateProductRequest(
        product=catalog_pb2.Product(name="products/green-tea", display_name="Sencha"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name", "create_time", "etag"]),
    )
    assert convert.update_product_command(ok).changes.changed_fields() == ["display_name"]
    bad = pb.UpdateProductRequest(
        product=catalog_pb2.Product(name="products/green-tea"),
        update_mask=field_mask_pb2.FieldMask(paths=["colour"]),
    )
    with pytest.raises(InvalidArgument) as caught:
        convert.update_product_command(bad)
    assert violated_fields(caught.value) == ["update_mask.paths[0]"]


def test_update_of_price_in_the_mask_requires_a_price() -> None:
    request = pb.UpdateProductRequest(
        product=catalog_pb2.Product(name="products/green-tea"),
        update_mask=field_mask_pb2.FieldMask(paths=["price"]),
    )
    with pytest.raises(InvalidArgument) as caught:
        convert.update_product_command(request)
    assert violated_fields(caught.value) == ["product.price"]


def test_an_update_that_changes_nothing_is_refused() -> None:
    request = pb.UpdateProductRequest(product=catalog_pb2.Product(name="products/green-tea"))
    with pytest.raises(InvalidArgument) as caught:
        convert.update_product_command(request)
    assert violated_fields(caught.value) == ["update_mask"]


@pytest.mark.parametrize("name", ["", "green-tea", "products/", "products/Green", "categories/tea"])
def test_malformed_product_names_are_invalid(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.parse_product_name(name)
    assert violated_fields(caught.value) == ["name"]


def test_price_bounds_must_share_a_currency_and_be_ordered() -> None:
    mixed = pb.ListProductsRequest(
        min_price=money_pb2.Money(currency_code="EUR", units=1),
        max_price=money_pb2.Money(currency_code="USD", units=2),
    )
    with pytest.raises(InvalidArgument) as caught:
        convert.product_query(mixed)
    assert violated_fields(caught.value) == ["max_price.currency_code"]
    inverted = pb.ListProductsRequest(
        min_price=money_pb2.Money(currency_code="EUR", units=5),
        max_price=money_pb2.Money(currency_code="EUR", units=2),
    )
    with pytest.raises(InvalidArgument) as caught:
        convert.product_query(inverted)
    assert violated_fields(caught.value) == ["max_price"]


def test_a_page_token_only_works_with_its_own_filter() -> None:
    token = convert.next_page_token(
        "tea-3",
        convert.product_query(pb.ListProductsRequest(category="categories/tea")).fingerprint(),
    )
    same = convert.product_query(
        pb.ListProductsRequest(category="categories/tea", page_token=token)
    )
    assert same.after_id == "tea-3"
    with pytest.raises(InvalidArgument) as caught:
        convert.product_query(
            pb.ListProductsRequest(category="categories/coffee", page_token=token)
        )
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_batch_get_limits_and_checks_every_name() -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.batch_get_ids(pb.BatchGetProductsRequest(names=["products/a", "bad"]))
    assert violated_fields(caught.value) == ["names[1]"]
    with pytest.raises(InvalidArgument):
        convert.batch_get_ids(pb.BatchGetProductsRequest(names=[]))
    with pytest.raises(InvalidArgument):
        convert.batch_get_ids(pb.BatchGetProductsRequest(names=["products/a"] * 101))
