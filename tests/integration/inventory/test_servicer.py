"""InventoryService over a real socket, with a real catalog: production wiring, both databases."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import duration_pb2
from google.type import money_pb2

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2_grpc
from agora.catalog.v1 import catalog_service_pb2 as catalog_pb
from agora.inventory.v1 import inventory_pb2, inventory_service_pb2_grpc
from agora.inventory.v1 import inventory_service_pb2 as pb
from catalog.bootstrap import build as build_catalog
from inventory.bootstrap import build
from inventory.config import InventorySettings
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.processes import free_port
from tests.support.status import error_info, field_violations

if TYPE_CHECKING:
    from agora.catalog.v1.catalog_service_pb2_grpc import CatalogServiceAsyncStub
    from agora.inventory.v1.inventory_service_pb2_grpc import InventoryServiceAsyncStub

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WAIT_S = 10.0  # bound on waiting for the sweeper


class Clock:
    """The time inventory sees; tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = NOON

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Shop:
    inventory: InventoryServiceAsyncStub
    catalog: CatalogServiceAsyncStub
    clock: Clock


@contextlib.asynccontextmanager
async def serve_inventory(
    database_url: str, data_dir: Path, catalog_address: str, clock: Clock
) -> AsyncIterator[InventoryServiceAsyncStub]:
    settings = load_server_settings(
        "inventory",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    options = InventorySettings(
        sweep_interval=0.05, sweep_batch=100, catalog_address=catalog_address
    )
    service = await build(settings, options=options, clock=clock)
    async with (
        running(service, settings) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield inventory_service_pb2_grpc.InventoryServiceStub(channel)


@pytest.fixture
async def shop(database_url: str, tmp_path: Path) -> AsyncIterator[Shop]:
    """Inventory on ``database_url`` and a real catalog (on SQLite) it asks, both in-process."""
    catalog_settings = load_server_settings(
        "catalog",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path / "catalog"),
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    clock = Clock()
    catalog_service = await build_catalog(catalog_settings)
    async with (
        running(catalog_service, catalog_settings) as catalog_port,
        grpc.aio.insecure_channel(f"127.0.0.1:{catalog_port}") as catalog_channel,
        serve_inventory(
            database_url, tmp_path / "inventory", f"127.0.0.1:{catalog_port}", clock
        ) as inventory,
    ):
        catalog = catalog_service_pb2_grpc.CatalogServiceStub(catalog_channel)
        await catalog.CreateCategory(
            catalog_pb.CreateCategoryRequest(
                category=catalog_pb2.Category(display_name="Tea"), category_id="tea"
            )
        )
        for product_id in ("assam", "matcha", "sencha"):
            await catalog.CreateProduct(
                catalog_pb.CreateProductRequest(
                    product=catalog_pb2.Product(
                        display_name=product_id.title(),
                        category="categories/tea",
                        price=money_pb2.Money(currency_code="EUR", units=4),
                    ),
                    product_id=product_id,
                )
            )
        yield Shop(inventory, catalog, clock)


async def set_stock(shop: Shop, product_id: str, on_hand: int) -> inventory_pb2.Stock:
    response = await shop.inventory.SetStock(
        pb.SetStockRequest(name=f"products/{product_id}/stock", on_hand=on_hand)
    )
    return response.stock


def reserve_request(order: str, ttl_seconds: int = 0, **items: int) -> pb.ReserveStockRequest:
    return pb.ReserveStockRequest(
        order=f"orders/{order}",
        items=[
            inventory_pb2.ReservationItem(product=f"products/{p}", quantity=q)
            for p, q in items.items()
        ],
        ttl=duration_pb2.Duration(seconds=ttl_seconds),
    )


async def stock_of(shop: Shop, product_id: str) -> tuple[int, int, int]:
    stock = (
        await shop.inventory.GetStock(pb.GetStockRequest(name=f"products/{product_id}/stock"))
    ).stock
    return stock.on_hand, stock.reserved, stock.available


async def test_set_reserve_commit_release_and_get(shop: Shop) -> None:
    created = await set_stock(shop, "assam", 10)
    assert (created.name, created.product) == ("products/assam/stock", "products/assam")
    await set_stock(shop, "sencha", 4)

    reserved = (
        await shop.inventory.ReserveStock(reserve_request("o1", assam=3, sencha=4))
    ).reservation
    assert reserved.state == inventory_pb2.RESERVATION_STATE_ACTIVE
    assert reserved.order == "orders/o1"
    assert reserved.expire_time.ToDatetime(UTC) == NOON + timedelta(minutes=15)
    assert await stock_of(shop, "assam") == (10, 3, 7)

    got = await shop.inventory.GetReservation(pb.GetReservationRequest(name=reserved.name))
    assert got.reservation == reserved

    committed = await shop.inventory.CommitReservation(
        pb.CommitReservationRequest(name=reserved.name)
    )
    assert committed.reservation.state == inventory_pb2.RESERVATION_STATE_COMMITTED
    assert await stock_of(shop, "assam") == (7, 0, 7)
    assert await stock_of(shop, "sencha") == (0, 0, 0)

    other = (await shop.inventory.ReserveStock(reserve_request("o2", assam=2))).reservation
    released = await shop.inventory.ReleaseReservation(
        pb.ReleaseReservationRequest(name=other.name)
    )
    assert released.reservation.state == inventory_pb2.RESERVATION_STATE_RELEASED
    assert await stock_of(shop, "assam") == (7, 0, 7)


async def test_fifty_concurrent_reservations_over_grpc_let_exactly_ten_through(
    shop: Shop,
) -> None:
    await set_stock(shop, "matcha", 10)
    outcomes = await asyncio.gather(
        *(shop.inventory.ReserveStock(reserve_request(f"o{i}", matcha=1)) for i in range(50)),
        return_exceptions=True,
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(outcomes) - len(failures) == 10
    assert len(failures) == 40
    for failure in failures:
        assert isinstance(failure, grpc.aio.AioRpcError), failure
        assert failure.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(failure).reason == "INSUFFICIENT_STOCK"
    assert await stock_of(shop, "matcha") == (10, 10, 0)


async def test_set_stock_racing_reservations_never_drops_below_the_reserved_units(
    shop: Shop,
) -> None:
    await set_stock(shop, "matcha", 10)
    reservations = [
        shop.inventory.ReserveStock(reserve_request(f"o{i}", matcha=1)) for i in range(20)
    ]
    lowerings = [
        shop.inventory.SetStock(pb.SetStockRequest(name="products/matcha/stock", on_hand=5))
        for _ in range(3)
    ]
    outcomes = await asyncio.gather(*reservations, *lowerings, return_exceptions=True)
    reserved = [o for o in outcomes[:20] if isinstance(o, pb.ReserveStockResponse)]
    lowered = [o for o in outcomes[20:] if isinstance(o, pb.SetStockResponse)]
    for failure in (o for o in outcomes if isinstance(o, BaseException)):
        assert isinstance(failure, grpc.aio.AioRpcError), failure
        assert error_info(failure).reason in ("INSUFFICIENT_STOCK", "ON_HAND_BELOW_RESERVED")
    on_hand, held, available = await stock_of(shop, "matcha")
    assert held == len(reserved)
    assert on_hand == (5 if lowered else 10)
    assert 0 <= held <= on_hand
    assert available == on_hand - held


async def test_set_stock_of_a_product_the_catalog_lacks_fails(shop: Shop) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await set_stock(shop, "oolong", 5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(caught.value)
    assert (info.reason, info.domain) == ("PRODUCT_NOT_FOUND", "inventory.agora")
    assert info.metadata["product"] == "products/oolong"


async def test_set_stock_with_the_catalog_down_is_unavailable(
    database_url: str, tmp_path: Path
) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    async with serve_inventory(database_url, tmp_path, nobody, Clock()) as inventory:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await inventory.SetStock(pb.SetStockRequest(name="products/assam/stock", on_hand=1))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(caught.value).reason == "CATALOG_UNAVAILABLE"
        # Everything that does not need the catalog still works.
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await inventory.GetStock(pb.GetStockRequest(name="products/assam/stock"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(missing.value).reason == "STOCK_NOT_FOUND"


async def test_the_sweeper_expires_reservations_once_their_time_is_up(shop: Shop) -> None:
    await set_stock(shop, "assam", 10)
    reservation = (
        await shop.inventory.ReserveStock(reserve_request("o1", ttl_seconds=60, assam=4))
    ).reservation
    await asyncio.sleep(0.2)  # several sweeps pass; the reservation is not due yet
    assert await stock_of(shop, "assam") == (10, 4, 6)

    shop.clock.now = NOON + timedelta(seconds=60)
    async with asyncio.timeout(WAIT_S):
        while True:
            got = await shop.inventory.GetReservation(
                pb.GetReservationRequest(name=reservation.name)
            )
            if got.reservation.state != inventory_pb2.RESERVATION_STATE_ACTIVE:
                break
            await asyncio.sleep(0.02)
    assert got.reservation.state == inventory_pb2.RESERVATION_STATE_EXPIRED
    assert await stock_of(shop, "assam") == (10, 0, 10)


async def test_commit_past_expiry_before_the_sweep_is_refused(shop: Shop) -> None:
    await set_stock(shop, "assam", 10)
    reservation = (
        await shop.inventory.ReserveStock(reserve_request("o1", ttl_seconds=60, assam=4))
    ).reservation
    shop.clock.now = NOON + timedelta(seconds=61)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.inventory.CommitReservation(pb.CommitReservationRequest(name=reservation.name))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(caught.value)
    assert info.reason == "RESERVATION_EXPIRED"
    assert info.metadata["expireTime"] == "2026-11-25T12:01:00Z"


async def test_state_errors_carry_their_reasons(shop: Shop) -> None:
    await set_stock(shop, "assam", 10)
    first = (await shop.inventory.ReserveStock(reserve_request("o1", assam=6))).reservation
    cases: list[tuple[Callable[[], Awaitable[object]], grpc.StatusCode, str]] = [
        (
            lambda: shop.inventory.ReserveStock(reserve_request("o1", assam=1)),
            grpc.StatusCode.ALREADY_EXISTS,
            "RESERVATION_ALREADY_EXISTS",
        ),
        (
            lambda: shop.inventory.SetStock(
                pb.SetStockRequest(name="products/assam/stock", on_hand=5)
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "ON_HAND_BELOW_RESERVED",
        ),
        (
            lambda: shop.inventory.SetStock(
                pb.SetStockRequest(name="products/assam/stock", on_hand=50, etag="stale")
            ),
            grpc.StatusCode.ABORTED,
            "ETAG_MISMATCH",
        ),
        (
            lambda: shop.inventory.GetReservation(
                pb.GetReservationRequest(name="reservations/rnone")
            ),
            grpc.StatusCode.NOT_FOUND,
            "RESERVATION_NOT_FOUND",
        ),
    ]
    for call, code, reason in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        assert (caught.value.code(), error_info(caught.value).reason) == (code, reason)
    await shop.inventory.CommitReservation(pb.CommitReservationRequest(name=first.name))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.inventory.ReleaseReservation(pb.ReleaseReservationRequest(name=first.name))
    assert error_info(caught.value).reason == "RESERVATION_COMMITTED"


async def test_repeated_requests_replay_and_reused_ids_are_refused(shop: Shop) -> None:
    await set_stock(shop, "assam", 10)
    request = reserve_request("o1", assam=2)
    request.request_id = str(uuid.uuid4())
    first = await shop.inventory.ReserveStock(request)
    again = await shop.inventory.ReserveStock(request)
    assert again.reservation.name == first.reservation.name
    assert await stock_of(shop, "assam") == (10, 2, 8)

    request.items[0].quantity = 3
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.inventory.ReserveStock(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "REQUEST_ID_REUSED"


async def test_malformed_requests_list_every_bad_field(shop: Shop) -> None:
    request = pb.ReserveStockRequest(
        order="o1",
        items=[inventory_pb2.ReservationItem(product="products/assam", quantity=0)],
        ttl=duration_pb2.Duration(seconds=7200),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.inventory.ReserveStock(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "INVALID_ARGUMENT"
    assert field_violations(caught.value) == ["order", "items[0].quantity", "ttl"]
