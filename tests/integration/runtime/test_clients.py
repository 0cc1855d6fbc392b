"""What ``runtime.clients.ClientFactory`` promises, checked against real servers on loopback.

Deadlines propagate hop by hop, retries follow the contract's idempotency levels, failures
come back as ``runtime.errors`` classes, and channels are shared and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agora.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from runtime import context as request_context
from runtime import errors
from runtime.clients import DEADLINE_MARGIN, DEFAULT_TIMEOUT, ClientFactory
from runtime.config import load_server_settings
from runtime.interceptors import RuntimeInterceptor
from runtime.server import running
from tests.support.catalog_server import (
    DOMAIN,
    Context,
    GetProduct,
    ProductNotFound,
    echo,
    product,
    scripted_catalog,
)

CATALOG = catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"]
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
#: Upper bound for any single wait in these tests; reaching it means the behaviour is broken.
PATIENCE = 10.0


@contextlib.asynccontextmanager
async def _catalog(get_product: GetProduct) -> AsyncIterator[str]:
    """Serves a scripted catalog through the runtime; yields its ``host:port``."""
    service = scripted_catalog(get_product)
    settings = load_server_settings(
        "catalog",
        environ={"AGORA_PORT": "0", "AGORA_GRACE_SECONDS": "1", "AGORA_READINESS_INTERVAL": "1"},
    )
    async with running(service, settings) as port:
        yield f"127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def _factory(default_timeout: float = DEFAULT_TIMEOUT) -> AsyncIterator[ClientFactory]:
    factory = ClientFactory(default_timeout=default_timeout)
    try:
        yield factory
    finally:
        await factory.close()


def _catalog_stub(
    factory: ClientFactory, target: str
) -> catalog_service_pb2_grpc.CatalogServiceAsyncStub:
    return factory.stub(catalog_service_pb2_grpc.CatalogServiceStub, CATALOG, target)


def _request(name: str = "products/tea") -> catalog_service_pb2.GetProductRequest:
    return catalog_service_pb2.GetProductRequest(name=name)


# Deadlines ------------------------------------------------------------------------------


@pytest.mark.parametrize("default_timeout", [DEFAULT_TIMEOUT, 600.0])
async def test_the_callers_deadline_reaches_the_third_hop(default_timeout: float) -> None:
    """client -(300 ms)-> A -> B -> C; A and B call through a factory without a timeout."""
    seen: dict[str, float | None] = {}

    async def c(
        request: catalog_service_pb2.GetProductRequest, context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        remaining = context.time_remaining()
        seen["C"] = remaining
        return product(request.name, display_name=repr(remaining))

    def forwarding(hop: str, factory: ClientFactory, target: str) -> GetProduct:
        async def forward(
            request: catalog_service_pb2.GetProductRequest, context: Context
        ) -> catalog_service_pb2.GetProductResponse:
            seen[hop] = context.time_remaining()
            return await _catalog_stub(factory, target).GetProduct(request)

        return forward

    async with (
        _factory(default_timeout) as a_clients,
        _factory(default_timeout) as b_clients,
        _catalog(c) as c_target,
        _catalog(forwarding("B", b_clients, c_target)) as b_target,
        _catalog(forwarding("A", a_clients, b_target)) as a_target,
        grpc.aio.insecure_channel(a_target) as channel,
    ):
        stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        response = await stub.GetProduct(_request(), timeout=0.3)

    reported = float(response.product.display_name)
    assert reported == seen["C"]
    # Each hop keeps a margin back, so C sees less than the caller's budget minus a margin.
    assert 0 < reported < 0.3 - DEADLINE_MARGIN
    a_seen, b_seen = seen["A"], seen["B"]
    assert a_seen is not None
    assert b_seen is not None
    assert reported < b_seen < a_seen


async def test_without_an_inbound_deadline_the_default_timeout_applies() -> None:
    seen: list[float | None] = []

    async def c(
        request: catalog_service_pb2.GetProductRequest, context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        seen.append(context.time_remaining())
        return product(request.name)

    async with _factory(default_timeout=7.0) as clients, _catalog(c) as target:
        await _catalog_stub(clients, target).GetProduct(_request())
        await _catalog_stub(clients, target).GetProduct(_request(), timeout=0.5)

    (by_default, explicit) = seen
    assert by_default is not None
    # The wire rounds the timeout up a little, so compare with the neighbouring values.
    assert 5.0 < by_default < 7.1
    assert explicit is not None
    assert 0 < explicit < 1.0


async def test_a_call_made_once_the_inbound_budget_is_spent_never_leaves() -> None:
    """A forwards to B only after its own deadline has run out: B must not be called."""
    b_calls: list[str] = []
    outcome: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    async def b(
        request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        b_calls.append(request.name)
        return product(request.name)

    def late_forwarding(clients: ClientFactory, target: str) -> GetProduct:
        async def forward_late(name: str) -> None:
            remaining = request_context.time_remaining()
            if remaining is not None:
                await asyncio.sleep(max(remaining, 0.0))
            try:
                await _catalog_stub(clients, target).GetProduct(_request(name))
            except Exception as error:  # what the caller of the factory sees
                outcome.set_result(error)
            else:
                outcome.set_result(None)

        async def forward(
            request: catalog_service_pb2.GetProductRequest, _context: Context
        ) -> catalog_service_pb2.GetProductResponse:
            if request.name == "products/in-time":
                return await _catalog_stub(clients, target).GetProduct(request)
            # Shielded, so the server cancelling this handler at the deadline cannot stop
            # the late call; the task inherits the request's context (its deadline).
            await asyncio.shield(asyncio.ensure_future(forward_late(request.name)))
            late = outcome.result()
            if late is not None:
                raise late
            return product(request.name)

        return forward

    async with (
        _factory() as a_clients,
        _catalog(b) as b_target,
        _catalog(late_forwarding(a_clients, b_target)) as a_target,
        grpc.aio.insecure_channel(a_target) as channel,
    ):
        stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        in_time = await stub.GetProduct(_request("products/in-time"), timeout=PATIENCE)
        with pytest.raises(grpc.aio.AioRpcError) as caller_error:
            await stub.GetProduct(_request("products/too-late"), timeout=0.2)
        late_error = await asyncio.wait_for(outcome, PATIENCE)

    assert in_time.product.name == "products/in-time"
    assert caller_error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert isinstance(late_error, errors.DeadlineExceeded)
    assert late_error.reason == "DEADLINE_SPENT"
    assert late_error.metadata == {"method": "/agora.catalog.v1.CatalogService/GetProduct"}
    assert b_calls == ["products/in-time"]


# Retries and errors ---------------------------------------------------------------------


def _flaky(failures: int, attempts: list[str]) -> GetProduct:
    """Fails with UNAVAILABLE ``failures`` times, then answers."""

    async def get_product(
        request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        attempts.append(request.name)
        if len(attempts) <= failures:
            raise errors.Unavailable(
                "the catalog is warming up", reason="WARMING_UP", metadata={"try": "later"}
            )
        return product(request.name)

    return get_product


async def test_an_idempotent_method_is_retried_on_unavailable_until_it_succeeds() -> None:
    attempts: list[str] = []

    async with _factory() as clients, _catalog(_flaky(2, attempts)) as target:
        response = await _catalog_stub(clients, target).GetProduct(_request())

    assert response.product.name == "products/tea"
    assert attempts == ["products/tea"] * 3


async def test_retries_stop_after_the_policys_attempts_and_the_error_surfaces() -> None:
    attempts: list[str] = []

    async with _factory() as clients, _catalog(_flaky(100, attempts)) as target:
        with pytest.raises(errors.Unavailable) as raised:
            await _catalog_stub(clients, target).GetProduct(_request())

    assert len(attempts) == 4
    assert (raised.value.reason, raised.value.domain, raised.value.metadata) == (
        "WARMING_UP",
        DOMAIN,
        {"try": "later"},
    )


class FlakyHealth(health_pb2_grpc.HealthServicer):
    """A health service whose Check always fails with UNAVAILABLE."""

    def __init__(self) -> None:
        self.attempts = 0

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: Context
    ) -> health_pb2.HealthCheckResponse:
        self.attempts += 1
        raise errors.Unavailable("database is down", reason="DATABASE_DOWN")


@contextlib.asynccontextmanager
async def _bare_server(servicer: FlakyHealth) -> AsyncIterator[str]:
    """A server with the runtime's interceptor but not its own health service."""
    server = grpc.aio.server(interceptors=[RuntimeInterceptor(DOMAIN)])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_a_method_without_an_idempotency_level_is_never_retried() -> None:
    health = FlakyHealth()

    async with _factory() as clients, _bare_server(health) as target:
        stub = clients.stub(health_pb2_grpc.HealthStub, HEALTH, target)
        with pytest.raises(errors.Unavailable) as raised:
            await stub.Check(health_pb2.HealthCheckRequest(service=""))

    assert health.attempts == 1
    assert (raised.value.reason, raised.value.domain) == ("DATABASE_DOWN", DOMAIN)
    assert raised.value.message == "database is down"


@pytest.mark.parametrize(
    ("raised_by_peer", "expected"),
    [
        (ProductNotFound("no tea here", metadata={"product": "products/tea"}), errors.NotFound),
        (errors.Aborted("etag mismatch", reason="ETAG_MISMATCH"), errors.Aborted),
        (errors.FailedPrecondition("no stock", reason="OUT_OF_STOCK"), errors.FailedPrecondition),
        (errors.PermissionDenied("not yours", reason="NOT_OWNER"), errors.PermissionDenied),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, errors.AgoraError) else "",
)
async def test_a_peers_error_comes_back_as_the_matching_class_and_is_not_retried(
    raised_by_peer: errors.AgoraError, expected: type[errors.AgoraError]
) -> None:
    attempts: list[str] = []

    async def failing(
        request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        attempts.append(request.name)
        raise raised_by_peer

    async with _factory() as clients, _catalog(failing) as target:
        with pytest.raises(errors.AgoraError) as raised:
            await _catalog_stub(clients, target).GetProduct(_request())

    error = raised.value
    assert type(error) is expected
    assert (error.message, error.reason, error.domain, error.metadata) == (
        raised_by_peer.message,
        raised_by_peer.reason,
        DOMAIN,
        raised_by_peer.metadata,
    )
    assert isinstance(error.__cause__, grpc.RpcError)
    assert attempts == ["products/tea"]


async def test_an_invalid_argument_comes_back_with_its_field_violations() -> None:
    violations = [errors.FieldViolation("name", "must look like products/{product}")]

    async def invalid(
        _request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        raise errors.InvalidArgument.for_fields(violations)

    async with _factory() as clients, _catalog(invalid) as target:
        with pytest.raises(errors.InvalidArgument) as raised:
            # A name the contract's rules accept, so the handler runs and raises.
            await _catalog_stub(clients, target).GetProduct(_request("products/teapot"))

    assert raised.value.violations == violations
    assert raised.value.domain == DOMAIN


async def test_an_unreachable_peer_is_unavailable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The port was bound and released: nothing listens on it now.
    async with _factory(default_timeout=PATIENCE) as clients:
        with pytest.raises(errors.Unavailable):
            await _catalog_stub(clients, f"127.0.0.1:{port}").GetProduct(_request())


# Channels -------------------------------------------------------------------------------


async def test_the_factory_shares_one_channel_per_target_and_service() -> None:
    first_target, second_target = "127.0.0.1:1", "127.0.0.1:2"  # never dialled here

    async with _factory() as clients:
        channel = clients.channel(CATALOG, first_target)

        assert clients.channel(CATALOG, first_target) is channel
        assert clients.channel(CATALOG, second_target) is not channel
        # Each service gets its own channel: the retry policy is part of the channel.
        assert clients.channel(HEALTH, first_target) is not channel


async def test_stubs_from_the_factory_call_through_the_shared_channel() -> None:
    calls: list[str] = []

    async def answer(
        request: catalog_service_pb2.GetProductRequest, context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        calls.append(request.name)
        return await echo(request, context)

    async with _factory() as clients, _catalog(answer) as target:
        first, second = _catalog_stub(clients, target), _catalog_stub(clients, target)
        await first.GetProduct(_request("products/one"))
        await second.GetProduct(_request("products/two"))
        state = clients.channel(CATALOG, target).get_state()

    assert calls == ["products/one", "products/two"]
    assert state == grpc.ChannelConnectivity.READY


async def test_close_shuts_every_channel_and_later_calls_get_new_ones() -> None:
    async with _catalog(echo) as target:
        clients = ClientFactory()
        old_stub = _catalog_stub(clients, target)
        await old_stub.GetProduct(_request())
        catalog_channel = clients.channel(CATALOG, target)
        health_channel = clients.channel(HEALTH, target)

        await clients.close()

        assert catalog_channel.get_state() == grpc.ChannelConnectivity.SHUTDOWN
        assert health_channel.get_state() == grpc.ChannelConnectivity.SHUTDOWN
        with pytest.raises(grpc.aio.UsageError):
            await old_stub.GetProduct(_request())
        assert clients.channel(CATALOG, target) is not catalog_channel
        again = await _catalog_stub(clients, target).GetProduct(_request("products/again"))
        await clients.close()

    assert again.product.name == "products/again"
