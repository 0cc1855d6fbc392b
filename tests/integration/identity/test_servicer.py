"""IdentityService over a real socket: production interceptors, generated client, both databases."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agora.identity.v1 import identity_service_pb2 as pb
from agora.identity.v1 import identity_service_pb2_grpc
from identity.adapters.orm import users
from identity.adapters.passwords import Argon2Cost, Argon2PasswordHasher
from identity.adapters.tokens import JwtTokenSigner
from identity.adapters.unit_of_work import SqlAlchemyUnitOfWork
from identity.bootstrap import build
from identity.config import IdentitySettings
from identity.domain import usecases
from runtime import db
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.status import error_info, field_violations

if TYPE_CHECKING:
    from agora.identity.v1.identity_service_pb2_grpc import IdentityServiceAsyncStub

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
#: Cheap argon2id: the same algorithm and format, a fraction of the time.
CHEAP = Argon2Cost(time_cost=1, memory_kib=8 * 1024, parallelism=1)


class Clock:
    """The service's clock, moved by the tests."""

    def __init__(self) -> None:
        self.now = NOON

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Identity:
    stub: IdentityServiceAsyncStub
    engine: AsyncEngine
    clock: Clock


@contextlib.asynccontextmanager
async def serve_identity(
    database_url: str, tmp_path: Path, *, trust_loopback: bool = True
) -> AsyncIterator[Identity]:
    """Identity served in-process on a free port, with its production wiring.

    With ``trust_loopback`` off, a call without a token is anonymous, as one from another
    machine would be, rather than the local operator.
    """
    settings = load_server_settings(
        "identity",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "AGORA_GRACE_SECONDS": "1",
            "AGORA_AUTH_TRUST_LOOPBACK": str(trust_loopback).lower(),
        },
    )
    clock = Clock()
    hasher = Argon2PasswordHasher(CHEAP, workers=2)
    service = await build(settings, identity=IdentitySettings(), hasher=hasher, clock=clock)
    engine = db.create_engine(database_url)
    try:
        async with (
            running(service, settings) as port,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            yield Identity(identity_service_pb2_grpc.IdentityServiceStub(channel), engine, clock)
    finally:
        await engine.dispose()
        await hasher.close()


@pytest.fixture
async def identity(database_url: str, tmp_path: Path) -> AsyncIterator[Identity]:
    """Identity as ``make run`` has it: loopback calls without a token are the local operator."""
    async with serve_identity(database_url, tmp_path) as served:
        yield served


@pytest.fixture
async def untrusting_identity(database_url: str, tmp_path: Path) -> AsyncIterator[Identity]:
    """Identity as callers from another machine see it: every caller needs a token."""
    async with serve_identity(database_url, tmp_path, trust_loopback=False) as served:
        yield served


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


async def sign_up(
    stub: IdentityServiceAsyncStub, email: str = "ada@example.com"
) -> pb.SignUpResponse:
    return await stub.SignUp(
        pb.SignUpRequest(email=email, password=PASSWORD, display_name="Ada Lovelace")
    )


async def log_in(
    stub: IdentityServiceAsyncStub, email: str = "ada@example.com"
) -> pb.LoginResponse:
    return await stub.Login(pb.LoginRequest(email=email, password=PASSWORD))


async def test_sign_up_log_in_and_read_yourself(identity: Identity) -> None:
    stub = identity.stub
    created = await stub.SignUp(
        pb.SignUpRequest(
            email="  Ada@Example.com ", password=PASSWORD, display_name=" Ada Lovelace "
        )
    )
    user = created.user
    assert user.name.startswith("users/u")
    assert (user.email, user.display_name, list(user.roles)) == (
        "Ada@Example.com",
        "Ada Lovelace",
        ["customer"],
    )
    assert user.create_time.ToDatetime(UTC) == NOON

    tokens = await log_in(stub, "ADA@example.com")
    assert tokens.user == user.name
    assert tokens.access_token_expire_time.ToDatetime(UTC) == NOON + timedelta(minutes=15)
    assert tokens.refresh_token_expire_time.ToDatetime(UTC) == NOON + timedelta(days=30)
    assert 0 < len(tokens.refresh_token) <= 512

    got = await stub.GetUser(
        pb.GetUserRequest(name=user.name), metadata=bearer(tokens.access_token)
    )
    assert got.user == user


async def test_the_stored_password_is_an_argon2id_hash(identity: Identity) -> None:
    await sign_up(identity.stub)
    async with identity.engine.connect() as connection:
        stored = await connection.scalar(sa.select(users.c.password_hash))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_access_tokens_are_es256_jwts_with_the_contracts_claims(identity: Identity) -> None:
    user = (await sign_up(identity.stub)).user
    tokens = await log_in(identity.stub)
    jwks = await identity.stub.GetJwks(pb.GetJwksRequest())
    header = jwt.get_unverified_header(tokens.access_token)
    assert header["alg"] == "ES256"
    assert header["typ"] == "JWT"
    assert header["kid"] == jwks.keys[0].kid
    key = jwt.PyJWKSet.from_json(jwks.jwks_json)[header["kid"]]
    claims = jwt.decode(
        tokens.access_token,
        key,
        algorithms=["ES256"],
        issuer="identity.agora",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": "identity.agora",
        "sub": user.name,
        "roles": ["customer"],
        "iat": int(NOON.timestamp()),
        "exp": int(tokens.access_token_expire_time.ToDatetime(UTC).timestamp()),
    }


async def test_jwks_lists_ec_p256_keys_as_messages_and_as_json(identity: Identity) -> None:
    jwks = await identity.stub.GetJwks(pb.GetJwksRequest())
    (key,) = jwks.keys
    assert (key.kty, key.crv, key.alg, key.use) == ("EC", "P-256", "ES256", "sig")
    assert "=" not in key.x + key.y
    assert json.loads(jwks.jwks_json) == {
        "keys": [
            {
                "kid": key.kid,
                "kty": "EC",
                "crv": "P-256",
                "x": key.x,
                "y": key.y,
                "alg": "ES256",
                "use": "sig",
            }
        ]
    }


async def test_tokens_of_a_rotated_key_still_verify_through_get_jwks(identity: Identity) -> None:
    user = (await sign_up(identity.stub)).user
    old = await log_in(identity.stub)
    old_kid = jwt.get_unverified_header(old.access_token)["kid"]

    identity.clock.now = NOON + timedelta(minutes=5)
    new_key = await usecases.rotate_signing_keys(
        SqlAlchemyUnitOfWork(identity.engine), JwtTokenSigner(), identity.clock.now
    )
    jwks = await identity.stub.GetJwks(pb.GetJwksRequest())
    assert [k.kid for k in jwks.keys] == [new_key.kid, old_kid]
    old_jwk = jwt.PyJWKSet.from_json(jwks.jwks_json)[old_kid]
    claims = jwt.decode(
        old.access_token,
        old_jwk,
        algorithms=["ES256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == user.name
    # The service itself still accepts the old token, and signs new ones with the new key.
    got = await identity.stub.GetUser(
        pb.GetUserRequest(name=user.name), metadata=bearer(old.access_token)
    )
    assert got.user.name == user.name
    fresh = await log_in(identity.stub)
    assert jwt.get_unverified_header(fresh.access_token)["kid"] == new_key.kid


async def test_unknown_email_and_wrong_password_look_the_same(identity: Identity) -> None:
    await sign_up(identity.stub)
    errors = []
    for email, password in [("nobody@example.com", PASSWORD), ("ada@example.com", "wrong one")]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await identity.stub.Login(pb.LoginRequest(email=email, password=password))
        info = error_info(caught.value)
        errors.append((caught.value.code(), caught.value.details(), info.reason, info.domain))
    assert errors[0] == errors[1]
    assert errors[0][0] == grpc.StatusCode.UNAUTHENTICATED
    assert errors[0][2:] == ("INVALID_CREDENTIALS", "identity.agora")


async def test_refresh_rotates_and_reuse_revokes_the_family(identity: Identity) -> None:
    stub = identity.stub
    await sign_up(stub)
    first = await log_in(stub)
    second = await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token
    assert second.user == first.user
    assert second.refresh_token_expire_time == first.refresh_token_expire_time

    async def refresh_fails(token: str, reason: str) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=token))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(caught.value).reason == reason

    await refresh_fails(first.refresh_token, "REFRESH_TOKEN_REUSED")
    await refresh_fails(second.refresh_token, "REFRESH_TOKEN_REVOKED")
    await refresh_fails(first.refresh_token, "REFRESH_TOKEN_REVOKED")
    await refresh_fails("never-issued", "REFRESH_TOKEN_INVALID")

    # A family outlives its tokens' rotations only until its expiry.
    other = await log_in(stub)
    identity.clock.now = NOON + timedelta(days=30)
    await refresh_fails(other.refresh_token, "REFRESH_TOKEN_EXPIRED")


async def test_get_user_needs_a_token_for_that_user_or_an_admin(
    untrusting_identity: Identity,
) -> None:
    identity = untrusting_identity
    stub = identity.stub
    ada = (await sign_up(stub)).user
    bob = (await sign_up(stub, "bob@example.com")).user
    ada_token = (await log_in(stub)).access_token

    async def get_fails(name: str, metadata: list[tuple[str, str]]) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetUser(pb.GetUserRequest(name=name), metadata=metadata)
        return caught.value

    # The runtime authenticates the caller, as in every service.
    for metadata, reason in [
        ([], "ACCESS_TOKEN_MISSING"),
        (bearer("not-a-jwt"), "ACCESS_TOKEN_INVALID"),
        ([("authorization", f"Basic {ada_token}")], "MALFORMED_AUTHORIZATION"),
    ]:
        refused = await get_fails(ada.name, metadata)
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
        assert (error_info(refused).reason, error_info(refused).domain) == (
            reason,
            "identity.agora",
        )

    denied = await get_fails(bob.name, bearer(ada_token))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(denied).reason == "NOT_RESOURCE_OWNER"
    assert dict(error_info(denied).metadata) == {"user": bob.name}
    # Permission before existence: a stranger cannot probe for users.
    nobody = await get_fails("users/unobody", bearer(ada_token))
    assert nobody.code() == grpc.StatusCode.PERMISSION_DENIED

    await usecases.grant_role(SqlAlchemyUnitOfWork(identity.engine), "bob@example.com", "admin")
    bob_token = (await log_in(stub, "bob@example.com")).access_token
    got = await stub.GetUser(pb.GetUserRequest(name=ada.name), metadata=bearer(bob_token))
    assert got.user.name == ada.name
    not_found = await get_fails("users/unobody", bearer(bob_token))
    assert not_found.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(not_found).reason == "USER_NOT_FOUND"
    malformed = await get_fails("people/ada", bearer(bob_token))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(malformed) == ["name"]

    # Expired, beyond the runtime's tolerance for clock skew.
    identity.clock.now = NOON + timedelta(minutes=15, seconds=31)
    expired = await get_fails(ada.name, bearer(ada_token))
    assert expired.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(expired).reason == "ACCESS_TOKEN_EXPIRED"


async def test_the_local_operator_reads_any_user_and_a_token_still_names_its_user(
    identity: Identity,
) -> None:
    stub = identity.stub
    await sign_up(stub)
    bob = (await sign_up(stub, "bob@example.com")).user
    # A call from this machine without a token: the local operator, like another service.
    assert (await stub.GetUser(pb.GetUserRequest(name=bob.name))).user == bob
    ada_token = (await log_in(stub)).access_token
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetUser(pb.GetUserRequest(name=bob.name), metadata=bearer(ada_token))
    assert error_info(caught.value).reason == "NOT_RESOURCE_OWNER"


async def test_sign_up_refuses_taken_and_malformed_input(identity: Identity) -> None:
    stub = identity.stub
    await sign_up(stub)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sign_up(stub, "ADA@EXAMPLE.COM")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(caught.value).reason == "EMAIL_ALREADY_REGISTERED"

    for request, reason, fields in [
        (
            pb.SignUpRequest(email="ada", password=PASSWORD, display_name="A"),
            "INVALID_EMAIL",
            ["email"],
        ),
        (
            pb.SignUpRequest(email="b@example.com", password="short", display_name="B"),
            "INVALID_PASSWORD",
            ["password"],
        ),
        (
            pb.SignUpRequest(email="b@example.com", password=PASSWORD),
            "INVALID_ARGUMENT",
            ["display_name"],
        ),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SignUp(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(caught.value).reason == reason
        assert field_violations(caught.value) == fields


async def test_sign_up_with_a_request_id_is_idempotent(identity: Identity) -> None:
    request = pb.SignUpRequest(
        email="ada@example.com",
        password=PASSWORD,
        display_name="Ada",
        request_id="5b0f0a52-2f4e-4a53-9d43-0e8f0c0b7a10",
    )
    first = await identity.stub.SignUp(request)
    again = await identity.stub.SignUp(request)
    assert again.user == first.user
    request.display_name = "Someone else"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.stub.SignUp(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "REQUEST_ID_REUSED"


async def test_login_and_refresh_need_their_fields(identity: Identity) -> None:
    for call in (
        identity.stub.Login(pb.LoginRequest(email="ada@example.com")),
        identity.stub.RefreshToken(pb.RefreshTokenRequest()),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(caught.value).reason == "INVALID_ARGUMENT"
