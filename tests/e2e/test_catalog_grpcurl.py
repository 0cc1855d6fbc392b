"""The catalog as a user meets it: a real process, driven only by grpcurl through reflection.

No .proto file and no generated code is used here: grpcurl discovers the API from the
server, sends JSON and prints JSON, which the tests parse. One catalog process serves
the whole module; every test works in its own category so tests stay independent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import Grpcurl, ServiceProcess, running_service

CATALOG = "agora.catalog.v1.CatalogService"
CREATE_CATEGORY = f"{CATALOG}/CreateCategory"
CREATE_PRODUCT = f"{CATALOG}/CreateProduct"
GET_PRODUCT = f"{CATALOG}/GetProduct"
LIST_PRODUCTS = f"{CATALOG}/ListProducts"
UPDATE_PRODUCT = f"{CATALOG}/UpdateProduct"
DELETE_PRODUCT = f"{CATALOG}/DeleteProduct"
HEALTH_CHECK = "grpc.health.v1.Health/Check"
# grpcurl 1.9 rejects a FieldMask's JSON string form ("price") in requests it builds from
# reflected descriptors, so the masks are written in their object form.
PRICE_ONLY = {"paths": ["price"]}

# google.rpc.Code values, as grpcurl's -format-error prints them.
INVALID_ARGUMENT = 3
NOT_FOUND = 5
ALREADY_EXISTS = 6
FAILED_PRECONDITION = 9
ABORTED = 10


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with running_service("catalog", tmp_path_factory.mktemp("catalog")) as service:
        yield service


@pytest.fixture
def grpcurl(grpcurl_binary: Path, catalog: ServiceProcess) -> Grpcurl:
    return Grpcurl(grpcurl_binary, catalog.address)


def unique_id(prefix: str) -> str:
    """An id that is valid in a resource name and unique across the module's tests."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def euros(units: int, nanos: int = 0, currency: str = "EUR") -> dict[str, Any]:
    return {"currency_code": currency, "units": units, "nanos": nanos}


def price_of(product: dict[str, Any]) -> tuple[str, int, int]:
    """(currency, units, nanos) of a product as grpcurl prints it (int64 units are strings).

    Every field, google.type.Money's included, comes back under its JSON (camelCase) name:
    reflection fills in the JSON names the bundled Money descriptor lacks.
    """
    price = product["price"]
    return str(price["currencyCode"]), int(price.get("units", 0)), int(price.get("nanos", 0))


def new_category(grpcurl: Grpcurl, display_name: str = "Paperbacks") -> str:
    category_id = unique_id("shelf")
    created = grpcurl.call(
        CREATE_CATEGORY, {"category_id": category_id, "category": {"display_name": display_name}}
    )
    assert created["category"]["name"] == f"categories/{category_id}"
    return str(created["category"]["name"])


def new_product(
    grpcurl: Grpcurl,
    category: str,
    display_name: str = "Dune",
    price: dict[str, Any] | None = None,
    product_id: str | None = None,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "product_id": product_id or unique_id("book"),
        "product": {
            "display_name": display_name,
            "description": "A desert planet, a spice, a prophecy.",
            "category": category,
            "price": price or euros(12, 500_000_000),
        },
    }
    product: dict[str, Any] = grpcurl.call(CREATE_PRODUCT, request)["product"]
    return product


def list_all(grpcurl: Grpcurl, page_size: int, **filters: Any) -> list[list[dict[str, Any]]]:
    """Every page of ListProducts with ``filters``, following ``next_page_token`` to the end."""
    pages: list[list[dict[str, Any]]] = []
    token = ""
    while True:
        response = grpcurl.call(
            LIST_PRODUCTS, {"page_size": page_size, "page_token": token, **filters}
        )
        pages.append(response.get("products", []))
        token = response.get("nextPageToken", "")
        if not token:
            return pages
        assert len(pages) < 100, "the pages never end"


def names(products: list[dict[str, Any]]) -> list[str]:
    return [str(p["name"]) for p in products]


def test_list_shows_the_catalog_health_and_both_reflection_services(grpcurl: Grpcurl) -> None:
    result = grpcurl.run("list")

    assert result.returncode == 0, result.describe()
    assert set(result.stdout.split()) >= {
        CATALOG,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }


def test_describe_shows_every_method_of_the_catalog_service(grpcurl: Grpcurl) -> None:
    result = grpcurl.run("describe", CATALOG)

    assert result.returncode == 0, result.describe()
    assert f"{CATALOG} is a service" in result.stdout
    for method in (
        "CreateCategory",
        "GetCategory",
        "ListCategories",
        "CreateProduct",
        "GetProduct",
        "BatchGetProducts",
        "ListProducts",
        "UpdateProduct",
        "DeleteProduct",
    ):
        assert f"rpc {method} ( .agora.catalog.v1.{method}Request )" in result.stdout, method


def test_describe_shows_every_field_of_a_product(grpcurl: Grpcurl) -> None:
    result = grpcurl.run("describe", "agora.catalog.v1.Product")

    assert result.returncode == 0, result.describe()
    assert "agora.catalog.v1.Product is a message" in result.stdout
    for declaration in (
        "string name = 1",
        "string display_name = 2",
        "string description = 3",
        "string category = 4",
        ".google.type.Money price = 5",
        ".google.protobuf.Timestamp create_time = 6",
        ".google.protobuf.Timestamp update_time = 7",
        "string etag = 8",
    ):
        assert declaration in result.stdout, declaration


def test_a_created_product_reads_back_as_created(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    product_id = unique_id("dune")

    created = new_product(grpcurl, category, "Dune", euros(12, 500_000_000), product_id)
    fetched = grpcurl.call(GET_PRODUCT, {"name": f"products/{product_id}"})["product"]

    assert created["name"] == f"products/{product_id}"
    assert created["displayName"] == "Dune"
    assert created["category"] == category
    assert price_of(created) == ("EUR", 12, 500_000_000)
    assert created["etag"]
    assert created["createTime"]
    assert fetched == created


def test_list_pages_through_a_category_with_page_size_and_tokens(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    created = [new_product(grpcurl, category, f"Volume {i}") for i in range(5)]

    pages = list_all(grpcurl, page_size=2, category=category)

    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [name for page in pages for name in names(page)]
    assert listed == sorted(names(created))


def test_list_without_a_filter_pages_through_every_product_once(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    created = [new_product(grpcurl, category, f"Atlas {i}") for i in range(3)]

    pages = list_all(grpcurl, page_size=1)

    listed = [name for page in pages for name in names(page)]
    assert all(len(page) == 1 for page in pages)
    assert len(listed) == len(set(listed)), "a product appeared on two pages"
    assert listed == sorted(listed)
    assert set(names(created)) <= set(listed)


def test_list_filters_by_category(grpcurl: Grpcurl) -> None:
    poetry, cooking = new_category(grpcurl, "Poetry"), new_category(grpcurl, "Cooking")
    odes = new_product(grpcurl, poetry, "Odes")
    soups = new_product(grpcurl, cooking, "Soups")
    stews = new_product(grpcurl, cooking, "Stews")

    (poetry_page,) = list_all(grpcurl, page_size=50, category=poetry)
    (cooking_page,) = list_all(grpcurl, page_size=50, category=cooking)

    assert names(poetry_page) == [odes["name"]]
    assert names(cooking_page) == sorted([soups["name"], stews["name"]])


def test_list_filters_by_an_inclusive_price_range_in_one_currency(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    cheap = new_product(grpcurl, category, "Cheap", euros(5))
    middle = new_product(grpcurl, category, "Middle", euros(10))
    dear = new_product(grpcurl, category, "Dear", euros(20))
    dollars = new_product(grpcurl, category, "Dollars", euros(10, currency="USD"))

    def listed(**bounds: Any) -> list[str]:
        return [
            name
            for page in list_all(grpcurl, 50, category=category, **bounds)
            for name in names(page)
        ]

    assert listed(min_price=euros(10), max_price=euros(20)) == sorted(
        [middle["name"], dear["name"]]
    )
    assert listed(min_price=euros(10, 1)) == [dear["name"]]
    assert listed(max_price=euros(9, 999_999_999)) == [cheap["name"]]
    assert listed(max_price=euros(100, currency="USD")) == [dollars["name"]]


def test_update_with_a_price_mask_changes_only_the_price_and_the_etag(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    product = new_product(grpcurl, category, "Dune", euros(12))

    updated = grpcurl.call(
        UPDATE_PRODUCT,
        {
            "product": {
                "name": product["name"],
                "display_name": "Not in the mask, so ignored",
                "price": euros(15, 990_000_000),
            },
            "update_mask": PRICE_ONLY,
        },
    )["product"]
    fetched = grpcurl.call(GET_PRODUCT, {"name": product["name"]})["product"]

    assert price_of(updated) == ("EUR", 15, 990_000_000)
    assert updated["displayName"] == "Dune"
    assert updated["etag"] != product["etag"]
    assert fetched == updated


def test_update_with_a_stale_etag_is_aborted_with_etag_mismatch(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    product = new_product(grpcurl, category, "Dune", euros(12))
    stale_etag = product["etag"]
    current = grpcurl.call(
        UPDATE_PRODUCT,
        {
            "product": {"name": product["name"], "price": euros(13), "etag": stale_etag},
            "update_mask": PRICE_ONLY,
        },
    )["product"]

    status = grpcurl.call_error(
        UPDATE_PRODUCT,
        {
            "product": {"name": product["name"], "price": euros(1), "etag": stale_etag},
            "update_mask": PRICE_ONLY,
        },
    )

    assert status.code == ABORTED
    assert status.reason == "ETAG_MISMATCH"
    assert grpcurl.call(GET_PRODUCT, {"name": product["name"]})["product"] == current


def test_a_deleted_product_is_not_found(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    product = new_product(grpcurl, category)

    assert grpcurl.call(DELETE_PRODUCT, {"name": product["name"]}) == {}
    status = grpcurl.call_error(GET_PRODUCT, {"name": product["name"]})

    assert status.code == NOT_FOUND
    assert status.reason == "PRODUCT_NOT_FOUND"
    assert product["name"] in status.message
    (page,) = list_all(grpcurl, page_size=50, category=category)
    assert page == []


def test_creating_a_taken_product_id_already_exists(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    product_id = unique_id("dune")
    first = new_product(grpcurl, category, "Dune", product_id=product_id)

    status = grpcurl.call_error(
        CREATE_PRODUCT,
        {
            "product_id": product_id,
            "product": {"display_name": "Other", "category": category, "price": euros(1)},
        },
    )

    assert status.code == ALREADY_EXISTS
    assert status.reason == "PRODUCT_ALREADY_EXISTS"
    assert grpcurl.call(GET_PRODUCT, {"name": first["name"]})["product"] == first


def test_an_invalid_create_names_every_bad_field(grpcurl: Grpcurl) -> None:
    request = {"product": {"price": euros(3, currency="euro")}}

    status = grpcurl.call_error(CREATE_PRODUCT, request)

    assert status.code == INVALID_ARGUMENT
    assert set(status.violated_fields) == {
        "product.display_name",
        "product.category",
        "product.price.currency_code",
    }


def test_an_invalid_create_shows_its_field_violations_in_grpcurls_error_output(
    grpcurl: Grpcurl,
) -> None:
    result = grpcurl.run(CREATE_PRODUCT, data={"product": {"display_name": "No price"}})

    assert result.returncode == 64 + INVALID_ARGUMENT, result.describe()
    assert "Code: InvalidArgument" in result.stderr
    assert "google.rpc.BadRequest" in result.stderr
    for field in ('"product.category"', '"product.price"'):
        assert field in result.stderr, field


def test_a_repeated_create_with_the_same_request_id_creates_one_product(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    # No product_id: the server picks a random one, so only the request_id can dedupe.
    request = {
        "request_id": str(uuid.uuid4()),
        "product": {"display_name": "Once", "category": category, "price": euros(7)},
    }

    first = grpcurl.call(CREATE_PRODUCT, request)["product"]
    second = grpcurl.call(CREATE_PRODUCT, request)["product"]

    assert second == first
    (page,) = list_all(grpcurl, page_size=50, category=category)
    assert names(page) == [first["name"]]


def test_the_same_create_without_a_request_id_creates_two_products(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    request = {"product": {"display_name": "Twice", "category": category, "price": euros(7)}}

    first = grpcurl.call(CREATE_PRODUCT, request)["product"]
    second = grpcurl.call(CREATE_PRODUCT, request)["product"]

    assert first["name"] != second["name"]
    (page,) = list_all(grpcurl, page_size=50, category=category)
    assert sorted(names(page)) == sorted([first["name"], second["name"]])


@pytest.mark.parametrize("service", ["", CATALOG])
def test_health_check_says_serving(grpcurl: Grpcurl, service: str) -> None:
    assert grpcurl.call(HEALTH_CHECK, {"service": service}) == {"status": "SERVING"}


def test_a_page_token_from_another_filter_is_an_invalid_page_token(grpcurl: Grpcurl) -> None:
    category = new_category(grpcurl)
    for title in ("First", "Second"):
        new_product(grpcurl, category, title)
    first_page = grpcurl.call(LIST_PRODUCTS, {"page_size": 1, "category": category})
    token = first_page["nextPageToken"]

    status = grpcurl.call_error(
        LIST_PRODUCTS, {"page_size": 1, "page_token": token, "min_price": euros(1)}
    )

    assert status.code == INVALID_ARGUMENT
    assert status.reason == "INVALID_PAGE_TOKEN"


def test_a_negative_page_size_is_invalid(grpcurl: Grpcurl) -> None:
    status = grpcurl.call_error(LIST_PRODUCTS, {"page_size": -1})

    assert status.code == INVALID_ARGUMENT
    assert status.violated_fields == ["page_size"]


def test_a_product_in_a_missing_category_fails_its_precondition(grpcurl: Grpcurl) -> None:
    missing = f"categories/{unique_id('nowhere')}"

    status = grpcurl.call_error(
        CREATE_PRODUCT,
        {"product": {"display_name": "Orphan", "category": missing, "price": euros(1)}},
    )

    assert status.code == FAILED_PRECONDITION
    assert status.reason == "CATEGORY_NOT_FOUND"


def test_a_repeated_delete_with_the_same_request_id_succeeds_again(grpcurl: Grpcurl) -> None:
    product = new_product(grpcurl, new_category(grpcurl))
    request = {"name": product["name"], "request_id": str(uuid.uuid4())}

    assert grpcurl.call(DELETE_PRODUCT, request) == {}
    assert grpcurl.call(DELETE_PRODUCT, request) == {}
    status = grpcurl.call_error(DELETE_PRODUCT, {"name": product["name"]})

    assert status.code == NOT_FOUND
    assert status.reason == "PRODUCT_NOT_FOUND"


def test_a_delete_with_a_stale_etag_is_aborted_and_keeps_the_product(grpcurl: Grpcurl) -> None:
    product = new_product(grpcurl, new_category(grpcurl), price=euros(12))
    current = grpcurl.call(
        UPDATE_PRODUCT,
        {"product": {"name": product["name"], "price": euros(13)}, "update_mask": PRICE_ONLY},
    )["product"]

    status = grpcurl.call_error(DELETE_PRODUCT, {"name": product["name"], "etag": product["etag"]})

    assert status.code == ABORTED
    assert status.reason == "ETAG_MISMATCH"
    assert grpcurl.call(GET_PRODUCT, {"name": product["name"]})["product"] == current
