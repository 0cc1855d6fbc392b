"""Stopping the catalog process: exit status, draining of calls in flight, refusal of new ones.

A call is held "in flight" deterministically by sending the unary ``ListProducts`` request
through a client-streaming call object: the call starts (its headers reach the server and
a handler is waiting for the request message) but the message is only sent when the test
releases it, after the server has begun to shut down.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from google.type import money_pb2

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2, catalog_service_pb2_grpc
from tests.support.processes import (
    STOP_TIMEOUT_S,
    ServiceProcess,
    health_status,
    running_service,
    wait_until,
)

LIST_PRODUCTS = "/agora.catalog.v1.CatalogService/ListProducts"
#: Long enough that a held call is never cut short by the grace period in these tests.
LONG_GRACE_S = 30.0
#: How long the test waits for the held call's headers to reach the server.
SETTLE_S = 0.5


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[ServiceProcess]:
    with running_service(
        "catalog", tmp_path, env={"AGORA_GRACE_SECONDS": str(LONG_GRACE_S)}
    ) as service:
        yield service


@pytest.fixture
def quick_grace_catalog(tmp_path: Path) -> Iterator[ServiceProcess]:
    with running_service("catalog", tmp_path, env={"AGORA_GRACE_SECONDS": "1"}) as service:
        yield service


async def add_product(channel: grpc.aio.Channel, product_id: str) -> str:
    stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
    await stub.CreateCategory(
        catalog_service_pb2.CreateCategoryRequest(
            category_id="lamps", category=catalog_pb2.Category(display_name="Lamps")
        ),
        timeout=10,
    )
    response = await stub.CreateProduct(
        catalog_service_pb2.CreateProductRequest(
            product_id=product_id,
            product=catalog_pb2.Product(
                display_name="Desk lamp",
                category="categories/lamps",
                price=money_pb2.Money(currency_code="EUR", units=30),
            ),
        ),
        timeout=10,
    )
    return response.product.name


class HeldListProducts:
    """A ListProducts call whose request message is sent only when :meth:`release` is called."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._release = asyncio.Event()
        multicallable = channel.stream_unary(
            LIST_PRODUCTS,
            request_serializer=catalog_service_pb2.ListProductsRequest.SerializeToString,
            response_deserializer=catalog_service_pb2.ListProductsResponse.FromString,
        )
        self.call = multicallable(self._requests(), timeout=60)

    async def _requests(self) -> AsyncIterator[catalog_service_pb2.ListProductsRequest]:
        await self._release.wait()
        yield catalog_service_pb2.ListProductsRequest(page_size=10)

    def release(self) -> None:
        self._release.set()


def exit_status(service: ServiceProcess) -> int:
    """Waits (bounded) for the process to exit and returns its status."""
    return service.process.wait(timeout=STOP_TIMEOUT_S)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_catalog_exits_zero_on_a_stop_signal(catalog: ServiceProcess, sig: int) -> None:
    catalog.process.send_signal(sig)

    assert exit_status(catalog) == 0, catalog.tail()
    assert catalog.logged("shutting down")
    assert catalog.logged("stopped")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_call_in_flight_at_a_stop_signal_completes_and_new_calls_are_refused(
    catalog: ServiceProcess, sig: int
) -> None:
    async with grpc.aio.insecure_channel(catalog.address) as channel:
        product = await add_product(channel, "desk-lamp")
        held = HeldListProducts(channel)
        await asyncio.sleep(SETTLE_S)  # the call's headers reach the server

        catalog.process.send_signal(sig)
        await asyncio.to_thread(catalog.wait_for_log, "shutting down", 10.0)
        # The server drains: new connections are refused while the held call is open.
        refused = await asyncio.to_thread(
            wait_until, lambda: health_status(catalog.address) == "UNAVAILABLE", 10.0
        )
        still_running = catalog.process.poll() is None
        held.release()
        response = await held.call

    assert refused, "new calls were still accepted during shutdown"
    assert still_running, "the process exited before the call in flight completed"
    assert [p.name for p in response.products] == [product]
    assert await asyncio.to_thread(exit_status, catalog) == 0, catalog.tail()


async def test_a_call_held_past_the_grace_period_does_not_keep_the_process_alive(
    quick_grace_catalog: ServiceProcess,
) -> None:
    catalog = quick_grace_catalog
    async with grpc.aio.insecure_channel(catalog.address) as channel:
        await add_product(channel, "desk-lamp")
        held = HeldListProducts(channel)
        await asyncio.sleep(SETTLE_S)

        catalog.process.send_signal(signal.SIGTERM)
        status = await asyncio.to_thread(exit_status, catalog)
        held.release()
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await held.call

    assert status == 0, catalog.tail()
    assert failure.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)


def test_calls_after_the_process_stopped_are_refused(catalog: ServiceProcess) -> None:
    assert health_status(catalog.address) == "SERVING"

    catalog.process.send_signal(signal.SIGTERM)
    assert exit_status(catalog) == 0, catalog.tail()

    assert health_status(catalog.address) == "UNAVAILABLE"
