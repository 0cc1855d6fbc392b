"""The security matrix over real processes: every way in that must be refused, and is.

Two shops of real service processes on loopback, each checked by one table of cases. Every
row names a credential (or the lack of one), the call it is presented with, the outcome the
contracts promise (a status code and the ``ErrorInfo`` reason and domain) and the outcome
the call got. Every row is asserted; the whole matrix is printed at the end of the module,
as a table and as JSON.

**Plaintext (tokens).** Identity, catalog, inventory, payments and orders, with customers
who sign up and log in through identity and an admin made with ``python -m identity
grant-role``. Orders runs with ``AGORA_AUTH_TRUST_LOOPBACK=false``, so a call without a
token is anonymous there as it is from any other machine (nothing calls orders but its
clients); the other services keep trusting loopback, which is how orders reaches them
during a checkout. Access tokens live a few seconds (``IDENTITY_ACCESS_TOKEN_TTL_SECONDS``)
and the services tolerate no clock skew (``AGORA_AUTH_LEEWAY_SECONDS=0``), so a token from
a real login really expires during the test; every other case logs in just before its call.
The forgeries (:mod:`tests.support.forged_tokens`) start from a real token, so each is
wrong in exactly one way.

**mTLS.** Identity, catalog and inventory with ``AGORA_TLS=mtls`` and certificates made as
``make certs`` makes them. Connections that must fail the handshake (plaintext, no client
certificate, another CA's certificate, an expired certificate of the right CA, made by
:mod:`tests.support.forged_certs`) are refused with UNAVAILABLE and leave the service
serving; certificates that name a holder decide who calls when no token is sent, and a
token, when sent, decides instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2_grpc
from agora.catalog.v1 import catalog_service_pb2 as catalog_pb
from agora.identity.v1 import identity_service_pb2 as identity_pb
from agora.identity.v1 import identity_service_pb2_grpc
from agora.inventory.v1 import inventory_pb2, inventory_service_pb2_grpc
from agora.inventory.v1 import inventory_service_pb2 as inventory_pb
from agora.orders.v1 import order_service_pb2 as orders_pb
from agora.orders.v1 import order_service_pb2_grpc
from identity.domain.model import ADMIN
from runtime.auth import json_web_key
from runtime.config import CA_FILE, OPERATOR
from tests.support.certs import credentials, issue_stranger, make_certs, tls_files
from tests.support.forged_certs import issue_expired, presenting
from tests.support.forged_tokens import (
    claims_of,
    hmac_with_public_key,
    signed_by_stranger,
    tampered,
    with_alg_none,
)
from tests.support.processes import REPO, clean_environment, health_status
from tests.support.shop import APPROVED_CARD, CALL_TIMEOUT_S, Shop, running_shop

#: The password :meth:`ShopClients.sign_up` gives every user.
PASSWORD = "correct horse battery staple"
#: The lifetime of identity's access tokens in the plaintext shop, in seconds.
TOKEN_TTL_S = 5
#: Bound on the operator's grant-role command.
COMMAND_TIMEOUT_S = 60.0

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Outcome:
    """How a call ended: ``OK``, or a status code with its ``ErrorInfo`` reason and domain
    (empty when the call carried none, as a failed handshake does). A health check's
    serving status stands in the ``code`` for the rows that check one."""

    code: str
    reason: str = ""
    domain: str = ""

    def __str__(self) -> str:
        detail = f" {self.reason}" if self.reason else ""
        return f"{self.code}{detail}{f' @{self.domain}' if self.domain else ''}"


OK = Outcome("OK")
#: Bound on waiting for a failed handshake to show in the service's output.
HANDSHAKE_LOG_WAIT_S = 5.0
#: How gRPC's TLS stack reports a failed handshake on the server (its INFO log, on stderr).
_HANDSHAKE_FAILED = re.compile(
    r"Handshake failed with error \w+: error:\w+:SSL routines:OPENSSL_internal:(\w+)(?:: (.*))?"
)


def handshake_refused(why: str) -> Outcome:
    """A connection the server refused in the TLS handshake: the client sees UNAVAILABLE
    (no handler ran, so no ErrorInfo); ``why`` is the server's reason for the refusal."""
    return Outcome("UNAVAILABLE", f"server: {why}")


def handshake_failure(log: Path, offset: int) -> str | None:
    """The server's reason for the first failed handshake logged past ``offset`` in ``log``:
    the TLS error, with the certificate check's own words when that check failed."""
    with log.open("rb") as output:
        output.seek(offset)
        text = output.read().decode(errors="replace")
    found = _HANDSHAKE_FAILED.search(text)
    if found is None:
        return None
    error, detail = found.group(1), (found.group(2) or "").strip()
    return (
        f"server: {error}: {detail}" if error == "CERTIFICATE_VERIFY_FAILED" else f"server: {error}"
    )


@dataclass(frozen=True)
class Row:
    """One case of the matrix, once run."""

    matrix: str
    case: str
    call: str
    expected: Outcome
    got: Outcome

    @property
    def passed(self) -> bool:
        return self.expected == self.got


#: A case of a table: what is presented, the call, what it must get, and how to make the call.
Case = tuple[str, str, Outcome, Callable[[], Awaitable[Outcome]]]


def denied(reason: str, domain: str) -> Outcome:
    return Outcome("PERMISSION_DENIED", reason, domain)


def unauthenticated(reason: str, domain: str) -> Outcome:
    return Outcome("UNAUTHENTICATED", reason, domain)


async def outcome(call: Awaitable[object]) -> Outcome:
    """The outcome of a gRPC call."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        status = rpc_status.from_call(cast(grpc.Call, error))
        for detail in status.details if status is not None else ():
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return Outcome(error.code().name, info.reason, info.domain)
        return Outcome(error.code().name)
    return OK


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


async def run_table(matrix: str, cases: list[Case], rows: list[Row]) -> None:
    """Runs the cases in order, recording a row for each."""
    for case, call, expected, make in cases:
        rows.append(Row(matrix, case, call, expected, await make()))


def render(rows: list[Row]) -> str:
    """The matrix as an aligned text table, then as JSON."""
    header = ("matrix", "case", "call", "expected", "got", "ok")
    lines = [
        (
            row.matrix,
            row.case,
            row.call,
            str(row.expected),
            str(row.got),
            "yes" if row.passed else "NO",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    text = [
        " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in [header, *lines]
    ]
    text.insert(1, "-+-".join("-" * width for width in widths))
    as_json = json.dumps(
        [
            {**asdict(row), "expected": str(row.expected), "got": str(row.got), "ok": row.passed}
            for row in rows
        ],
        indent=1,
    )
    return "\n".join(text) + "\n" + as_json


@pytest.fixture(scope="module")
def matrix(request: pytest.FixtureRequest) -> Iterator[list[Row]]:
    """The rows every test of the module adds; printed once the module is done."""
    rows: list[Row] = []
    yield rows
    report = f"\nsecurity matrix ({sum(r.passed for r in rows)}/{len(rows)} rows as expected)\n"
    report += render(rows)
    # Past pytest's output capture, so the matrix shows without -s.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(report)


def assert_all_as_expected(rows: list[Row], matrix: str) -> None:
    mine = [row for row in rows if row.matrix == matrix]
    assert mine, "no case ran"
    assert all(row.passed for row in mine), render([row for row in mine if not row.passed])


# --- plaintext: access tokens ---------------------------------------------------------------


@pytest.fixture
def token_shop(tmp_path: Path) -> Iterator[Shop]:
    with running_shop(
        tmp_path / "shop",
        only=("identity", "catalog", "inventory", "payments", "orders"),
        env={"AGORA_AUTH_LEEWAY_SECONDS": "0"},
        service_env={
            "identity": {"IDENTITY_ACCESS_TOKEN_TTL_SECONDS": str(TOKEN_TTL_S)},
            "orders": {"AGORA_AUTH_TRUST_LOOPBACK": "false"},
        },
    ) as shop:
        yield shop


def unique_email(who: str) -> str:
    return f"{who}-{uuid.uuid4().hex[:8]}@example.com"


async def grant_admin(shop: Shop, email: str) -> None:
    """Makes ``email`` an admin the way an operator does, against identity's database."""
    granted = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "identity", "grant-role", email, ADMIN],
        cwd=REPO,
        env=clean_environment({"AGORA_DATA_DIR": str(shop.data_dir / "identity")}),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert granted.returncode == 0, granted.stderr


async def test_tokens_over_plaintext(token_shop: Shop, matrix: list[Row]) -> None:
    shop = token_shop
    async with shop.clients() as clients:
        await clients.stock({"tea": 100})  # catalog and inventory trust loopback
        ada, bob, root = unique_email("ada"), unique_email("bob"), unique_email("root")
        for email in (ada, bob, root):
            await clients.sign_up(email)
        await grant_admin(shop, root)

        async def login(email: str) -> str:
            session = await clients.identity.login(
                identity_pb.LoginRequest(email=email, password=PASSWORD), timeout=CALL_TIMEOUT_S
            )
            return session.access_token

        stale = await login(ada)  # used last, once it has expired
        ada_user = str(claims_of(stale)["sub"])
        order = await clients.orders.with_token(await login(ada)).place_order(
            orders_pb.PlaceOrderRequest(
                user=ada_user,
                line_items=[orders_pb.LineItem(product="products/tea", quantity=1)],
                payment_token=APPROVED_CARD,
                request_id=str(uuid.uuid4()),
            ),
            timeout=CALL_TIMEOUT_S,
        )
        assert order.user == ada_user

        async with (
            grpc.aio.insecure_channel(shop.orders.address) as orders_channel,
            grpc.aio.insecure_channel(shop.catalog.address) as catalog_channel,
            grpc.aio.insecure_channel(shop.inventory.address) as inventory_channel,
            grpc.aio.insecure_channel(shop.running["identity"].address) as identity_channel,
        ):
            orders = order_service_pb2_grpc.OrderServiceStub(orders_channel)
            catalog = catalog_service_pb2_grpc.CatalogServiceStub(catalog_channel)
            inventory = inventory_service_pb2_grpc.InventoryServiceStub(inventory_channel)
            identity = identity_service_pb2_grpc.IdentityServiceStub(identity_channel)
            jwks = await identity.GetJwks(identity_pb.GetJwksRequest(), timeout=CALL_TIMEOUT_S)
            published = json_web_key(jwks.keys[0])

            def get_order(metadata: Metadata | None) -> Awaitable[object]:
                request = orders_pb.GetOrderRequest(name=order.name)
                return orders.GetOrder(request, metadata=metadata, timeout=CALL_TIMEOUT_S)

            async def get_order_as(email: str) -> Outcome:
                return await outcome(get_order(bearer(await login(email))))

            async def get_order_forged(forge: Callable[[str], str], email: str = ada) -> Outcome:
                return await outcome(get_order(bearer(forge(await login(email)))))

            async def create_product_as(email: str) -> Outcome:
                request = catalog_pb.CreateProductRequest(
                    product_id=f"kettle-{uuid.uuid4().hex[:8]}",
                    product=catalog_pb2.Product(
                        display_name="Kettle",
                        category="categories/tea",
                        price=money_pb2.Money(currency_code="EUR", units=30),
                    ),
                    request_id=str(uuid.uuid4()),
                )
                token = await login(email)
                return await outcome(
                    catalog.CreateProduct(request, metadata=bearer(token), timeout=CALL_TIMEOUT_S)
                )

            async def set_stock_as(email: str) -> Outcome:
                request = inventory_pb.SetStockRequest(name="products/tea/stock", on_hand=100)
                token = await login(email)
                return await outcome(
                    inventory.SetStock(request, metadata=bearer(token), timeout=CALL_TIMEOUT_S)
                )

            async def reserve_stock_as(email: str) -> Outcome:
                token = await login(email)
                return await outcome(
                    inventory.ReserveStock(
                        reserve_request(), metadata=bearer(token), timeout=CALL_TIMEOUT_S
                    )
                )

            async def stale_get_order() -> Outcome:
                expire_time = float(claims_of(stale)["exp"])
                await asyncio.sleep(max(0.0, expire_time - time.time()) + 1.0)
                return await outcome(get_order(bearer(stale)))

            get_ada_order = "orders.GetOrder(Ada's order)"
            cases: list[Case] = [
                ("Ada's own token", get_ada_order, OK, lambda: get_order_as(ada)),
                ("an admin's token", get_ada_order, OK, lambda: get_order_as(root)),
                ("Bob's token (another user's order)", get_ada_order,
                 denied("NOT_RESOURCE_OWNER", "orders.agora"), lambda: get_order_as(bob)),
                ("no token (loopback not trusted)", get_ada_order,
                 unauthenticated("ACCESS_TOKEN_MISSING", "orders.agora"),
                 lambda: outcome(get_order(None))),
                ("`authorization: Basic ...` header", get_ada_order,
                 unauthenticated("MALFORMED_AUTHORIZATION", "orders.agora"),
                 lambda: outcome(get_order((("authorization", "Basic YWRhOnB3"),)))),
                ("a token that is not a JWT", get_ada_order,
                 unauthenticated("ACCESS_TOKEN_INVALID", "orders.agora"),
                 lambda: outcome(get_order(bearer("not-a-jwt")))),
                ("Ada's claims signed by an unknown key (own kid)", get_ada_order,
                 unauthenticated("ACCESS_TOKEN_INVALID", "orders.agora"),
                 lambda: get_order_forged(signed_by_stranger)),
                ("Ada's claims signed by an unknown key (identity's kid)", get_ada_order,
                 unauthenticated("ACCESS_TOKEN_INVALID", "orders.agora"),
                 lambda: get_order_forged(lambda t: signed_by_stranger(t, same_kid=True))),
                ("Ada's claims with `alg: none`, no signature", get_ada_order,
                 unauthenticated("ACCESS_TOKEN_INVALID", "orders.agora"),
                 lambda: get_order_forged(with_alg_none)),
                ("Ada's claims HS256-signed with identity's public key", get_ada_order,
                 unauthenticated("ACCESS_TOKEN_INVALID", "orders.agora"),
                 lambda: get_order_forged(lambda t: hmac_with_public_key(t, published))),
                ("Bob's token, payload tampered: roles += admin", get_ada_order,
                 unauthenticated("ACCESS_TOKEN_INVALID", "orders.agora"),
                 lambda: get_order_forged(
                     lambda t: tampered(t, roles=[*claims_of(t)["roles"], ADMIN]), bob)),
                ("Bob's token, payload tampered: sub = Ada", get_ada_order,
                 unauthenticated("ACCESS_TOKEN_INVALID", "orders.agora"),
                 lambda: get_order_forged(
                     lambda t: tampered(t, sub=ada_user), bob)),
                ("Ada's token (customer: wrong role)", "catalog.CreateProduct [roles: admin]",
                 denied("MISSING_ROLE", "catalog.agora"), lambda: create_product_as(ada)),
                ("an admin's token", "catalog.CreateProduct [roles: admin]", OK,
                 lambda: create_product_as(root)),
                ("Ada's token (customer: wrong role)", "inventory.SetStock [roles: admin]",
                 denied("MISSING_ROLE", "inventory.agora"), lambda: set_stock_as(ada)),
                ("an admin's token", "inventory.SetStock [roles: admin]", OK,
                 lambda: set_stock_as(root)),
                ("Ada's token (a user, not a service)", "inventory.ReserveStock [internal]",
                 denied("INTERNAL_ONLY", "inventory.agora"), lambda: reserve_stock_as(ada)),
                (f"Ada's token from a real login, expired ({TOKEN_TTL_S} s TTL, 0 s leeway)",
                 get_ada_order, unauthenticated("ACCESS_TOKEN_EXPIRED", "orders.agora"),
                 stale_get_order),
            ]  # fmt: skip
            await run_table("plaintext", cases, matrix)
    assert_all_as_expected(matrix, "plaintext")


def reserve_request() -> inventory_pb.ReserveStockRequest:
    return inventory_pb.ReserveStockRequest(
        order=f"orders/o{uuid.uuid4().hex[:12]}",
        items=[inventory_pb2.ReservationItem(product="products/tea", quantity=1)],
        request_id=str(uuid.uuid4()),
    )


# --- mTLS: certificates ---------------------------------------------------------------------


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    make_certs(directory)
    return directory


@pytest.fixture
def tls_shop(tmp_path: Path, certs: Path) -> Iterator[Shop]:
    with running_shop(
        tmp_path / "shop", only=("identity", "catalog", "inventory"), tls_dir=certs
    ) as shop:
        yield shop


async def test_certificates_over_mtls(
    tls_shop: Shop, certs: Path, tmp_path: Path, matrix: list[Row]
) -> None:
    shop = tls_shop
    foreign = tmp_path / "foreign"
    make_certs(foreign)  # another installation's CA and certificates
    expired = issue_expired(certs, "expired-operator")  # the operator's ID, the right CA
    nobody = issue_stranger(certs, "nobody", [])  # the right CA, names no Agora holder
    ca = certs / CA_FILE
    operator_files = tls_files(foreign, OPERATOR)
    address = shop.inventory.address

    async with shop.clients() as clients:  # the operator's certificate
        await clients.stock({"tea": 100})
        email = unique_email("ada")
        await clients.sign_up(email)
        session = await clients.identity.login(
            identity_pb.LoginRequest(email=email, password=PASSWORD), timeout=CALL_TIMEOUT_S
        )
        customer = bearer(session.access_token)

    presented: dict[str, grpc.ChannelCredentials] = {
        "operator": credentials(certs),
        "orders": credentials(certs, "orders"),
        "catalog": credentials(certs, "catalog"),
        "none": presenting(ca),
        "foreign": presenting(ca, operator_files.cert, operator_files.key),
        "expired": presenting(ca, expired.cert, expired.key),
        "nobody": presenting(ca, nobody.cert, nobody.key),
    }
    channels = {name: grpc.aio.secure_channel(address, creds) for name, creds in presented.items()}
    channels["plaintext"] = grpc.aio.insecure_channel(address)
    try:
        stubs = {
            name: inventory_service_pb2_grpc.InventoryServiceStub(channel)
            for name, channel in channels.items()
        }
        reserved = await stubs["orders"].ReserveStock(reserve_request(), timeout=CALL_TIMEOUT_S)
        reservation = reserved.reservation.name

        def get_stock(over: str) -> Callable[[], Awaitable[Outcome]]:
            request = inventory_pb.GetStockRequest(name="products/tea/stock")
            return lambda: outcome(stubs[over].GetStock(request, timeout=CALL_TIMEOUT_S))

        async def refused(over: str) -> Outcome:
            """GetStock over a connection inventory must refuse, with the reason inventory's
            TLS stack gives for failing the handshake (gRPC's log, in the service's output)."""
            offset = shop.inventory.log_path.stat().st_size
            got = await get_stock(over)()
            deadline = time.monotonic() + HANDSHAKE_LOG_WAIT_S
            while True:
                why = handshake_failure(shop.inventory.log_path, offset)
                if why is not None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            return Outcome(got.code, why or "server logged no failed handshake", got.domain)

        def set_stock(over: str) -> Callable[[], Awaitable[Outcome]]:
            request = inventory_pb.SetStockRequest(name="products/tea/stock", on_hand=100)
            return lambda: outcome(stubs[over].SetStock(request, timeout=CALL_TIMEOUT_S))

        def reserve(
            over: str, metadata: Metadata | None = None
        ) -> Callable[[], Awaitable[Outcome]]:
            return lambda: outcome(
                stubs[over].ReserveStock(
                    reserve_request(), metadata=metadata, timeout=CALL_TIMEOUT_S
                )
            )

        def get_reservation(
            over: str, metadata: Metadata | None = None
        ) -> Callable[[], Awaitable[Outcome]]:
            request = inventory_pb.GetReservationRequest(name=reservation)
            return lambda: outcome(
                stubs[over].GetReservation(request, metadata=metadata, timeout=CALL_TIMEOUT_S)
            )

        async def still_serving() -> Outcome:
            status = await asyncio.to_thread(
                health_status, address, credentials=presented["operator"]
            )
            return Outcome(status)

        public = "inventory.GetStock [public]"
        roles = "inventory.SetStock [roles: admin]"
        internal = "inventory.ReserveStock [internal]"
        internal_admin = "inventory.GetReservation [internal, roles: admin]"
        domain = "inventory.agora"
        cases: list[Case] = [
            ("plaintext to the TLS port", public, handshake_refused("WRONG_VERSION_NUMBER"),
             lambda: refused("plaintext")),
            ("TLS without a client certificate", public,
             handshake_refused("PEER_DID_NOT_RETURN_A_CERTIFICATE"), lambda: refused("none")),
            ("another CA's operator certificate", public,
             handshake_refused("CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate"),
             lambda: refused("foreign")),
            ("the operator's ID, right CA, expired yesterday", public,
             handshake_refused("CERTIFICATE_VERIFY_FAILED: certificate has expired"),
             lambda: refused("expired")),
            ("(after the refusals) the operator's health check", "grpc.health.v1.Health/Check",
             Outcome("SERVING"), still_serving),
            ("orders' service certificate", internal, OK, reserve("orders")),
            ("the operator's certificate", internal_admin, OK, get_reservation("operator")),
            ("the operator's certificate", roles, OK, set_stock("operator")),
            ("the operator's certificate", public, OK, get_stock("operator")),
            ("catalog's service certificate (a service, no roles)", roles,
             denied("MISSING_ROLE", domain), set_stock("catalog")),
            ("right CA, no Agora SPIFFE ID, no token", roles,
             unauthenticated("ACCESS_TOKEN_MISSING", domain), set_stock("nobody")),
            ("a customer's token over the operator's certificate", internal_admin,
             denied("INTERNAL_ONLY", domain), get_reservation("operator", customer)),
            ("a customer's token over the operator's certificate", internal,
             denied("INTERNAL_ONLY", domain), reserve("operator", customer)),
            ("a customer's token over orders' service certificate", internal,
             denied("INTERNAL_ONLY", domain), reserve("orders", customer)),
        ]  # fmt: skip
        await run_table("mtls", cases, matrix)
    finally:
        for channel in channels.values():
            await channel.close(None)
    assert_all_as_expected(matrix, "mtls")
