"""Orders' composition root: database, peers' clients, servicer and the checkout runner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc

from agora.orders.v1 import order_service_pb2, order_service_pb2_grpc
from orders.adapters import orm
from orders.adapters.faults import fault_hook
from orders.adapters.peers import GrpcInventory, GrpcPayments, GrpcProductCatalog
from orders.adapters.unit_of_work import SqlAlchemyUnitOfWork
from orders.config import OrdersSettings, load_orders_settings
from orders.domain.checkout import Checkout, RetryPolicy
from orders.domain.errors import DOMAIN
from orders.domain.ports import UnitOfWork
from orders.entrypoints.runner import CheckoutRunner
from orders.entrypoints.servicer import OrderServicer
from runtime import db
from runtime.broker import Broker, nats_url
from runtime.clients import ClientFactory
from runtime.config import ServerSettings
from runtime.relay import OutboxRelay
from runtime.server import Service

SERVICE_NAME = order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
MIGRATIONS = "orders.adapters:migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


async def build(
    settings: ServerSettings,
    *,
    options: OrdersSettings | None = None,
    uow: Callable[[], UnitOfWork] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Service:
    """Wires orders for ``settings``; ``options`` replaces the environment's orders settings.

    Catalog, inventory and payments are reached through the SDK's clients on one shared
    client factory; ``uow`` replaces the database (tests).
    """
    options = options or load_orders_settings(port=settings.port)
    engine = db.create_engine(settings.database_url)
    if settings.auto_migrate:
        await db.migrate(engine, MIGRATIONS)
    units = uow or (lambda: SqlAlchemyUnitOfWork(engine))
    broker = Broker(nats_url(), "orders")
    relay = OutboxRelay(engine, orm.outbox, broker)
    clients = ClientFactory()
    checkout = Checkout(
        units,
        GrpcInventory(clients, options.inventory_address, options.step_timeout),
        GrpcPayments(clients, options.payments_address, options.step_timeout),
        clock,
        retry=RetryPolicy(maximum=options.retry_max),
        hook=fault_hook(
            options.fault_pause_at,
            options.fault_kill_rate,
            options.fault_log,
            options.fault_kill_first,
        ),
    )
    runner = CheckoutRunner(
        checkout,
        units,
        clock,
        owner=options.instance_id,
        lease=options.lease,
        poll_interval=options.poll_interval,
        concurrency=options.concurrency,
    )
    servicer = OrderServicer(
        units,
        GrpcProductCatalog(clients, options.catalog_address),
        clock,
        options.reservation_ttl,
        runner.wake,
    )

    def register(server: grpc.aio.Server) -> None:
        order_service_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)

    async def ready() -> bool:
        # Peers are not readiness dependencies: the checkout waits for them by itself.
        return await db.ping(engine)

    async def run_checkouts() -> None:
        await runner.run()

    async def publish_events() -> None:
        await relay.run()

    return Service(
        name="orders",
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=register,
        readiness=ready,
        cleanups=[engine.dispose, clients.close, broker.close],
        background=[run_checkouts, publish_events],
    )
