"""mTLS mode over real sockets: the handshake keeps strangers out, certificates name callers.

The made-up contracts of :mod:`tests.integration.runtime.test_access` (one method per
access rule) are served through the runtime with ``AGORA_TLS=mtls`` and certificates made
by ``scripts/certs.py`` (as ``make certs`` makes them) into a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, empty_pb2

from identity.domain.model import CUSTOMER
from runtime.access import OPERATOR
from runtime.clients import ClientFactory
from runtime.config import (
    ConfigError,
    ServerSettings,
    TlsSettings,
    load_server_settings,
    load_tls_settings,
)
from runtime.server import running
from runtime.tls import (
    channel_credentials,
    default_channel_credentials,
    read_material,
    service_id,
    use_for_clients,
)
from tests.integration.runtime.test_access import RULES, Issuer, call, reason_of
from tests.support.certs import credentials, issue_stranger, make_certs, tls_env, tls_files
from tests.support.policy_contract import contract

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    make_certs(directory)
    return directory


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Certificates with the same names from another CA: another installation's."""
    directory = tmp_path_factory.mktemp("other-certs")
    make_certs(directory)
    return directory


def mtls_settings(certs: Path, service: str = "catalog") -> ServerSettings:
    return load_server_settings(
        service,
        environ={
            "AGORA_HOST": "127.0.0.1",
            "AGORA_PORT": "0",
            "AGORA_GRACE_SECONDS": "1",
            **tls_env(certs),
        },
    )


@contextlib.asynccontextmanager
async def serving(issuer: Issuer, certs: Path) -> AsyncIterator[tuple[int, dict[str, str]]]:
    names = {rule: contract(rule.title(), declared) for rule, declared in RULES.items()}
    async with running(issuer.service(names), mtls_settings(certs)) as port:
        yield port, names


def channel(
    port: int, creds: grpc.ChannelCredentials | None, host: str = "127.0.0.1"
) -> grpc.aio.Channel:
    address = f"{host}:{port}"
    if creds is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, creds)


async def test_only_clients_with_a_certificate_of_the_ca_get_through_the_handshake(
    certs: Path, other_certs: Path
) -> None:
    issuer = Issuer()
    no_certificate = grpc.ssl_channel_credentials(
        root_certificates=tls_files(certs).ca.read_bytes()
    )
    async with serving(issuer, certs) as (port, names):
        refused = {}
        for label, creds in {
            "plaintext": None,
            "no certificate": no_certificate,
            "another CA's certificate": credentials(other_certs, "orders"),
        }.items():
            async with channel(port, creds) as refused_channel:
                refused[label] = await call(refused_channel, names["open"])
        async with channel(port, credentials(certs, "orders")) as admitted:
            open_call = await call(admitted, names["open"])
        # The server's certificate names localhost too, so clients may dial that name.
        async with channel(port, credentials(certs, "orders"), host="localhost") as by_name:
            by_name_call = await call(by_name, names["open"])
    assert refused == {
        "plaintext": UNAVAILABLE,
        "no certificate": UNAVAILABLE,
        "another CA's certificate": UNAVAILABLE,
    }
    assert (open_call, by_name_call) == (OK, OK)
    # Refused connections never reached a handler.
    assert issuer.seen == ["orders", "orders"]


async def test_a_client_refuses_a_server_whose_certificate_another_ca_signed(
    certs: Path, other_certs: Path
) -> None:
    issuer = Issuer()
    async with (
        serving(issuer, certs) as (port, names),
        channel(port, credentials(certs, "orders")) as trusted,
    ):
        # A client of the other installation does not trust this server's certificate.
        async with channel(port, credentials(other_certs, "orders")) as distrustful:
            assert await call(distrustful, names["open"]) == UNAVAILABLE
        assert await call(trusted, names["open"]) == OK


async def test_a_service_certificate_is_that_service_and_passes_internal_methods(
    certs: Path,
) -> None:
    issuer = Issuer()
    async with (
        serving(issuer, certs) as (port, names),
        channel(port, credentials(certs, "orders")) as orders,
    ):
        got = {rule: await call(orders, names[rule]) for rule in RULES}
        # A service holds no role: methods for role holders stay closed to it.
        assert await reason_of(orders, names["admins"]) == "MISSING_ROLE"
    assert got == {"open": OK, "members": OK, "admins": DENIED, "internal": OK}
    assert issuer.seen == ["orders", "orders", "orders"]


async def test_a_token_names_the_caller_whatever_certificate_carries_it(certs: Path) -> None:
    issuer = Issuer()
    ada = issuer.token("ada", CUSTOMER)
    async with serving(issuer, certs) as (port, names):
        for holder in ("orders", "operator"):
            async with channel(port, credentials(certs, holder)) as carrier:
                assert await reason_of(carrier, names["internal"], ada) == "INTERNAL_ONLY"
                assert await call(carrier, names["members"], ada) == OK
    assert issuer.seen == ["users/ada", "users/ada"]


async def test_the_operator_certificate_is_the_operator_with_the_admin_role(certs: Path) -> None:
    issuer = Issuer()
    async with (
        serving(issuer, certs) as (port, names),
        channel(port, credentials(certs)) as operator,
    ):
        got = [await call(operator, names[rule]) for rule in RULES]
    assert got == [OK, OK, OK, OK]
    assert issuer.seen == [OPERATOR.subject] * 4


@pytest.mark.parametrize(
    "uris",
    [
        [],
        ["spiffe://agora.local/user/ada"],
        ["spiffe://elsewhere.example/service/orders"],
        # Two identities name nobody: a SPIFFE certificate has exactly one.
        [service_id("orders"), service_id("payments")],
    ],
    ids=["no URI", "not a service", "another trust domain", "two services"],
)
async def test_a_certificate_naming_no_agora_holder_is_anonymous_even_on_loopback(
    certs: Path, uris: list[str]
) -> None:
    issuer = Issuer()
    stranger = issue_stranger(certs, f"stranger-{len(uris)}-{abs(hash(tuple(uris)))}", uris)
    async with (
        serving(issuer, certs) as (port, names),
        channel(port, channel_credentials(stranger)) as anonymous,
    ):
        got = {rule: await call(anonymous, names[rule]) for rule in RULES}
    assert got == {
        "open": OK,
        "members": UNAUTHENTICATED,
        "admins": UNAUTHENTICATED,
        "internal": UNAUTHENTICATED,
    }
    assert issuer.seen == [None]


async def test_a_client_factory_presents_the_operator_or_the_serving_services_certificate(
    certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = Issuer()

    async def call_internal(names: dict[str, str], port: int) -> None:
        factory = ClientFactory()
        try:
            service = descriptor_pool.Default().FindServiceByName(names["internal"])
            method = factory.channel(service, f"127.0.0.1:{port}").unary_unary(
                f"/{names['internal']}/Do",
                request_serializer=empty_pb2.Empty.SerializeToString,
                response_deserializer=empty_pb2.Empty.FromString,
            )
            await method(empty_pb2.Empty(), timeout=10)
        finally:
            await factory.close()

    async def as_service(names: dict[str, str], port: int) -> None:
        # What serve() does before it builds a service: its clients present its certificate.
        use_for_clients(load_tls_settings("payments", tls_env(certs)))
        await call_internal(names, port)

    monkeypatch.setenv("AGORA_TLS", "mtls")
    monkeypatch.setenv("AGORA_CERTS_DIR", str(certs))
    async with serving(issuer, certs) as (port, names):
        await call_internal(names, port)
        # A task runs in a copy of the context: the choice stays inside it.
        await asyncio.create_task(as_service(names, port))
        await call_internal(names, port)
    assert issuer.seen == [OPERATOR.subject, "payments", OPERATOR.subject]


def test_without_agora_tls_clients_stay_plaintext() -> None:
    assert default_channel_credentials(environ={}) is None
    assert default_channel_credentials(environ={"AGORA_TLS": "off"}) is None


def test_mtls_mode_turns_loopback_trust_off_and_refuses_it_set_on(certs: Path) -> None:
    assert mtls_settings(certs).trust_loopback is False
    assert load_server_settings("catalog", environ={}).trust_loopback is True
    with pytest.raises(ConfigError, match="AGORA_AUTH_TRUST_LOOPBACK"):
        load_server_settings(
            "catalog", environ={**tls_env(certs), "AGORA_AUTH_TRUST_LOOPBACK": "true"}
        )
    explicit_off = {**tls_env(certs), "AGORA_AUTH_TRUST_LOOPBACK": "false"}
    assert load_server_settings("catalog", environ=explicit_off).trust_loopback is False


def test_the_files_default_to_the_holders_own_in_the_certificates_directory(certs: Path) -> None:
    assert mtls_settings(certs, "orders").tls == TlsSettings(
        certs / "orders.pem", certs / "orders-key.pem", certs / "ca.pem"
    )
    assert load_tls_settings("operator", tls_env(certs)) == tls_files(certs)
    chosen = {
        **tls_env(certs),
        "AGORA_TLS_CERT": str(certs / "payments.pem"),
        "AGORA_TLS_KEY": str(certs / "payments-key.pem"),
    }
    assert load_tls_settings("orders", chosen) == TlsSettings(
        certs / "payments.pem", certs / "payments-key.pem", certs / "ca.pem"
    )


def test_missing_files_and_an_unknown_mode_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_server_settings("orders", environ=tls_env(tmp_path))
    message = str(missing.value)
    for name in ("orders.pem", "orders-key.pem", "ca.pem"):
        assert str(tmp_path / name) in message
    assert "make certs" in message
    with pytest.raises(ConfigError, match="AGORA_TLS='tls'"):
        load_server_settings("orders", environ={"AGORA_TLS": "tls"})


def test_unusable_files_are_refused_before_anything_listens(
    certs: Path, other_certs: Path, tmp_path: Path
) -> None:
    orders = tls_files(certs, "orders")
    read_material(orders)  # as make certs made them: fine
    mismatched = TlsSettings(orders.cert, certs / "payments-key.pem", orders.ca)
    with pytest.raises(ConfigError, match="is not the key of the certificate"):
        read_material(mismatched)
    foreign = TlsSettings(orders.cert, orders.key, other_certs / "ca.pem")
    with pytest.raises(ConfigError, match="is not signed by the CA"):
        read_material(foreign)
    with pytest.raises(ConfigError, match="not now"):
        read_material(orders, now=datetime.now(UTC) + timedelta(days=400))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        read_material(TlsSettings(garbage, orders.key, orders.ca))
