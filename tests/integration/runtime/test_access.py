"""The contract's access rules at work over real sockets, with real access tokens.

A made-up contract (:mod:`tests.support.policy_contract`) has one method per access
rule; it is served through the runtime on loopback with ``AGORA_AUTH_TRUST_LOOPBACK``
off, so every rule is enforced as it would be for a caller from another machine, and
then with it on, as ``make run`` has it. Tokens are signed by identity's own signer in
its exact format, and the service fetches the keys from a stand-in key set.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import empty_pb2

from agora.api.v1 import policy_pb2
from identity.adapters.tokens import JwtTokenSigner
from identity.domain.model import ADMIN, CUSTOMER, AccessToken, SigningKey
from runtime.access import LOCAL_OPERATOR, current_caller
from runtime.config import ServerSettings, load_server_settings
from runtime.server import Service, running
from tests.support.policy_contract import contract, policy
from tests.support.status import error_info

PATIENCE = 10.0


class Issuer:
    """Tokens signed by a fresh identity key, and a service that trusts that key."""

    def __init__(self) -> None:
        self.signer = JwtTokenSigner()
        self.key: SigningKey = self.signer.new_key(datetime.now(UTC))
        self.fetches = 0
        self.seen: list[str | None] = []

    def token(self, user_id: str, *roles: str, lifetime: timedelta = timedelta(minutes=5)) -> str:
        now = datetime.now(UTC)
        return self.signer.sign(AccessToken(user_id, roles, now, now + lifetime), self.key)

    async def jwks(self) -> Sequence[Mapping[str, str]]:
        self.fetches += 1
        return [self.key.public_jwk]

    def service(self, names: Mapping[str, str]) -> Service:
        """Serves each rule's method: records the caller the handler sees, returns Empty."""

        async def handle(request: empty_pb2.Empty, context: object) -> empty_pb2.Empty:
            caller = current_caller()
            self.seen.append(None if caller is None else caller.subject)
            return empty_pb2.Empty()

        handler = grpc.unary_unary_rpc_method_handler(
            handle,
            request_deserializer=empty_pb2.Empty.FromString,
            response_serializer=empty_pb2.Empty.SerializeToString,
        )

        def register(server: grpc.aio.Server) -> None:
            for full_name in names.values():
                generic = grpc.method_handlers_generic_handler(full_name, {"Do": handler})
                server.add_generic_rpc_handlers([generic])

        async def ready() -> bool:
            return True

        return Service(
            name="testing",
            domain="testing.agora",
            service_names=list(names.values()),
            register=register,
            readiness=ready,
            jwks=self.jwks,
        )


#: One made-up contract per rule, each with a single method ``Do``.
RULES = {
    "open": policy(policy_pb2.ACCESS_PUBLIC),
    "members": policy(policy_pb2.ACCESS_AUTHENTICATED),
    "admins": policy(policy_pb2.ACCESS_ROLES, ADMIN),
    "internal": policy(policy_pb2.ACCESS_INTERNAL),
}


def settings(trust_loopback: bool, **extra: str) -> ServerSettings:
    return load_server_settings(
        "catalog",
        environ={
            "AGORA_HOST": "127.0.0.1",
            "AGORA_PORT": "0",
            "AGORA_GRACE_SECONDS": "1",
            "AGORA_AUTH_TRUST_LOOPBACK": str(trust_loopback).lower(),
            **extra,
        },
    )


@contextlib.asynccontextmanager
async def serving(
    issuer: Issuer, trust_loopback: bool, **extra: str
) -> AsyncIterator[tuple[grpc.aio.Channel, dict[str, str]]]:
    names = {rule: contract(rule.title(), declared) for rule, declared in RULES.items()}
    async with (
        running(issuer.service(names), settings(trust_loopback, **extra)) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield channel, names


async def call(
    channel: grpc.aio.Channel, service: str, token: str | None = None
) -> grpc.StatusCode:
    method = channel.unary_unary(
        f"/{service}/Do",
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=empty_pb2.Empty.FromString,
    )
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    try:
        await method(empty_pb2.Empty(), metadata=metadata, timeout=PATIENCE)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def reason_of(channel: grpc.aio.Channel, service: str, token: str | None = None) -> str:
    method = channel.unary_unary(
        f"/{service}/Do",
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=empty_pb2.Empty.FromString,
    )
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await method(empty_pb2.Empty(), metadata=metadata, timeout=PATIENCE)
    return error_info(refused.value).reason


OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


async def test_each_rule_admits_exactly_the_callers_it_declares() -> None:
    issuer = Issuer()
    ada, admin = issuer.token("ada", CUSTOMER), issuer.token("root", CUSTOMER, ADMIN)
    expected = {
        #           anonymous        customer      admin
        "open": (OK, OK, OK),
        "members": (UNAUTHENTICATED, OK, OK),
        "admins": (UNAUTHENTICATED, DENIED, OK),
        "internal": (UNAUTHENTICATED, DENIED, DENIED),
    }
    async with serving(issuer, trust_loopback=False) as (channel, names):
        got = {
            rule: (
                await call(channel, names[rule]),
                await call(channel, names[rule], ada),
                await call(channel, names[rule], admin),
            )
            for rule in expected
        }
        assert await reason_of(channel, names["members"]) == "ACCESS_TOKEN_MISSING"
        assert await reason_of(channel, names["admins"], ada) == "MISSING_ROLE"
        assert await reason_of(channel, names["internal"], ada) == "INTERNAL_ONLY"
    assert got == expected
    # The handler saw who called, and only the calls that were let through reached it.
    assert issuer.seen.count("users/ada") == 2  # open and members
    assert issuer.seen.count(None) == 1  # open, anonymously
    assert issuer.fetches == 1  # the keys were fetched once and cached


async def test_a_bad_or_expired_token_is_refused_but_not_on_a_public_method() -> None:
    issuer = Issuer()
    expired = issuer.token("ada", CUSTOMER, lifetime=timedelta(seconds=-120))
    forged = issuer.token("ada", CUSTOMER)[:-4] + "AAAA"
    async with serving(issuer, trust_loopback=False) as (channel, names):
        assert await reason_of(channel, names["members"], expired) == "ACCESS_TOKEN_EXPIRED"
        assert await reason_of(channel, names["members"], forged) == "ACCESS_TOKEN_INVALID"
        assert await reason_of(channel, names["members"], "not.a.jwt") == "ACCESS_TOKEN_INVALID"
        assert await reason_of(channel, names["members"], "two words") == "MALFORMED_AUTHORIZATION"
        # A stale token must not keep anyone from logging in or refreshing it.
        assert await call(channel, names["open"], expired) == OK


async def test_loopback_without_a_token_is_the_local_operator_when_trusted() -> None:
    issuer = Issuer()
    ada = issuer.token("ada", CUSTOMER)
    async with serving(issuer, trust_loopback=True) as (channel, names):
        got = [await call(channel, names[rule]) for rule in RULES]
        # A token still names its user, whose rules then apply.
        assert await call(channel, names["admins"], ada) == DENIED
    assert got == [OK, OK, OK, OK]
    assert issuer.seen.count(LOCAL_OPERATOR.subject) == 4  # public calls too: never limited


async def test_public_methods_are_rate_limited_per_caller_with_a_retry_delay() -> None:
    issuer = Issuer()
    ada, bob = issuer.token("ada", CUSTOMER), issuer.token("bob", CUSTOMER)
    limits = {"AGORA_RATE_LIMIT_PER_SECOND": "0.5", "AGORA_RATE_LIMIT_BURST": "2"}
    async with serving(issuer, trust_loopback=False, **limits) as (channel, names):
        open_ = names["open"]
        burst = [await call(channel, open_, ada) for _ in range(2)]
        method = channel.unary_unary(
            f"/{open_}/Do",
            request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=empty_pb2.Empty.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await method(
                empty_pb2.Empty(), metadata=(("authorization", f"Bearer {ada}"),), timeout=5
            )
        # Another caller has a bucket of its own; members-only methods are not limited.
        bob_calls = await call(channel, open_, bob)
        members = [await call(channel, names["members"], ada) for _ in range(3)]
    assert burst == [OK, OK]
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(limited.value).reason == "RATE_LIMITED"
    assert bob_calls == OK
    assert members == [OK, OK, OK]
