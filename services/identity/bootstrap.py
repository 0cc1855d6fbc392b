"""Identity's composition root: database, signing keys, hashing, servicer, event relay, cleanups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc

from agora.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from identity.adapters import orm
from identity.adapters.passwords import Argon2PasswordHasher
from identity.adapters.tokens import JwtTokenSigner
from identity.adapters.unit_of_work import SqlAlchemyUnitOfWork
from identity.config import IdentitySettings, load_identity_settings
from identity.domain import usecases
from identity.domain.errors import DOMAIN
from identity.domain.ports import PasswordHasher, TokenSigner, UnitOfWork
from identity.entrypoints import convert
from identity.entrypoints.servicer import IdentityServicer
from runtime import db
from runtime.auth import json_web_key
from runtime.broker import Broker, nats_url
from runtime.config import ServerSettings
from runtime.relay import OutboxRelay
from runtime.server import Cleanup, Service

SERVICE_NAME = identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
MIGRATIONS = "identity.adapters:migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


async def build(
    settings: ServerSettings,
    *,
    identity: IdentitySettings | None = None,
    uow: Callable[[], UnitOfWork] | None = None,
    hasher: PasswordHasher | None = None,
    signer: TokenSigner | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Service:
    """Wires identity for ``settings``; the keyword arguments replace parts in tests.

    On the first start (no signing key stored yet) it makes the first signing key.
    """
    identity = identity or load_identity_settings()
    engine = db.create_engine(settings.database_url)
    cleanups: list[Cleanup] = [engine.dispose]
    if settings.auto_migrate:
        await db.migrate(engine, MIGRATIONS)
    make_uow = uow or (lambda: SqlAlchemyUnitOfWork(engine))
    signer = signer or JwtTokenSigner()
    if hasher is None:
        argon2_hasher = Argon2PasswordHasher(identity.argon2)
        cleanups.append(argon2_hasher.close)
        hasher = argon2_hasher
    await usecases.ensure_signing_key(make_uow(), signer, clock())
    broker = Broker(nats_url(), "identity")
    cleanups.append(broker.close)
    relay = OutboxRelay(engine, orm.outbox, broker)
    servicer = IdentityServicer(make_uow, hasher, signer, identity.lifetimes, clock)

    def register(server: grpc.aio.Server) -> None:
        identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, server)

    async def ready() -> bool:
        return await db.ping(engine)

    async def publish_events() -> None:
        await relay.run()

    async def own_keys() -> list[dict[str, str]]:
        # Identity verifies access tokens against its own key store, not over the network.
        response = convert.jwks_response(
            await usecases.get_jwks(make_uow(), identity.lifetimes, clock())
        )
        return [json_web_key(key) for key in response.keys]

    return Service(
        name="identity",
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=register,
        readiness=ready,
        cleanups=cleanups,
        background=[publish_events],
        jwks=own_keys,
        token_clock=lambda: clock().timestamp(),
    )
