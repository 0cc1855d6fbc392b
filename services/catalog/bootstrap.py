"""The catalog's composition root: database, unit of work, servicer, event relay, cleanups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc

from agora.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from catalog.adapters import orm
from catalog.adapters.unit_of_work import SqlAlchemyUnitOfWork
from catalog.domain.errors import DOMAIN
from catalog.domain.ports import UnitOfWork
from catalog.entrypoints.servicer import CatalogServicer
from runtime import db
from runtime.broker import Broker, nats_url
from runtime.config import ServerSettings
from runtime.relay import OutboxRelay
from runtime.server import Service

SERVICE_NAME = catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
MIGRATIONS = "catalog.adapters:migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


async def build(
    settings: ServerSettings,
    *,
    uow: Callable[[], UnitOfWork] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Service:
    """Wires the catalog for ``settings``; ``uow`` replaces the database in unit tests."""
    engine = db.create_engine(settings.database_url)
    if settings.auto_migrate:
        await db.migrate(engine, MIGRATIONS)
    servicer = CatalogServicer(uow or (lambda: SqlAlchemyUnitOfWork(engine)), clock)
    broker = Broker(nats_url(), "catalog")
    relay = OutboxRelay(engine, orm.outbox, broker)

    def register(server: grpc.aio.Server) -> None:
        catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server)

    async def ready() -> bool:
        return await db.ping(engine)

    async def publish_events() -> None:
        await relay.run()

    return Service(
        name="catalog",
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=register,
        readiness=ready,
        cleanups=[engine.dispose, broker.close],
        background=[publish_events],
    )
