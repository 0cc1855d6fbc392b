"""OrderService over a real socket, pricing from a real catalog: production wiring, both databases.

Orders and the catalog (on SQLite) are served in-process on loopback ports. Inventory and
payments are not running: their addresses point at a port nobody listens on, so the
checkout runner only retries its first step in the background. That keeps every order
PENDING (unless the test cancels it) while the calls under test run.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_reflection.v1alpha import reflection_pb2

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2_grpc
from agora.catalog.v1 import catalog_service_pb2 as catalog_pb
from agora.orders.v1 import order_pb2, order_service_pb2_grpc
from agora.orders.v1 import order_service_pb2 as pb
from catalog.bootstrap import build as build_catalog
from orders.bootstrap import build
from orders.config import load_orders_settings
from runtime.auth import JwksFetcher
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.processes import free_port
from tests.support.status import error_info, field_violations, rich_status

if TYPE_CHECKING:
    from agora.catalog.v1.catalog_service_pb2_grpc import CatalogServiceAsyncStub
    from agora.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub

ORDER_SERVICE = "agora.orders.v1.OrderService"
CARD = "4242 4242 4242 4242"
ALICE = "users/alice"
WAIT_S = 10.0


@dataclass
class Shop:
    orders: OrderServiceAsyncStub
    catalog: CatalogServiceAsyncStub
    channel: grpc.aio.Channel


@contextlib.asynccontextmanager
async def serve_orders(
    database_url: str,
    data_dir: Path,
    catalog_address: str,
    retry_max: float = 5.0,
    jwks: JwksFetcher | None = None,
) -> AsyncIterator[grpc.aio.Channel]:
    settings = load_server_settings(
        "orders",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    nobody = f"127.0.0.1:{free_port()}"
    options = load_orders_settings(
        environ={
            "AGORA_CATALOG_ADDR": catalog_address,
            "AGORA_INVENTORY_ADDR": nobody,
            "AGORA_PAYMENTS_ADDR": nobody,
            "ORDERS_POLL_SECONDS": "3600",
            "ORDERS_RETRY_MAX_SECONDS": str(retry_max),
            "ORDERS_STEP_TIMEOUT_SECONDS": "1",
            "ORDERS_INSTANCE_ID": "orders-under-test",
        }
    )
    service = await build(settings, options=options)
    if jwks is not None:
        service.jwks = jwks  # access tokens signed by the test rather than by identity
    async with (
        running(service, settings) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield channel


async def stock_the_catalog(catalog: CatalogServiceAsyncStub) -> None:
    await catalog.CreateCategory(
        catalog_pb.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Tea"), category_id="tea"
        )
    )
    for product_id, display_name, price in [
        ("assam", "Assam, second flush", eur(4, 250_000_000)),
        ("matcha", "Matcha", eur(12, 990_000_000)),
        ("kombucha", "Kombucha", money_pb2.Money(currency_code="USD", units=3, nanos=500_000_000)),
    ]:
        await catalog.CreateProduct(
            catalog_pb.CreateProductRequest(
                product=catalog_pb2.Product(
                    display_name=display_name, category="categories/tea", price=price
                ),
                product_id=product_id,
            )
        )


@contextlib.asynccontextmanager
async def open_shop(
    database_url: str, tmp_path: Path, retry_max: float = 5.0, jwks: JwksFetcher | None = None
) -> AsyncIterator[Shop]:
    """Orders on ``database_url`` and a real catalog (on SQLite) it prices from, in-process.

    Orders verifies access tokens with the keys ``jwks`` fetches, if given.
    """
    catalog_settings = load_server_settings(
        "catalog",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path / "catalog"),
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    catalog_service = await build_catalog(catalog_settings)
    async with (
        running(catalog_service, catalog_settings) as catalog_port,
        grpc.aio.insecure_channel(f"127.0.0.1:{catalog_port}") as catalog_channel,
        serve_orders(
            database_url, tmp_path / "orders", f"127.0.0.1:{catalog_port}", retry_max, jwks
        ) as channel,
    ):
        catalog = catalog_service_pb2_grpc.CatalogServiceStub(catalog_channel)
        await stock_the_catalog(catalog)
        yield Shop(order_service_pb2_grpc.OrderServiceStub(channel), catalog, channel)


@pytest.fixture
async def shop(database_url: str, tmp_path: Path) -> AsyncIterator[Shop]:
    async with open_shop(database_url, tmp_path) as shop:
        yield shop


@pytest.fixture
async def orders_without_catalog(
    database_url: str, tmp_path: Path
) -> AsyncIterator[OrderServiceAsyncStub]:
    """Orders whose catalog address is a port nobody listens on."""
    async with serve_orders(database_url, tmp_path, f"127.0.0.1:{free_port()}") as channel:
        yield order_service_pb2_grpc.OrderServiceStub(channel)


def new_id() -> str:
    return str(uuid.uuid4())


def eur(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units, nanos=nanos)


def place_request(
    *items: tuple[str, int],
    user: str = ALICE,
    card: str = CARD,
    request_id: str | None = None,
) -> pb.PlaceOrderRequest:
    return pb.PlaceOrderRequest(
        user=user,
        line_items=[
            pb.LineItem(product=f"products/{product_id}", quantity=quantity)
            for product_id, quantity in (items or [("assam", 1)])
        ],
        payment_token=card,
        request_id=new_id() if request_id is None else request_id,
    )


async def place(
    stub: OrderServiceAsyncStub, *items: tuple[str, int], user: str = ALICE
) -> order_pb2.Order:
    return (await stub.PlaceOrder(place_request(*items, user=user))).order


async def get(stub: OrderServiceAsyncStub, name: str) -> order_pb2.Order:
    return (await stub.GetOrder(pb.GetOrderRequest(name=name))).order


async def listed(stub: OrderServiceAsyncStub, user: str = ALICE) -> list[str]:
    """Every order name of ``user``, all pages."""
    names: list[str] = []
    token = ""
    while True:
        page = await stub.ListOrders(pb.ListOrdersRequest(user=user, page_token=token))
        names += [order.name for order in page.orders]
        token = page.next_page_token
        if not token:
            return names


def failure(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[grpc.StatusCode, str]:
    info = error_info(caught.value)
    assert info.domain == "orders.agora"
    return caught.value.code(), info.reason


# --- PlaceOrder: the request's shape --------------------------------------------------------


async def test_place_order_reports_every_missing_field_at_once(shop: Shop) -> None:
    request = pb.PlaceOrderRequest(payment_token=CARD)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.orders.PlaceOrder(request)
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert field_violations(caught.value) == ["user", "line_items", "request_id"]


async def test_place_order_reports_every_bad_field_at_once(shop: Shop) -> None:
    items = [
        pb.LineItem(product="products/assam", quantity=0),
        pb.LineItem(product="products/assam", quantity=1001),
        pb.LineItem(product="teapots/brown", quantity=1),
        *(pb.LineItem(product=f"products/p{index}", quantity=1) for index in range(98)),
    ]
    assert len(items) == 101
    request = pb.PlaceOrderRequest(
        user="people/alice", line_items=items, payment_token="not a card"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.orders.PlaceOrder(request)
    # The contract's rules come first and name every field they cover at once. A product
    # listed twice and the card number are orders' own checks, reported once the rules
    # pass (below).
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert field_violations(caught.value) == [
        "user",
        "line_items",
        "line_items[0].quantity",
        "line_items[1].quantity",
        "line_items[2].product",
        "request_id",
    ]
    assert "not a card" not in (caught.value.details() or "")

    request = place_request(("assam", 1), ("matcha", 1), ("assam", 2), card="not a card")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.orders.PlaceOrder(request)
    # A bad card number among other problems is one more invalid field.
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert field_violations(caught.value) == ["line_items[2].product", "payment_token"]
    assert "not a card" not in (caught.value.details() or "")


@pytest.mark.parametrize(
    "card",
    [
        "",
        "4242 4242 4242 4241",  # fails the Luhn check
        "4242-4242",  # too short
        "4242 4242 4242 424x",
        "4" * 600,
    ],
)
async def test_a_bad_card_number_alone_is_an_invalid_payment_token_and_is_never_echoed(
    shop: Shop, card: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.orders.PlaceOrder(place_request(card=card))
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAYMENT_TOKEN")
    assert field_violations(caught.value) == ["payment_token"]
    digits = card.replace(" ", "").replace("-", "")
    if digits:
        shown = str(rich_status(caught.value)) + (caught.value.details() or "")
        assert card not in shown
        assert digits not in shown
    assert await listed(shop.orders) == []


# --- PlaceOrder: pricing --------------------------------------------------------------------


async def test_place_order_prices_every_line_from_the_catalog(shop: Shop) -> None:
    order = await place(shop.orders, ("assam", 3), ("matcha", 2))
    assert order.name.startswith("orders/")
    assert order.user == ALICE
    assert order.state == order_pb2.ORDER_STATE_PENDING
    assert [
        (line.product, line.display_name, line.quantity, line.unit_price, line.line_total)
        for line in order.lines
    ] == [
        ("products/assam", "Assam, second flush", 3, eur(4, 250_000_000), eur(12, 750_000_000)),
        ("products/matcha", "Matcha", 2, eur(12, 990_000_000), eur(25, 980_000_000)),
    ]
    assert order.total == eur(38, 730_000_000)
    assert [(r.step, r.outcome) for r in order.step_history] == [
        (order_pb2.CHECKOUT_STEP_PRICE_PRODUCTS, order_pb2.STEP_OUTCOME_SUCCEEDED)
    ]
    assert order.cancellation_reason == order_pb2.CANCELLATION_REASON_UNSPECIFIED
    assert (order.reservation, order.payment) == ("", "")
    assert order.create_time == order.update_time
    assert order.etag

    # A new price applies to the next order; the placed one keeps the price it was sold at.
    await shop.catalog.UpdateProduct(
        catalog_pb.UpdateProductRequest(
            product=catalog_pb2.Product(name="products/assam", price=eur(5, 100_000_000)),
            update_mask=field_mask_pb2.FieldMask(paths=["price"]),
        )
    )
    repriced = await place(shop.orders, ("assam", 3))
    assert repriced.lines[0].unit_price == eur(5, 100_000_000)
    assert repriced.total == eur(15, 300_000_000)
    assert (await get(shop.orders, order.name)).lines[0].unit_price == eur(4, 250_000_000)


async def test_unknown_products_are_all_named_and_nothing_is_stored(shop: Shop) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.orders.PlaceOrder(place_request(("ghost", 1), ("assam", 2), ("phantom", 3)))
    assert failure(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "PRODUCT_NOT_FOUND")
    assert error_info(caught.value).metadata["products"] == "products/ghost,products/phantom"
    assert await listed(shop.orders) == []


async def test_a_hundred_items_are_priced_in_one_go(shop: Shop) -> None:
    items = [("assam", 1), *((f"missing-{index}", 1) for index in range(99))]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.orders.PlaceOrder(place_request(*items))
    assert failure(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "PRODUCT_NOT_FOUND")
    missing = error_info(caught.value).metadata["products"].split(",")
    assert missing == [f"products/missing-{index}" for index in range(99)]


async def test_products_in_several_currencies_are_a_currency_mismatch(shop: Shop) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.orders.PlaceOrder(place_request(("kombucha", 1), ("assam", 1)))
    assert failure(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "CURRENCY_MISMATCH")
    assert error_info(caught.value).metadata["currencies"] == "EUR,USD"
    assert await listed(shop.orders) == []


async def test_a_catalog_that_is_down_makes_place_order_unavailable_and_stores_nothing(
    orders_without_catalog: OrderServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders_without_catalog.PlaceOrder(place_request(("assam", 1)), timeout=WAIT_S)
    assert failure(caught) == (grpc.StatusCode.UNAVAILABLE, "CATALOG_UNAVAILABLE")
    retry_infos = []
    for detail in rich_status(caught.value).details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            retry_infos.append(info)
    assert len(retry_infos) == 1
    assert await listed(orders_without_catalog) == []


# --- PlaceOrder: request ids ----------------------------------------------------------------


async def test_a_repeated_place_order_returns_the_order_as_accepted_and_places_one(
    shop: Shop,
) -> None:
    request = place_request(("assam", 2))
    first = (await shop.orders.PlaceOrder(request)).order
    # The order moves on (here: the customer cancels it) before the repeat comes in.
    cancelled = await shop.orders.CancelOrder(pb.CancelOrderRequest(name=first.name))
    assert cancelled.order.state != order_pb2.ORDER_STATE_PENDING

    again = (await shop.orders.PlaceOrder(request)).order
    assert again == first
    assert again.state == order_pb2.ORDER_STATE_PENDING
    assert len(again.step_history) == 1
    assert await listed(shop.orders) == [first.name]


async def test_a_request_id_reused_for_another_order_is_refused(shop: Shop) -> None:
    request = place_request(("assam", 2))
    first = (await shop.orders.PlaceOrder(request)).order
    changed = pb.PlaceOrderRequest()
    changed.CopyFrom(request)
    changed.line_items[0].quantity = 3
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.orders.PlaceOrder(changed)
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    assert field_violations(caught.value) == ["request_id"]
    assert await listed(shop.orders) == [first.name]


# --- GetOrder, ListOrders -------------------------------------------------------------------


async def test_get_order_reports_missing_and_malformed_names(shop: Shop) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await get(shop.orders, "orders/nope")
    assert failure(missing) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")
    assert error_info(missing.value).metadata["order"] == "orders/nope"
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await get(shop.orders, "payments/nope")
    assert failure(malformed) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert field_violations(malformed.value) == ["name"]


async def test_list_orders_pages_newest_first_and_filters_by_state(shop: Shop) -> None:
    made = [await place(shop.orders, ("assam", index + 1)) for index in range(5)]
    await place(shop.orders, ("matcha", 1), user="users/bob")
    for order in made[1:3]:
        await shop.orders.CancelOrder(pb.CancelOrderRequest(name=order.name))
    newest_first = sorted(made, key=lambda o: (o.create_time.ToNanoseconds(), o.name), reverse=True)

    first = await shop.orders.ListOrders(pb.ListOrdersRequest(user=ALICE, page_size=2))
    assert [o.name for o in first.orders] == [o.name for o in newest_first[:2]]
    assert await listed(shop.orders) == [o.name for o in newest_first]
    assert len(await listed(shop.orders, "users/bob")) == 1
    assert await listed(shop.orders, "users/carol") == []

    pending_request = pb.ListOrdersRequest(
        user=ALICE, page_size=2, state=order_pb2.ORDER_STATE_PENDING
    )
    pending_page = await shop.orders.ListOrders(pending_request)
    pending_request.page_token = pending_page.next_page_token
    pending_rest = await shop.orders.ListOrders(pending_request)
    assert pending_rest.next_page_token == ""
    pending = [*pending_page.orders, *pending_rest.orders]
    assert [o.name for o in pending] == [
        o.name for o in newest_first if o.name not in {made[1].name, made[2].name}
    ]
    assert {o.state for o in pending} == {order_pb2.ORDER_STATE_PENDING}

    for reused in (
        pb.ListOrdersRequest(user=ALICE, page_token=pending_page.next_page_token),
        pb.ListOrdersRequest(
            user="users/bob",
            state=order_pb2.ORDER_STATE_PENDING,
            page_token=pending_page.next_page_token,
        ),
        pb.ListOrdersRequest(user=ALICE, page_token="bm90IGEgdG9rZW4"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await shop.orders.ListOrders(reused)
        assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await shop.orders.ListOrders(pb.ListOrdersRequest(user="alice", page_size=-1))
    assert failure(bad) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert field_violations(bad.value) == ["user", "page_size"]


# --- CancelOrder ----------------------------------------------------------------------------


async def test_cancel_order_with_a_stale_etag_is_aborted(shop: Shop) -> None:
    order = await place(shop.orders, ("assam", 1))
    cancelled = (await shop.orders.CancelOrder(pb.CancelOrderRequest(name=order.name))).order
    assert cancelled.cancellation_reason == order_pb2.CANCELLATION_REASON_CUSTOMER_REQUESTED
    assert cancelled.etag != order.etag

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.orders.CancelOrder(pb.CancelOrderRequest(name=order.name, etag=order.etag))
    assert failure(caught) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    metadata = error_info(caught.value).metadata
    assert metadata["order"] == order.name
    assert metadata["current_etag"] == (await get(shop.orders, order.name)).etag

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await shop.orders.CancelOrder(pb.CancelOrderRequest(name="orders/nope"))
    assert failure(missing) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")


# --- the order while its checkout cannot proceed --------------------------------------------


async def test_an_order_whose_checkout_keeps_retrying_keeps_its_etag(
    database_url: str, tmp_path: Path
) -> None:
    # Retrying a step that failed transiently changes nothing a caller can see, so the
    # etag (a checksum of the order's state) and update_time must stay as they are;
    # otherwise a conditional CancelOrder fails for no visible reason.
    async with open_shop(database_url, tmp_path, retry_max=0.05) as shop:
        order = await place(shop.orders, ("assam", 1))
        async with asyncio.timeout(WAIT_S):
            seen = await get(shop.orders, order.name)
            while seen.update_time == seen.create_time:  # until the reserve step started
                await asyncio.sleep(0.05)
                seen = await get(shop.orders, order.name)
        await asyncio.sleep(1.0)  # several retries of the reserve step: inventory is down
        assert await get(shop.orders, order.name) == seen
        cancelled = await shop.orders.CancelOrder(
            pb.CancelOrderRequest(name=order.name, etag=seen.etag)
        )
        assert cancelled.order.cancellation_reason == (
            order_pb2.CANCELLATION_REASON_CUSTOMER_REQUESTED
        )


# --- reflection -----------------------------------------------------------------------------


async def test_reflection_lists_the_order_service(shop: Shop) -> None:
    reflect = shop.channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=ORDER_SERVICE),
    ]
    call = reflect(iter(requests), timeout=WAIT_S)
    listed_services, described = [response async for response in call]
    assert isinstance(listed_services, reflection_pb2.ServerReflectionResponse)
    names = {service.name for service in listed_services.list_services_response.service}
    assert {ORDER_SERVICE, "grpc.health.v1.Health"} <= names
    assert isinstance(described, reflection_pb2.ServerReflectionResponse)
    assert described.file_descriptor_response.file_descriptor_proto, described.error_response
