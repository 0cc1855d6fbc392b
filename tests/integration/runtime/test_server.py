"""What ``runtime.server.running`` promises, checked over a real socket with a real client.

Each test serves a small scripted catalog servicer through the runtime (interceptors,
health, reflection, limits, shutdown) on a free loopback port and calls it with the
generated stub or with raw bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from agora.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from runtime import errors
from runtime.config import ServerSettings, load_server_settings
from runtime.server import Service, running
from tests.support.catalog_server import (
    CATALOG,
    DOMAIN,
    Context,
    GetProduct,
    ProductNotFound,
    product,
    scripted_catalog,
)
from tests.support.status import bad_requests, error_info, rich_status

GET_PRODUCT = f"/{CATALOG}/GetProduct"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: Upper bound for any single wait in these tests; reaching it means the behaviour is broken.
PATIENCE = 10.0


def _settings(**environ: str) -> ServerSettings:
    return load_server_settings(
        "catalog",
        environ={
            "AGORA_HOST": "127.0.0.1",
            "AGORA_PORT": "0",
            "AGORA_READINESS_INTERVAL": "0.05",
            "AGORA_GRACE_SECONDS": "5",
            **environ,
        },
    )


@contextlib.asynccontextmanager
async def _serving(
    service: Service, settings: ServerSettings | None = None
) -> AsyncIterator[grpc.aio.Channel]:
    async with (
        running(service, settings or _settings()) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield channel


@dataclass
class Background:
    """A server run in a task, so the test can start its shutdown while calls are in flight."""

    service: Service
    settings: ServerSettings
    port: asyncio.Future[int] = field(default_factory=asyncio.Future)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self) -> None:
        async with running(self.service, self.settings) as port:
            self.port.set_result(port)
            await self.stop.wait()


def _health(channel: grpc.aio.Channel) -> Any:
    """The generated health stub, which has no type hints."""
    return health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]


async def _get(channel: grpc.aio.Channel, name: str) -> catalog_service_pb2.GetProductResponse:
    stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
    return await stub.GetProduct(catalog_service_pb2.GetProductRequest(name=name), timeout=PATIENCE)


async def _handler_started(started: asyncio.Event, call: asyncio.Future[Any]) -> None:
    """Waits until the handler of ``call`` runs; fails at once if the call ends first."""
    waiter = asyncio.ensure_future(started.wait())
    done, _ = await asyncio.wait(
        {waiter, call}, timeout=PATIENCE, return_when=asyncio.FIRST_COMPLETED
    )
    if waiter in done:
        return
    waiter.cancel()
    if call.done():
        pytest.fail(f"the call ended before its handler waited: {call.result()!r}")
    pytest.fail("the handler never ran")


async def _failed_get(channel: grpc.aio.Channel, name: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _get(channel, name)
    return raised.value


# Errors ---------------------------------------------------------------------------------


async def test_a_domain_error_reaches_the_caller_with_its_code_anderror_info() -> None:
    async def missing(
        request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        raise ProductNotFound(
            f"product {request.name!r} does not exist", metadata={"product": request.name}
        )

    async with _serving(scripted_catalog(missing)) as channel:
        error = await _failed_get(channel, "products/earl-grey")

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "product 'products/earl-grey' does not exist"
    info = error_info(error)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "PRODUCT_NOT_FOUND",
        DOMAIN,
        {"product": "products/earl-grey"},
    )
    assert rich_status(error).message == error.details()


async def test_an_invalid_argument_carries_every_field_violation() -> None:
    violations = [
        errors.FieldViolation("name", "must look like products/{product}"),
        errors.FieldViolation("name", "must not be longer than 63 characters"),
    ]

    async def invalid(
        _request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        raise errors.InvalidArgument.for_fields(violations)

    async with _serving(scripted_catalog(invalid)) as channel:
        # A name the contract's rules accept, so the handler runs and raises.
        error = await _failed_get(channel, "products/teapot")

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_ARGUMENT"
    found = bad_requests(error)
    assert len(found) == 1
    assert [(v.field, v.description) for v in found[0].field_violations] == [
        (v.field, v.description) for v in violations
    ]


async def test_an_unexpected_exception_is_internal_and_does_not_leak_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "password=hunter2 at db.internal"

    async def broken(
        _request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        raise RuntimeError(secret)

    with caplog.at_level(logging.ERROR, logger="agora.runtime"):
        async with _serving(scripted_catalog(broken)) as channel:
            error = await _failed_get(channel, "products/tea")

    assert error.code() == grpc.StatusCode.INTERNAL
    assert secret not in (error.details() or "")
    assert "RuntimeError" not in (error.details() or "")
    assert secret not in str(rich_status(error))
    info = error_info(error)
    assert (info.reason, info.domain, dict(info.metadata)) == ("INTERNAL", DOMAIN, {})
    tracebacks = [r.exc_info for r in caplog.records if r.name == "agora.runtime" and r.exc_info]
    assert len(tracebacks) == 1, "the server logs the traceback once"
    assert str(tracebacks[0][1]) == secret


async def test_a_service_interceptor_error_is_mapped_like_a_handler_error() -> None:
    """The runtime interceptor wraps what the service's own interceptors return."""

    class RequireToken(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
        async def intercept_service(
            self,
            continuation: Callable[
                [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
            ],
            handler_call_details: grpc.HandlerCallDetails,
        ) -> grpc.RpcMethodHandler[Any, Any]:
            metadata = dict(handler_call_details.invocation_metadata or ())
            if "authorization" in metadata or handler_call_details.method != GET_PRODUCT:
                return await continuation(handler_call_details)

            async def reject(_request: Any, _context: Context) -> NoReturn:
                raise errors.Unauthenticated("a bearer token is required", reason="NO_TOKEN")

            return grpc.unary_unary_rpc_method_handler(reject)

    async with _serving(scripted_catalog(interceptors=[RequireToken()])) as channel:
        error = await _failed_get(channel, "products/tea")
        stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        allowed = await stub.GetProduct(
            catalog_service_pb2.GetProductRequest(name="products/tea"),
            metadata=(("authorization", "Bearer t"),),
            timeout=PATIENCE,
        )

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (error_info(error).reason, error_info(error).domain) == ("NO_TOKEN", DOMAIN)
    assert allowed.product.name == "products/tea"


async def test_every_call_is_logged_with_its_code_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def missing(
        request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        if request.name == "products/missing":
            raise ProductNotFound("no such product")
        return product(request.name)

    with caplog.at_level(logging.INFO, logger="agora.access"):
        async with _serving(scripted_catalog(missing)) as channel:
            await _get(channel, "products/tea")
            await _failed_get(channel, "products/missing")

    lines = [vars(r) for r in caplog.records if r.name == "agora.access"]
    assert [(line["method"], line["code"], line["reason"]) for line in lines] == [
        (GET_PRODUCT, "OK", ""),
        (GET_PRODUCT, "NOT_FOUND", "PRODUCT_NOT_FOUND"),
    ]
    assert all(line["duration_ms"] >= 0 for line in lines)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x0a\x05ab", id="truncated-field"),
        pytest.param(b"\x0a\x02\xff\xfe", id="invalid-utf8-string"),
        pytest.param(b"\xff\xff\xff\xff", id="invalid-tag"),
    ],
)
async def test_a_body_that_is_not_a_valid_request_is_malformed_request(body: bytes) -> None:
    async with _serving(scripted_catalog()) as channel:
        # No serializers: the bytes go out as they are and come back as bytes.
        raw = channel.unary_unary(GET_PRODUCT, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await raw(body, timeout=PATIENCE)
        still_serving = await _get(channel, "products/tea")

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(raised.value)
    assert (info.reason, info.domain) == ("MALFORMED_REQUEST", DOMAIN)
    assert still_serving.product.name == "products/tea"


async def test_an_oversized_request_is_resource_exhausted_and_the_server_keeps_serving() -> None:
    huge = "products/" + "x" * (4 * 1024 * 1024)

    async with _serving(scripted_catalog()) as channel:
        error = await _failed_get(channel, huge)
        still_serving = await _get(channel, "products/tea")

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert still_serving.product.name == "products/tea"


async def test_the_message_size_limit_is_configurable() -> None:
    settings = _settings(AGORA_MAX_MESSAGE_BYTES="2048")
    async with _serving(scripted_catalog(), settings) as channel:
        error = await _failed_get(channel, "products/" + "x" * 4096)
        # The longest name the contract accepts (an id has at most 63 characters).
        still_serving = await _get(channel, "products/" + "x" * 63)

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert still_serving.product.name == "products/" + "x" * 63


async def test_calls_beyond_the_concurrency_limit_are_shed() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(
        request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        if request.name == "products/slow":
            started.set()
            await release.wait()
        return product(request.name)

    settings = _settings(AGORA_MAX_CONCURRENT_RPCS="1")
    async with _serving(scripted_catalog(slow), settings) as channel:
        first = asyncio.ensure_future(_get(channel, "products/slow"))
        await _handler_started(started, first)
        shed = await _failed_get(channel, "products/second")
        release.set()
        first_response = await asyncio.wait_for(first, PATIENCE)
        after = await _get(channel, "products/third")

    assert shed.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert first_response.product.name == "products/slow"
    assert after.product.name == "products/third"


# Health and reflection ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", CATALOG])
async def test_health_check_reports_serving_for_the_server_and_each_service(name: str) -> None:
    async with _serving(scripted_catalog()) as channel:
        health = _health(channel)
        response = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=PATIENCE)

    assert response.status == SERVING


async def test_health_check_of_an_unknown_service_is_not_found() -> None:
    async with _serving(scripted_catalog()) as channel:
        health = _health(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await health.Check(
                health_pb2.HealthCheckRequest(service="agora.nowhere.v1.NoService"),
                timeout=PATIENCE,
            )

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_check_is_not_serving_while_the_dependencies_are_down() -> None:
    async def down() -> bool:
        return False

    async with _serving(scripted_catalog(readiness=down)) as channel:
        health = _health(channel)
        response = await health.Check(
            health_pb2.HealthCheckRequest(service=CATALOG), timeout=PATIENCE
        )

    assert response.status == NOT_SERVING


@pytest.mark.parametrize("name", ["", CATALOG])
async def test_health_watch_follows_the_readiness_probe(name: str) -> None:
    """Watch streams each change, with the runtime's interceptor installed (grpc#28728)."""
    ready = False

    async def probe() -> bool:
        return ready

    async with _serving(scripted_catalog(readiness=probe)) as channel:
        health = _health(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=name), timeout=PATIENCE)
        seen = [(await asyncio.wait_for(watch.read(), PATIENCE)).status]
        ready = True
        seen.append((await asyncio.wait_for(watch.read(), PATIENCE)).status)
        ready = False
        seen.append((await asyncio.wait_for(watch.read(), PATIENCE)).status)
        watch.cancel()

    assert seen == [NOT_SERVING, SERVING, NOT_SERVING]


async def test_health_watch_survives_a_probe_that_raises() -> None:
    outcome: list[bool | Exception] = [RuntimeError("database is gone")]

    async def probe() -> bool:
        current = outcome[0]
        if isinstance(current, Exception):
            raise current
        return current

    async with _serving(scripted_catalog(readiness=probe)) as channel:
        health = _health(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=CATALOG), timeout=PATIENCE)
        first = (await asyncio.wait_for(watch.read(), PATIENCE)).status
        outcome[0] = True
        second = (await asyncio.wait_for(watch.read(), PATIENCE)).status
        watch.cancel()

    assert (first, second) == (NOT_SERVING, SERVING)


@pytest.mark.parametrize(
    "path",
    [
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ],
)
async def test_reflection_lists_the_services_under_both_protocol_versions(path: str) -> None:
    async with _serving(scripted_catalog()) as channel:
        reflect = channel.stream_stream(
            path,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=CATALOG),
        ]
        call = reflect(iter(requests), timeout=PATIENCE)
        listed, described = [response async for response in call]

    assert isinstance(listed, reflection_pb2.ServerReflectionResponse)
    names = {s.name for s in listed.list_services_response.service}
    assert {
        CATALOG,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    } <= names
    assert isinstance(described, reflection_pb2.ServerReflectionResponse)
    assert described.file_descriptor_response.file_descriptor_proto, described.error_response


# Shutdown -------------------------------------------------------------------------------


async def _refused(channel: grpc.aio.Channel) -> grpc.aio.AioRpcError:
    """Waits (bounded) until the server refuses a new call, and returns that failure."""
    stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
    async with asyncio.timeout(PATIENCE):
        while True:
            try:
                await stub.GetProduct(
                    catalog_service_pb2.GetProductRequest(name="products/late"), timeout=PATIENCE
                )
            except grpc.aio.AioRpcError as error:
                return error
            await asyncio.sleep(0.01)


async def test_shutdown_drains_in_flight_calls_refuses_new_ones_and_runs_cleanups() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    answered: list[str] = []
    cleaned: list[str] = []
    answered_before_cleanup: list[list[str]] = []

    async def slow(
        request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        if request.name == "products/slow":
            started.set()
            await release.wait()
        answered.append(request.name)
        return product(request.name)

    async def close_engine() -> None:
        answered_before_cleanup.append(list(answered))
        cleaned.append("engine")

    async def close_channels() -> None:
        cleaned.append("channels")

    background = Background(
        scripted_catalog(slow, cleanups=[close_engine, close_channels]),
        _settings(AGORA_GRACE_SECONDS="30"),
    )
    server = asyncio.create_task(background.serve())
    port = await asyncio.wait_for(background.port, PATIENCE)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = _health(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=CATALOG), timeout=PATIENCE)
        before = (await asyncio.wait_for(watch.read(), PATIENCE)).status
        in_flight = asyncio.ensure_future(_get(channel, "products/slow"))
        await _handler_started(started, in_flight)

        background.stop.set()
        during = (await asyncio.wait_for(watch.read(), PATIENCE)).status
        watch.cancel()
        refused = await _refused(channel)
        # (call finished, server stopped, cleanups run) while the slow call is still held:
        while_draining = (in_flight.done(), server.done(), list(cleaned))

        release.set()
        drained = await asyncio.wait_for(in_flight, PATIENCE)
        await asyncio.wait_for(server, PATIENCE)

    assert (before, during) == (SERVING, NOT_SERVING)
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert while_draining == (False, False, [])
    assert drained.product.name == "products/slow"
    assert cleaned == ["channels", "engine"]  # reverse order of registration
    assert ["products/slow" in names for names in answered_before_cleanup] == [True]


@dataclass
class Doomed:
    """A call to ``products/doomed`` that waits in its handler until the server drains."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cleanup_started: asyncio.Event = field(default_factory=asyncio.Event)
    #: What ran, in order: ``handler`` when the handler's last line ran, ``cleanup``.
    order: list[str] = field(default_factory=list)

    async def cleanup(self) -> None:
        self.cleanup_started.set()
        self.order.append("cleanup")

    async def fail_during_drain(self, handler: GetProduct, grace: str) -> grpc.aio.AioRpcError:
        """Serves ``handler``, calls it, starts the shutdown, lets the call fail, waits for stop."""
        background = Background(
            scripted_catalog(handler, cleanups=[self.cleanup]), _settings(AGORA_GRACE_SECONDS=grace)
        )
        server = asyncio.create_task(background.serve())
        port = await asyncio.wait_for(background.port, PATIENCE)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            in_flight = asyncio.ensure_future(_get(channel, "products/doomed"))
            await _handler_started(self.started, in_flight)
            background.stop.set()
            await _refused(channel)
            self.release.set()
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await asyncio.wait_for(in_flight, PATIENCE)
            await asyncio.wait_for(server, PATIENCE)
        return raised.value


@pytest.mark.parametrize("how", ["agora-error", "context-abort"])
async def test_a_handler_that_aborts_while_the_server_drains_does_not_hold_up_stop(
    how: str,
) -> None:
    """A call that fails during the drain ends it: stop() does not wait out the grace.

    The grace (60 s) is far longer than the bounded waits (10 s): reaching it fails the test.
    """
    doomed = Doomed()

    async def aborting(
        request: catalog_service_pb2.GetProductRequest, context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        if request.name != "products/doomed":
            return product(request.name)
        doomed.started.set()
        await doomed.release.wait()
        if how == "context-abort":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
        raise errors.Unavailable("going away", reason="SHUTTING_DOWN")

    error = await doomed.fail_during_drain(aborting, grace="60")

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == "going away"
    assert doomed.order == ["cleanup"]


async def test_cleanups_run_after_a_handler_failing_with_an_agora_error_has_finished() -> None:
    """The runtime aborts only once the handler returned, so its ``finally`` runs first."""
    doomed = Doomed()

    async def failing(
        request: catalog_service_pb2.GetProductRequest, _context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        if request.name != "products/doomed":
            return product(request.name)
        doomed.started.set()
        try:
            await doomed.release.wait()
            raise errors.Unavailable("going away", reason="SHUTTING_DOWN")
        finally:
            await asyncio.sleep(0.05)  # a rollback, a lock release...
            doomed.order.append("handler")

    error = await doomed.fail_during_drain(failing, grace="60")

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert doomed.order == ["handler", "cleanup"]


async def test_cleanups_run_after_a_handler_that_called_context_abort_has_finished() -> None:
    """grpc#37239: once ``context.abort`` sent the status, ``server.stop`` may return.

    The runtime counts handlers in flight and lets them finish (within the grace period)
    before the cleanups close what they use, also for a handler that aborts by itself.
    """
    doomed = Doomed()
    handler_done = asyncio.Event()

    async def aborting(
        request: catalog_service_pb2.GetProductRequest, context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        if request.name != "products/doomed":
            return product(request.name)
        doomed.started.set()
        try:
            await doomed.release.wait()
            await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
        finally:
            # Finishes as soon as the cleanups start (the bug), or after 2 s if they wait for it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(doomed.cleanup_started.wait(), 2.0)
            doomed.order.append("handler")
            handler_done.set()

    await doomed.fail_during_drain(aborting, grace="60")
    order_when_stopped = list(doomed.order)
    await asyncio.wait_for(handler_done.wait(), PATIENCE)

    assert order_when_stopped == ["handler", "cleanup"]
