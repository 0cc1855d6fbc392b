"""Real access tokens from a real identity, verified with its keys fetched over gRPC.

Identity is served in-process on a free loopback port with its production wiring, on a
fresh SQLite file; users sign up and log in through the SDK. The verifier fetches the keys
with :class:`runtime.auth.GrpcJwksFetcher`, counted by a thin wrapper.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import agora_sdk
from agora.identity.v1 import identity_service_pb2 as pb
from identity.adapters.passwords import Argon2Cost, Argon2PasswordHasher
from identity.adapters.tokens import JwtTokenSigner
from identity.adapters.unit_of_work import SqlAlchemyUnitOfWork
from identity.bootstrap import build
from identity.config import IdentitySettings
from identity.domain import usecases
from runtime import context as request_context
from runtime import db
from runtime.auth import (
    AccessTokenInvalid,
    Caller,
    GrpcJwksFetcher,
    JwksCache,
    JwksUnavailable,
    TokenVerifier,
)
from runtime.clients import ClientFactory
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.processes import free_port

PASSWORD = "correct horse battery"
#: Cheap argon2id: the same algorithm and format, a fraction of the time.
CHEAP = Argon2Cost(time_cost=1, memory_kib=8 * 1024, parallelism=1)
MIN_REFRESH = 5.0


@dataclass
class Identity:
    target: str
    database_url: str


class Clock:
    """Monotonic seconds, moved by the tests."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingFetcher:
    """The production fetcher, with its calls counted."""

    def __init__(self, fetch: GrpcJwksFetcher) -> None:
        self._fetch = fetch
        self.calls = 0

    async def __call__(self) -> Sequence[Mapping[str, str]]:
        self.calls += 1
        return await self._fetch()


@dataclass
class Verifier:
    verifier: TokenVerifier
    fetcher: CountingFetcher
    clock: Clock


@pytest.fixture
async def identity(tmp_path: Path) -> AsyncIterator[Identity]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'identity'}.db"
    settings = load_server_settings(
        "identity",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    hasher = Argon2PasswordHasher(CHEAP, workers=2)
    try:
        service = await build(settings, identity=IdentitySettings(), hasher=hasher)
        async with running(service, settings) as port:
            yield Identity(f"127.0.0.1:{port}", database_url)
    finally:
        await hasher.close()


@pytest.fixture
async def factory() -> AsyncIterator[ClientFactory]:
    clients = ClientFactory()
    try:
        yield clients
    finally:
        await clients.close()


def verifier_for(factory: ClientFactory, target: str) -> Verifier:
    fetcher = CountingFetcher(GrpcJwksFetcher(factory, target))
    clock = Clock()
    cache = JwksCache(fetcher, min_refresh_interval=MIN_REFRESH, clock=clock)
    return Verifier(TokenVerifier(cache), fetcher, clock)


async def sign_up_and_log_in(
    client: agora_sdk.IdentityClient, email: str = "ada@example.com"
) -> tuple[str, str]:
    """The new user's name and an access token for it."""
    user = await client.sign_up(
        pb.SignUpRequest(email=email, password=PASSWORD, display_name="Ada")
    )
    return user.name, await log_in(client, email)


async def log_in(client: agora_sdk.IdentityClient, email: str = "ada@example.com") -> str:
    return (await client.login(pb.LoginRequest(email=email, password=PASSWORD))).access_token


async def test_a_real_access_token_verifies_against_the_keys_identity_publishes(
    identity: Identity, factory: ClientFactory
) -> None:
    checker = verifier_for(factory, identity.target)
    async with agora_sdk.IdentityClient(identity.target, factory=factory) as client:
        name, token = await sign_up_and_log_in(client)

    caller = await checker.verifier.caller([("authorization", f"Bearer {token}")])

    assert caller == Caller.user(name, ["customer"])
    assert name.startswith("users/")
    assert checker.fetcher.calls == 1


async def test_the_fetched_keys_are_the_published_jwk_set(
    identity: Identity, factory: ClientFactory
) -> None:
    async with agora_sdk.IdentityClient(identity.target, factory=factory) as client:
        published = await client.get_jwks(pb.GetJwksRequest())

    fetched = await GrpcJwksFetcher(factory, identity.target)()

    assert fetched == json.loads(published.jwks_json)["keys"]
    assert [jwk["alg"] for jwk in fetched] == ["ES256"]


async def test_a_token_of_a_rotated_key_verifies_after_one_refresh(
    identity: Identity, factory: ClientFactory
) -> None:
    checker = verifier_for(factory, identity.target)
    async with agora_sdk.IdentityClient(identity.target, factory=factory) as client:
        name, old_token = await sign_up_and_log_in(client)
        await checker.verifier.verify(old_token)

        engine = db.create_engine(identity.database_url)
        try:
            new_key = await usecases.rotate_signing_keys(
                SqlAlchemyUnitOfWork(engine), JwtTokenSigner(), datetime.now(UTC)
            )
        finally:
            await engine.dispose()
        new_token = await log_in(client)
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
    checker.clock.now += MIN_REFRESH

    assert (await checker.verifier.verify(new_token)).subject == name
    assert checker.fetcher.calls == 2
    # The retired key is still published while its tokens may be valid.
    assert (await checker.verifier.verify(old_token)).subject == name
    assert checker.fetcher.calls == 2


async def test_a_kid_identity_never_published_is_refused(
    identity: Identity, factory: ClientFactory
) -> None:
    checker = verifier_for(factory, identity.target)
    async with agora_sdk.IdentityClient(identity.target, factory=factory) as client:
        _, token = await sign_up_and_log_in(client)
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}),
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": "made-up"},
    )

    with pytest.raises(AccessTokenInvalid, match="does not publish"):
        await checker.verifier.verify(forged)
    assert checker.fetcher.calls == 1


async def test_the_keys_are_fetched_even_when_the_inbound_call_has_no_time_left(
    identity: Identity, factory: ClientFactory
) -> None:
    # One impatient call must not spoil the key set for every call that follows it.
    checker = verifier_for(factory, identity.target)
    async with agora_sdk.IdentityClient(identity.target, factory=factory) as client:
        name, token = await sign_up_and_log_in(client)

    async def serve_a_call_out_of_time() -> Caller:
        request_context.set_inbound_call("/agora.orders.v1.OrderService/GetOrder", 0.0)
        return await checker.verifier.verify(token)

    caller = await asyncio.create_task(serve_a_call_out_of_time())

    assert caller.subject == name


async def test_identity_unreachable_with_an_unknown_kid_is_unavailable(
    factory: ClientFactory, identity: Identity
) -> None:
    async with agora_sdk.IdentityClient(identity.target, factory=factory) as client:
        _, token = await sign_up_and_log_in(client)
    checker = verifier_for(factory, f"127.0.0.1:{free_port()}")  # nothing listens there

    with pytest.raises(JwksUnavailable) as raised:
        await checker.verifier.verify(token)

    assert raised.value.retry_after == pytest.approx(MIN_REFRESH)
    assert checker.fetcher.calls == 1
