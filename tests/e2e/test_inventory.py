"""Inventory as real processes: ``python -m catalog`` and ``python -m inventory`` on loopback.

The happy path runs stock through a reservation to a commit; the failure paths are a
product the catalog lacks, the catalog going away, and a reservation left to expire.
"""

from __future__ import annotations

import asyncio
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
from tests.support.processes import running_service
from tests.support.status import error_info

if TYPE_CHECKING:
    from agora.inventory.v1.inventory_service_pb2_grpc import InventoryServiceAsyncStub

CALL_TIMEOUT_S = 10.0
EXPIRY_WAIT_S = 20.0  # bound on the sweeper expiring a 1-second reservation


async def create_tea(catalog_address: str, product_id: str) -> None:
    async with grpc.aio.insecure_channel(catalog_address) as channel:
        catalog = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        await catalog.CreateCategory(
            catalog_pb.CreateCategoryRequest(
                category=catalog_pb2.Category(display_name="Tea"), category_id="tea"
            ),
            timeout=CALL_TIMEOUT_S,
        )
        await catalog.CreateProduct(
            catalog_pb.CreateProductRequest(
                product=catalog_pb2.Product(
                    display_name="Assam",
                    category="categories/tea",
                    price=money_pb2.Money(currency_code="EUR", units=4),
                ),
                product_id=product_id,
            ),
            timeout=CALL_TIMEOUT_S,
        )


async def stock_of(inventory: InventoryServiceAsyncStub, product_id: str) -> tuple[int, int]:
    response = await inventory.GetStock(
        pb.GetStockRequest(name=f"products/{product_id}/stock"), timeout=CALL_TIMEOUT_S
    )
    return response.stock.on_hand, response.stock.reserved


async def test_stock_is_set_reserved_committed_and_expired_with_a_real_catalog(
    tmp_path: Path,
) -> None:
    with running_service("catalog", tmp_path / "catalog") as catalog:
        await create_tea(catalog.address, "assam")
        env = {"AGORA_CATALOG_ADDR": catalog.address, "INVENTORY_SWEEP_INTERVAL_SECONDS": "0.2"}
        with running_service("inventory", tmp_path / "inventory", env=env) as process:
            async with grpc.aio.insecure_channel(process.address) as channel:
                inventory = inventory_service_pb2_grpc.InventoryServiceStub(channel)
                await inventory.SetStock(
                    pb.SetStockRequest(name="products/assam/stock", on_hand=10, request_id="s1"),
                    timeout=CALL_TIMEOUT_S,
                )
                taken = await inventory.ReserveStock(
                    pb.ReserveStockRequest(
                        order="orders/o1",
                        items=[inventory_pb2.ReservationItem(product="products/assam", quantity=3)],
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
                assert await stock_of(inventory, "assam") == (10, 3)
                committed = await inventory.CommitReservation(
                    pb.CommitReservationRequest(name=taken.reservation.name),
                    timeout=CALL_TIMEOUT_S,
                )
                assert committed.reservation.state == inventory_pb2.RESERVATION_STATE_COMMITTED
                assert await stock_of(inventory, "assam") == (7, 0)

                # Left alone, a reservation expires and its units come back.
                brief = await inventory.ReserveStock(
                    pb.ReserveStockRequest(
                        order="orders/o2",
                        items=[inventory_pb2.ReservationItem(product="products/assam", quantity=5)],
                        ttl=duration_pb2.Duration(seconds=1),
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
                async with asyncio.timeout(EXPIRY_WAIT_S):
                    while True:
                        if await stock_of(inventory, "assam") == (7, 0):
                            break
                        await asyncio.sleep(0.1)
                got = await inventory.GetReservation(
                    pb.GetReservationRequest(name=brief.reservation.name), timeout=CALL_TIMEOUT_S
                )
                assert got.reservation.state == inventory_pb2.RESERVATION_STATE_EXPIRED


async def test_set_stock_fails_for_an_unknown_product_and_while_the_catalog_is_down(
    tmp_path: Path,
) -> None:
    with running_service("catalog", tmp_path / "catalog") as catalog:
        await create_tea(catalog.address, "assam")
        env = {"AGORA_CATALOG_ADDR": catalog.address}
        with running_service("inventory", tmp_path / "inventory", env=env) as process:
            async with grpc.aio.insecure_channel(process.address) as channel:
                inventory = inventory_service_pb2_grpc.InventoryServiceStub(channel)
                await inventory.SetStock(
                    pb.SetStockRequest(name="products/assam/stock", on_hand=10, request_id="s1"),
                    timeout=CALL_TIMEOUT_S,
                )
                with pytest.raises(grpc.aio.AioRpcError) as unknown:
                    await inventory.SetStock(
                        pb.SetStockRequest(name="products/oolong/stock", on_hand=1),
                        timeout=CALL_TIMEOUT_S,
                    )
                assert unknown.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert error_info(unknown.value).reason == "PRODUCT_NOT_FOUND"

                assert catalog.stop() == 0
                with pytest.raises(grpc.aio.AioRpcError) as down:
                    await inventory.SetStock(
                        pb.SetStockRequest(name="products/assam/stock", on_hand=20),
                        timeout=CALL_TIMEOUT_S,
                    )
                assert down.value.code() == grpc.StatusCode.UNAVAILABLE
                assert error_info(down.value).reason == "CATALOG_UNAVAILABLE"
                # A repeat of an earlier SetStock still answers, without the catalog.
                again = await inventory.SetStock(
                    pb.SetStockRequest(name="products/assam/stock", on_hand=10, request_id="s1"),
                    timeout=CALL_TIMEOUT_S,
                )
                assert again.stock.on_hand == 10
                assert await stock_of(inventory, "assam") == (10, 0)
