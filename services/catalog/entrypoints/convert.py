"""Protobuf <-> domain conversion for the catalog, including every check of request shape.

``field_behavior`` annotations document intent but enforce nothing, so required fields,
name formats and ranges are checked here; every problem in a request is reported at
once as a ``BadRequest`` field violation.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2
from catalog.domain import model
from catalog.domain.commands import (
    CreateCategory,
    CreateProduct,
    DeleteProduct,
    UpdateProduct,
)
from catalog.domain.model import Money, ProductChanges, ProductQuery
from runtime import paging
from runtime.names import validate_id
from runtime.requests import Violations, parse_name, read_idempotency, require_name

#: Paths of ``Product`` that UpdateProduct may change, and how they map onto the domain.
MUTABLE_PRODUCT_FIELDS = ("display_name", "description", "category", "price")
#: Output-only or identifying paths: accepted in a mask and ignored, as AIP-134 asks.
IGNORED_PRODUCT_FIELDS = frozenset({"name", "create_time", "update_time", "etag"})
#: Fields of the domain's product whose path in ``Product`` has another name.
_PRODUCT_PATHS = {"category_id": "category"}
MAX_BATCH = 100


def parse_product_name(name: str, field_path: str = "name") -> str:
    return require_name(name, "products", field_path)


def parse_category_name(name: str, field_path: str = "name") -> str:
    return require_name(name, "categories", field_path)


def money_from_proto(money: money_pb2.Money) -> Money:
    return Money(money.currency_code, money.units, money.nanos)


def money_to_proto(money: Money) -> money_pb2.Money:
    return money_pb2.Money(currency_code=money.currency_code, units=money.units, nanos=money.nanos)


def category_to_proto(category: model.Category) -> catalog_pb2.Category:
    return catalog_pb2.Category(
        name=category.name,
        display_name=category.display_name,
        create_time=_timestamp(category.create_time),
    )


def product_to_proto(product: model.Product) -> catalog_pb2.Product:
    return catalog_pb2.Product(
        name=product.name,
        display_name=product.display_name,
        description=product.description,
        category=f"categories/{product.category_id}",
        price=money_to_proto(product.price),
        create_time=_timestamp(product.create_time),
        update_time=_timestamp(product.update_time),
        etag=product.etag,
    )


def product_paths(field_names: Sequence[str]) -> list[str]:
    """Fields of the domain's product as paths relative to ``Product`` (``category_id`` is
    ``category``), in the same order."""
    return [_PRODUCT_PATHS.get(name, name) for name in field_names]


def create_category_command(request: catalog_service_pb2.CreateCategoryRequest) -> CreateCategory:
    violations = Violations()
    if not request.HasField("category"):
        violations.add("category", "is required")
    violations.extend(
        model.validate_display_name(request.category.display_name, "category.display_name")
    )
    if request.category_id:
        violations.extend(validate_id(request.category_id, "category_id"))
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    return CreateCategory(request.category_id, request.category.display_name, idempotency)


def create_product_command(request: catalog_service_pb2.CreateProductRequest) -> CreateProduct:
    violations = Violations()
    product = request.product
    if not request.HasField("product"):
        violations.add("product", "is required")
    violations.extend(model.validate_display_name(product.display_name, "product.display_name"))
    violations.extend(model.validate_description(product.description, "product.description"))
    category_id = parse_name(product.category, "categories", "product.category", violations)
    price = _required_price(product, "product.price", violations)
    if request.product_id:
        violations.extend(validate_id(request.product_id, "product_id"))
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    assert price is not None
    return CreateProduct(
        product_id=request.product_id,
        display_name=product.display_name,
        category_id=category_id,
        price=price,
        description=product.description,
        idempotency=idempotency,
    )


def update_product_command(request: catalog_service_pb2.UpdateProductRequest) -> UpdateProduct:
    violations = Violations()
    product = request.product
    product_id = parse_name(product.name, "products", "product.name", violations)
    paths = _update_paths(request, violations)
    changes: dict[str, object] = {}
    for path in paths:
        if path == "display_name":
            violations.extend(
                model.validate_display_name(product.display_name, "product.display_name")
            )
            changes["display_name"] = product.display_name
        elif path == "description":
            violations.extend(
                model.validate_description(product.description, "product.description")
            )
            changes["description"] = product.description
        elif path == "category":
            changes["category_id"] = parse_name(
                product.category, "categories", "product.category", violations
            )
        elif path == "price":
            changes["price"] = _required_price(product, "product.price", violations)
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    return UpdateProduct(
        product_id=product_id,
        changes=ProductChanges(**changes),  # type: ignore[arg-type]
        etag=product.etag,
        idempotency=idempotency,
    )


def delete_product_command(request: catalog_service_pb2.DeleteProductRequest) -> DeleteProduct:
    violations = Violations()
    product_id = parse_name(request.name, "products", "name", violations)
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    return DeleteProduct(product_id, request.etag, idempotency)


def batch_get_ids(request: catalog_service_pb2.BatchGetProductsRequest) -> list[str]:
    violations = Violations()
    if not request.names:
        violations.add("names", "is required: name at least one product")
    elif len(request.names) > MAX_BATCH:
        violations.add("names", f"must name at most {MAX_BATCH} products")
    ids = [
        parse_name(n, "products", f"names[{i}]", violations) for i, n in enumerate(request.names)
    ]
    violations.raise_if_any()
    return ids


def product_query(request: catalog_service_pb2.ListProductsRequest) -> ProductQuery:
    violations = Violations()
    category_id = None
    if request.category:
        category_id = parse_name(request.category, "categories", "category", violations)
    bounds: dict[str, Money | None] = {}
    for field_name in ("min_price", "max_price"):
        bound = None
        if request.HasField(field_name):
            bound = money_from_proto(getattr(request, field_name))
            violations.extend(bound.violations(field_name))
        bounds[field_name] = bound
    low, high = bounds["min_price"], bounds["max_price"]
    if low is not None and high is not None:
        if low.currency_code != high.currency_code:
            violations.add("max_price.currency_code", "must be the currency of min_price")
        elif high.total_nanos < low.total_nanos:
            violations.add("max_price", "must not be below min_price")
    violations.raise_if_any()
    size = paging.page_size(request.page_size)
    query = ProductQuery(page_size=size, category_id=category_id, min_price=low, max_price=high)
    after = paging.decode_page_token(request.page_token, query.fingerprint())
    return ProductQuery(size, category_id, low, high, after)


def next_page_token(after: str | None, query: str) -> str:
    return "" if after is None else paging.encode_page_token(after, query)


def _update_paths(
    request: catalog_service_pb2.UpdateProductRequest, violations: Violations
) -> list[str]:
    if not request.HasField("update_mask"):
        # No mask: every mutable field the caller set to a non-default value.
        set_fields = {descriptor.name for descriptor, _ in request.product.ListFields()}
        paths = [name for name in MUTABLE_PRODUCT_FIELDS if name in set_fields]
    elif list(request.update_mask.paths) == ["*"]:
        paths = list(MUTABLE_PRODUCT_FIELDS)
    else:
        paths = []
        for index, path in enumerate(request.update_mask.paths):
            if path in MUTABLE_PRODUCT_FIELDS:
                paths.append(path)
            elif path not in IGNORED_PRODUCT_FIELDS:
                violations.add(
                    f"update_mask.paths[{index}]",
                    f"{path!r} is not a mutable field; use one of "
                    + ", ".join(MUTABLE_PRODUCT_FIELDS),
                )
    if not paths and not violations.items:
        violations.add("update_mask", "names no field to change")
    return list(dict.fromkeys(paths))


def _required_price(
    product: catalog_pb2.Product, field_path: str, violations: Violations
) -> Money | None:
    if not product.HasField("price"):
        violations.add(field_path, "is required")
        return None
    price = money_from_proto(product.price)
    violations.extend(price.violations(field_path))
    return price


def _timestamp(value: object) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)  # type: ignore[arg-type]
    return stamp
