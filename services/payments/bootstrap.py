"""Payments' composition root: database, unit of work, card processor, servicer, relay, cleanups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc

from agora.payments.v1 import payment_service_pb2, payment_service_pb2_grpc
from payments.adapters import orm
from payments.adapters.processor import SimulatedCardProcessor
from payments.adapters.unit_of_work import SqlAlchemyUnitOfWork
from payments.config import PaymentsSettings, load_payments_settings
from payments.domain.errors import DOMAIN
from payments.domain.ports import CardProcessor, UnitOfWork
from payments.entrypoints.servicer import PaymentServicer
from runtime import db
from runtime.broker import Broker, nats_url
from runtime.config import ServerSettings
from runtime.relay import OutboxRelay
from runtime.server import Service

SERVICE_NAME = payment_service_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name
MIGRATIONS = "payments.adapters:migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


async def build(
    settings: ServerSettings,
    *,
    payments_settings: PaymentsSettings | None = None,
    uow: Callable[[], UnitOfWork] | None = None,
    processor: CardProcessor | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Service:
    """Wires payments for ``settings``.

    ``payments_settings`` defaults to the environment's; ``uow`` and ``processor`` replace
    the database and the simulated card processor in tests.
    """
    own = payments_settings or load_payments_settings()
    engine = db.create_engine(settings.database_url)
    if settings.auto_migrate:
        await db.migrate(engine, MIGRATIONS)
    broker = Broker(nats_url(), "payments")
    relay = OutboxRelay(engine, orm.outbox, broker)
    servicer = PaymentServicer(
        uow or (lambda: SqlAlchemyUnitOfWork(engine)),
        processor or SimulatedCardProcessor(own.processor_timeout),
        clock,
    )

    def register(server: grpc.aio.Server) -> None:
        payment_service_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, server)

    async def ready() -> bool:
        return await db.ping(engine)

    async def publish_events() -> None:
        await relay.run()

    return Service(
        name="payments",
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=register,
        readiness=ready,
        cleanups=[engine.dispose, broker.close],
        background=[publish_events],
    )
