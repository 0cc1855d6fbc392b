"""Notifications' composition root: database, consumers, sender, servicer, relay, cleanups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc

from agora.notifications.v1 import notification_service_pb2, notification_service_pb2_grpc
from notifications.adapters import orm
from notifications.adapters.sinks import MaildirSink, SmtpSink
from notifications.adapters.unit_of_work import SqlAlchemyUnitOfWork
from notifications.config import NotificationsSettings, load_notifications_settings
from notifications.domain.errors import DOMAIN
from notifications.domain.model import RetryPolicy
from notifications.domain.ports import MailSink, UnitOfWork
from notifications.entrypoints.handlers import EventHandlers
from notifications.entrypoints.sender import NotificationSender
from notifications.entrypoints.servicer import NotificationServicer
from runtime import db
from runtime.broker import Broker
from runtime.config import ServerSettings
from runtime.consumer import EventConsumer
from runtime.relay import OutboxRelay
from runtime.server import Service

SERVICE_NAME = notification_service_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name
MIGRATIONS = "notifications.adapters:migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_sink(options: NotificationsSettings) -> MailSink:
    if options.sink == "smtp":
        return SmtpSink(options.smtp_host, options.smtp_port, options.sender, options.smtp_timeout)
    return MaildirSink(options.maildir, options.sender)


async def build(
    settings: ServerSettings,
    *,
    options: NotificationsSettings | None = None,
    sink: MailSink | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Service:
    """Wires notifications for ``settings``; ``options`` replaces the environment's own
    settings and ``sink`` the configured mail sink (tests)."""
    options = options or load_notifications_settings(data_dir=settings.data_dir)
    engine = db.create_engine(settings.database_url)
    if settings.auto_migrate:
        await db.migrate(engine, MIGRATIONS)
    policy = RetryPolicy(
        max_attempts=options.max_attempts,
        initial=timedelta(seconds=options.retry_initial),
        maximum=timedelta(seconds=options.retry_max),
        # Longer than the slowest attempt (an SMTP delivery is bounded by its timeouts).
        claim=timedelta(seconds=max(60.0, options.smtp_timeout * 4)),
    )
    broker = Broker(options.nats_url, "notifications")
    relay = OutboxRelay(engine, orm.outbox, broker)

    def units() -> UnitOfWork:
        return SqlAlchemyUnitOfWork(engine, on_commit=relay.wake)

    sender = NotificationSender(
        units, sink or build_sink(options), clock, policy, poll_interval=options.poll_interval
    )

    def handler_units() -> UnitOfWork:
        return SqlAlchemyUnitOfWork(engine, on_commit=sender.wake)

    consumers = [
        EventConsumer(
            broker,
            subscription,
            uow=handler_units,
            max_deliver=options.max_deliver,
            backoff=options.redelivery_backoff,
        )
        for subscription in EventHandlers(clock).subscriptions()
    ]
    servicer = NotificationServicer(units)

    def register(server: grpc.aio.Server) -> None:
        notification_service_pb2_grpc.add_NotificationServiceServicer_to_server(servicer, server)

    async def ready() -> bool:
        # The broker is not a readiness dependency: the consumers wait for it by themselves.
        return await db.ping(engine)

    return Service(
        name="notifications",
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=register,
        readiness=ready,
        cleanups=[engine.dispose, broker.close],
        background=[*(c.run for c in consumers), sender.run, relay.run],
    )
