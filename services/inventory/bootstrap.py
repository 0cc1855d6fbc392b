"""Inventory's composition root: database, unit of work, catalog client, servicer, sweeper."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc

from agora.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from inventory.adapters import orm
from inventory.adapters.catalog import GrpcProductCatalog
from inventory.adapters.unit_of_work import SqlAlchemyUnitOfWork
from inventory.config import InventorySettings, load_inventory_settings
from inventory.domain.errors import DOMAIN
from inventory.domain.ports import ProductCatalog, UnitOfWork
from inventory.entrypoints import events
from inventory.entrypoints.servicer import InventoryServicer
from inventory.entrypoints.sweeper import ReservationSweeper
from runtime import db
from runtime.broker import Broker, nats_url
from runtime.clients import ClientFactory
from runtime.config import ServerSettings
from runtime.consumer import EventConsumer
from runtime.relay import OutboxRelay
from runtime.server import Cleanup, Service

SERVICE_NAME = inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name
MIGRATIONS = "inventory.adapters:migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


async def build(
    settings: ServerSettings,
    *,
    options: InventorySettings | None = None,
    uow: Callable[[], UnitOfWork] | None = None,
    catalog: ProductCatalog | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Service:
    """Wires inventory for ``settings``.

    ``options`` replaces the environment's inventory settings, ``uow`` the database and
    ``catalog`` the catalog service (unit tests); ``clock`` lets tests move time.
    """
    options = options or load_inventory_settings()
    engine = db.create_engine(settings.database_url)
    if settings.auto_migrate:
        await db.migrate(engine, MIGRATIONS)
    broker = Broker(nats_url(), "inventory")
    relay = OutboxRelay(engine, orm.outbox, broker)
    cleanups: list[Cleanup] = [engine.dispose, broker.close]
    if catalog is None:
        clients = ClientFactory()
        cleanups.append(clients.close)
        catalog = GrpcProductCatalog(clients, options.catalog_address)
    units = uow or (lambda: SqlAlchemyUnitOfWork(engine))
    servicer = InventoryServicer(units, catalog, clock)
    sweeper = ReservationSweeper(units, clock, options.sweep_interval, options.sweep_batch)
    cancelled_orders = EventConsumer(broker, events.subscription(clock), units)

    def register(server: grpc.aio.Server) -> None:
        inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server(servicer, server)

    async def ready() -> bool:
        # The catalog is not a readiness dependency: without it only SetStock fails.
        return await db.ping(engine)

    async def sweep_reservations() -> None:
        await sweeper.run()

    async def publish_events() -> None:
        await relay.run()

    async def consume_events() -> None:
        await cancelled_orders.run()

    return Service(
        name="inventory",
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=register,
        readiness=ready,
        cleanups=cleanups,
        background=[sweep_reservations, publish_events, consume_events],
    )
