"""Serving a service: the aio server, its interceptors, health, reflection and shutdown.

A service's ``__main__`` is one line, ``main("catalog", build, MIGRATIONS)``: it serves,
or with the argument ``migrate`` only applies the database migrations. :func:`run`
loads the settings, configures JSON logs and calls ``build`` inside the running event
loop (channels and engines must be created there, grpc#32480), then serves until
SIGTERM or SIGINT. It listens in plaintext, or with ``AGORA_TLS=mtls`` with the service's
certificate, admitting only clients whose certificate the CA signed; the service's own
outbound clients then present that certificate too (:mod:`runtime.tls`). Shutdown marks
every health entry NOT_SERVING, stops accepting calls, gives in-flight calls
``grace_seconds`` to finish, runs the service's cleanups and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from runtime.access import access_control
from runtime.auth import AuthSettings, GrpcJwksFetcher, JwksFetcher, load_auth_settings
from runtime.clients import ClientFactory
from runtime.config import ConfigError, ServerSettings, load_server_settings, peer_address
from runtime.db import create_engine, migrate
from runtime.health import HealthServicer, Probe, Readiness
from runtime.interceptors import RuntimeInterceptor
from runtime.logs import configure_logging
from runtime.policy import method_rules, services_named
from runtime.reflection import enable_reflection
from runtime.tls import channel_credentials, read_material, server_credentials, use_for_clients
from runtime.validation import compile_rules

log = logging.getLogger("agora.server")

Cleanup = Callable[[], Awaitable[None]]


@dataclass
class Service:
    """What a service's composition root hands the runtime."""

    #: Short name, such as ``catalog``.
    name: str
    #: The ``ErrorInfo`` domain of the service's errors, such as ``catalog.agora``.
    domain: str
    #: Full proto names of the services served, such as ``agora.catalog.v1.CatalogService``.
    service_names: Sequence[str]
    #: Adds the servicers to the server.
    register: Callable[[grpc.aio.Server], None]
    #: True while the service's dependencies answer; drives health.
    readiness: Probe
    #: Run in reverse order after the server stopped (close engines, channels).
    cleanups: list[Cleanup] = field(default_factory=list)
    #: Extra server interceptors, run inside the runtime's own.
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = ()
    #: Long-running jobs (sweepers, relays) started with the server and cancelled when it
    #: stops, before the cleanups. One that fails is logged and restarted after a pause.
    background: Sequence[Callable[[], Awaitable[None]]] = ()
    #: Where the keys that verify access tokens come from; None: identity's GetJwks at
    #: its address (identity itself reads its own key store instead).
    jwks: JwksFetcher | None = None
    #: The wall clock tokens are checked against, in seconds since the epoch; None: the
    #: system's (identity's tests run it on a clock of their own).
    token_clock: Callable[[], float] | None = None


Build = Callable[[ServerSettings], Awaitable[Service]]


@contextlib.asynccontextmanager
async def running(
    service: Service, settings: ServerSettings, auth: AuthSettings | None = None
) -> AsyncIterator[int]:
    """Serves ``service`` while the block runs and yields the bound port; drains on exit.

    Raises:
        runtime.policy.PolicyError: before anything listens, if an RPC of the service's
            contracts declares no access rule (access is denied by default).
        runtime.validation.ValidationRulesError: before anything listens, if the
            validation rules of a request of the service's contracts do not compile.
        runtime.config.ConfigError: before anything listens, if the TLS files of
            ``settings.tls`` are unusable.
    """
    services = services_named(service.service_names)
    rules = method_rules(services)
    compile_rules(services)
    tls = settings.tls
    credentials = None if tls is None else server_credentials(tls)
    # The channel to identity for its keys, closed after the cleanups.
    identity_clients = ClientFactory(credentials=channel_credentials(tls))
    access = access_control(
        rules,
        service.jwks or GrpcJwksFetcher(identity_clients, peer_address("identity")),
        auth or load_auth_settings(),
        rate_per_second=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
        trust_loopback=settings.trust_loopback,
        certificates=tls is not None,
        clock=service.token_clock or time.time,
    )
    runtime_interceptor = RuntimeInterceptor(service.domain, rules, access=access)
    server = grpc.aio.server(
        interceptors=[runtime_interceptor, *service.interceptors],
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    service.register(server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)  # type: ignore[no-untyped-call]
    enable_reflection(server, [*service.service_names, health.SERVICE_NAME])

    readiness = Readiness(
        health_servicer, service.service_names, service.readiness, settings.readiness_interval
    )
    await readiness.check_once()
    address = f"{settings.host}:{settings.port}"
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {settings.host}:{settings.port}")
    await server.start()
    probing = asyncio.create_task(readiness.run(), name="readiness")
    jobs = [
        asyncio.create_task(_keep_running(job), name=getattr(job, "__name__", "background"))
        for job in service.background
    ]
    log.info(
        "serving",
        extra={
            "address": f"{settings.host}:{port}",
            "port": port,
            "ready": readiness.ready,
            "tls": "off" if tls is None else "mtls",
        },
    )
    try:
        yield port
    finally:
        log.info("shutting down", extra={"grace_seconds": settings.grace_seconds})
        probing.cancel()
        await _stop_jobs(jobs)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(settings.grace_seconds)
        # stop() may return while handlers of aborted calls still run (grpc#37239);
        # they get a moment to finish before what they use is closed.
        if not await runtime_interceptor.wait_idle(max(settings.grace_seconds, 1.0)):
            log.warning(
                "handlers still running at cleanup",
                extra={"in_flight": runtime_interceptor.in_flight},
            )
        for cleanup in reversed(service.cleanups):
            try:
                await cleanup()
            except Exception:
                log.exception("cleanup failed")
        await identity_clients.close()
        log.info("stopped")


#: Pause before a failed background job runs again.
RESTART_DELAY = 1.0
#: How long shutdown waits for a cancelled background job before cancelling it again.
JOB_STOP_WAIT = 1.0


async def _stop_jobs(jobs: Sequence[asyncio.Task[None]], rounds: int = 10) -> None:
    """Cancels the jobs and waits until they are done, cancelling again those that are not.

    A cancellation can be swallowed by a library (a client connecting to a server that is
    going away, say), and the job's retry loop then carries on; cancelling again ends it.
    """
    pending = {job for job in jobs if not job.done()}
    for _ in range(rounds):
        if not pending:
            return
        for job in pending:
            job.cancel()
        _, pending = await asyncio.wait(pending, timeout=JOB_STOP_WAIT)
    if pending:
        log.warning(
            "background jobs did not stop", extra={"jobs": [job.get_name() for job in pending]}
        )


async def _keep_running(job: Callable[[], Awaitable[None]]) -> None:
    name = getattr(job, "__name__", repr(job))
    while True:
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job failed; restarting it", extra={"job": name})
        await asyncio.sleep(RESTART_DELAY)


async def serve(build: Build, settings: ServerSettings) -> None:
    """Builds the service in this loop and serves it until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        log.info("signal received", extra={"signal": signum.name})
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    if settings.tls is not None:
        read_material(settings.tls)  # unusable files stop the start before anything is built
    # The service's own clients (made in build) present its certificate in mTLS mode.
    use_for_clients(settings.tls)
    service = await build(settings)
    async with running(service, settings):
        await stop.wait()


def main(name: str, build: Build, migrations: str, argv: Sequence[str] | None = None) -> None:
    """The whole ``__main__`` of a service: ``python -m <name> [migrate]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["migrate"]:
        _exit_on_config_error(name, lambda: asyncio.run(migrate_database(name, migrations)))
    elif args:
        raise SystemExit(f"usage: python -m {name} [migrate]")
    else:
        run(name, build)


def run(name: str, build: Build) -> None:
    """Settings, logs, serve until a signal; a bad setting exits 2, a port in use 1."""
    settings = _exit_on_config_error(name, lambda: load_server_settings(name))
    configure_logging(name, settings.log_level)
    try:
        # build() may read settings of its own and raise ConfigError too.
        _exit_on_config_error(name, lambda: asyncio.run(serve(build, settings)))
    except OSError as error:
        log.error("cannot start: %s", error)
        raise SystemExit(1) from None


async def migrate_database(name: str, migrations: str) -> None:
    """Applies the pending migrations of service ``name`` to its configured database."""
    settings = load_server_settings(name)
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine, migrations)
    finally:
        await engine.dispose()


T = TypeVar("T")


def _exit_on_config_error(name: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except ConfigError as error:
        print(f"{name}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
