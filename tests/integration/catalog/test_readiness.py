"""Health follows the real database: a PostgreSQL server is stopped and started under a catalog."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agora.catalog.v1 import catalog_service_pb2 as pb
from agora.catalog.v1 import catalog_service_pb2_grpc
from catalog.bootstrap import SERVICE_NAME, build
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.postgres import PostgresUnavailable, TemporaryCluster, handle_unavailable
from tests.support.status import error_info

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
CHANGE_WAIT_S = 30  # bound on waiting for each status change


@pytest.fixture
def own_cluster() -> Iterator[TemporaryCluster]:
    """A private PostgreSQL server, because this test stops it."""
    try:
        cluster = TemporaryCluster.start()
    except PostgresUnavailable as error:
        handle_unavailable(str(error), os.environ)
    yield cluster
    cluster.stop()


@pytest.mark.postgres
async def test_health_and_calls_follow_the_database_down_and_up(
    own_cluster: TemporaryCluster, tmp_path: Path
) -> None:
    settings = load_server_settings(
        "catalog",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path),
            "DATABASE_URL": own_cluster.url,
            "AGORA_READINESS_INTERVAL": "0.5",
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    service = await build(settings)
    async with (
        running(service, settings) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        catalog = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))

        first = await asyncio.wait_for(watch.read(), CHANGE_WAIT_S)
        assert first.status == SERVING

        await asyncio.to_thread(own_cluster.pause)
        down = await asyncio.wait_for(watch.read(), CHANGE_WAIT_S)
        assert down.status == NOT_SERVING
        check = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert check.status == NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await catalog.ListProducts(pb.ListProductsRequest(), timeout=CHANGE_WAIT_S)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(caught.value).reason == "DATABASE_UNAVAILABLE"

        await asyncio.to_thread(own_cluster.resume)
        up = await asyncio.wait_for(watch.read(), CHANGE_WAIT_S)
        assert up.status == SERVING
        listed = await catalog.ListProducts(pb.ListProductsRequest(), timeout=CHANGE_WAIT_S)
        assert list(listed.products) == []
        watch.cancel()
