"""The orders client against a whole checkout: catalog, inventory, payments and orders.

The four services are served in-process on loopback, each on its own SQLite file, the
way ``test_clients.py`` serves one; orders finds its peers through ``AGORA_*_ADDR``. Every
call in the tests goes through ``agora_sdk``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.type import money_pb2

import agora_sdk
from agora.catalog.v1 import catalog_pb2
from agora.catalog.v1 import catalog_service_pb2 as catalog_pb
from agora.inventory.v1 import inventory_service_pb2 as inventory_pb
from agora.orders.v1 import order_pb2
from agora.orders.v1 import order_service_pb2 as orders_pb
from catalog.bootstrap import build as build_catalog
from inventory.bootstrap import build as build_inventory
from inventory.config import InventorySettings
from orders.bootstrap import build as build_orders
from orders.config import load_orders_settings
from payments.bootstrap import build as build_payments
from runtime.config import ServerSettings
from runtime.server import Service
from tests.integration.sdk.test_clients import APPROVED_CARD, DECLINED_CARD, serving

#: Seconds a checkout gets to reach a final state; it takes a fraction of one here.
CHECKOUT_TIMEOUT = 10.0
#: Seconds between two looks at an order that is still on its way.
POLL = 0.05
FINAL_STATES = (order_pb2.ORDER_STATE_COMPLETED, order_pb2.ORDER_STATE_CANCELLED)
ON_HAND = 50


@dataclass(frozen=True)
class Shop:
    """Clients of a running shop, all on one client factory."""

    catalog: agora_sdk.CatalogClient
    inventory: agora_sdk.InventoryClient
    orders: agora_sdk.OrdersClient


def eur(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units, nanos=nanos)


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    factory = agora_sdk.ClientFactory()
    try:
        async with serving("catalog", tmp_path, build_catalog) as catalog_target:

            async def inventory(settings: ServerSettings) -> Service:
                options = InventorySettings(
                    sweep_interval=1.0, sweep_batch=100, catalog_address=catalog_target
                )
                return await build_inventory(settings, options=options)

            async with (
                serving("inventory", tmp_path, inventory) as inventory_target,
                serving("payments", tmp_path, build_payments) as payments_target,
            ):

                async def orders(settings: ServerSettings) -> Service:
                    options = load_orders_settings(
                        {
                            "ORDERS_POLL_SECONDS": "0.2",
                            "ORDERS_RETRY_MAX_SECONDS": "0.5",
                            "AGORA_CATALOG_ADDR": catalog_target,
                            "AGORA_INVENTORY_ADDR": inventory_target,
                            "AGORA_PAYMENTS_ADDR": payments_target,
                        },
                        port=settings.port,
                    )
                    return await build_orders(settings, options=options)

                async with serving("orders", tmp_path, orders) as orders_target:
                    shop = Shop(
                        agora_sdk.CatalogClient(catalog_target, factory=factory),
                        agora_sdk.InventoryClient(inventory_target, factory=factory),
                        agora_sdk.OrdersClient(orders_target, factory=factory),
                    )
                    await stock_the_shelf(shop)
                    yield shop
    finally:
        await factory.close()


async def stock_the_shelf(shop: Shop) -> None:
    """Assam at 4.50 EUR and hojicha at 7 EUR, ``ON_HAND`` units of each."""
    await shop.catalog.create_category(
        catalog_pb.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Tea"), category_id="tea"
        )
    )
    for tea, price in (("assam", eur(4, 500_000_000)), ("hojicha", eur(7))):
        await shop.catalog.create_product(
            catalog_pb.CreateProductRequest(
                product=catalog_pb2.Product(
                    display_name=tea.title(), category="categories/tea", price=price
                ),
                product_id=tea,
            )
        )
        await shop.inventory.set_stock(
            inventory_pb.SetStockRequest(name=f"products/{tea}/stock", on_hand=ON_HAND)
        )


def place(user: str, card: str = APPROVED_CARD, assam: int = 1) -> orders_pb.PlaceOrderRequest:
    return orders_pb.PlaceOrderRequest(
        user=user,
        line_items=[
            orders_pb.LineItem(product="products/assam", quantity=assam),
            orders_pb.LineItem(product="products/hojicha", quantity=1),
        ],
        payment_token=card,
        request_id=str(uuid.uuid4()),
    )


async def until_final(orders: agora_sdk.OrdersClient, name: str) -> order_pb2.Order:
    """Polls ``get_order`` until the checkout has finished; TimeoutError if it never does."""
    async with asyncio.timeout(CHECKOUT_TIMEOUT):
        while True:
            order = await orders.get_order(orders_pb.GetOrderRequest(name=name))
            if order.state in FINAL_STATES:
                return order
            await asyncio.sleep(POLL)


async def test_a_placed_order_completes_and_can_no_longer_be_cancelled(shop: Shop) -> None:
    request = place("users/ada", assam=2)
    placed = await shop.orders.place_order(request)
    assert placed.state == order_pb2.ORDER_STATE_PENDING
    assert placed.total == eur(16), "2 x 4.50 + 7, priced by the catalog"
    again = await shop.orders.place_order(request)
    assert again.name == placed.name, "the same request_id places nothing new"

    order = await until_final(shop.orders, placed.name)

    assert order.state == order_pb2.ORDER_STATE_COMPLETED
    assert order.cancellation_reason == order_pb2.CANCELLATION_REASON_UNSPECIFIED
    assert order.total == eur(16)
    assert [(line.product, line.quantity, line.line_total) for line in order.lines] == [
        ("products/assam", 2, eur(9)),
        ("products/hojicha", 1, eur(7)),
    ]
    assert order.payment, "the payment is kept after capture"
    assert order.reservation, "the reservation is kept after commit"
    assam = await shop.inventory.get_stock(
        inventory_pb.GetStockRequest(name="products/assam/stock")
    )
    assert (assam.on_hand, assam.reserved) == (ON_HAND - 2, 0), "the reservation is committed"

    with pytest.raises(agora_sdk.FailedPrecondition) as caught:
        await shop.orders.cancel_order(
            orders_pb.CancelOrderRequest(name=order.name, request_id=str(uuid.uuid4()))
        )
    assert (caught.value.reason, caught.value.domain) == ("ORDER_NOT_CANCELLABLE", "orders.agora")
    assert caught.value.metadata["order"] == order.name
    still = await shop.orders.get_order(orders_pb.GetOrderRequest(name=order.name))
    assert still.state == order_pb2.ORDER_STATE_COMPLETED


async def test_a_declined_card_ends_the_order_cancelled(shop: Shop) -> None:
    placed = await shop.orders.place_order(place("users/ada", DECLINED_CARD))

    order = await until_final(shop.orders, placed.name)

    assert order.state == order_pb2.ORDER_STATE_CANCELLED
    assert order.cancellation_reason == order_pb2.CANCELLATION_REASON_PAYMENT_DECLINED
    assert not order.payment, "no payment was authorized"
    hojicha = await shop.inventory.get_stock(
        inventory_pb.GetStockRequest(name="products/hojicha/stock")
    )
    assert (hojicha.on_hand, hojicha.reserved) == (ON_HAND, 0), "the stock is released"


async def test_list_orders_pages_through_a_users_orders_and_filters_by_state(
    shop: Shop,
) -> None:
    completed = []
    for quantity in (1, 2, 3):
        placed = await shop.orders.place_order(place("users/grace", assam=quantity))
        completed.append((await until_final(shop.orders, placed.name)).name)
    placed = await shop.orders.place_order(place("users/grace", DECLINED_CARD))
    declined = (await until_final(shop.orders, placed.name)).name
    await until_final(shop.orders, (await shop.orders.place_order(place("users/ada"))).name)

    newest_first = [declined, *reversed(completed)]
    request = orders_pb.ListOrdersRequest(user="users/grace", page_size=1)
    pages = [[o.name for o in page] async for page in shop.orders.list_orders(request).pages()]
    assert pages == [[name] for name in newest_first], "one order a page, newest first"
    assert request.page_token == "", "the caller's request is left as it was"

    def in_state(state: order_pb2.OrderState.ValueType) -> orders_pb.ListOrdersRequest:
        return orders_pb.ListOrdersRequest(user="users/grace", page_size=1, state=state)

    done = shop.orders.list_orders(in_state(order_pb2.ORDER_STATE_COMPLETED))
    assert [o.name async for o in done] == list(reversed(completed))
    cancelled = shop.orders.list_orders(in_state(order_pb2.ORDER_STATE_CANCELLED))
    assert [(o.name, o.cancellation_reason) async for o in cancelled] == [
        (declined, order_pb2.CANCELLATION_REASON_PAYMENT_DECLINED)
    ]
    nobody = shop.orders.list_orders(orders_pb.ListOrdersRequest(user="users/linus"))
    assert [o async for o in nobody] == []
