"""mTLS mode across real processes: the checkout shop with ``AGORA_TLS=mtls``.

Certificates are made as ``make certs`` makes them. Every service listens with its own
certificate and admits only certificates of the CA; orders reaches inventory's and
payments' internal methods (``ACCESS_INTERNAL``) because its certificate names it, since
loopback is not trusted in this mode. The test presents the operator's certificate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agora.orders.v1 import order_pb2
from tests.support.certs import credentials, make_certs, tls_env, tls_files
from tests.support.processes import STOP_TIMEOUT_S, Grpcurl, health_status, start_service
from tests.support.shop import Shop, running_shop


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    make_certs(directory)
    return directory


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[Shop]:
    with running_shop(tmp_path_factory.mktemp("shop"), tls_dir=certs) as shop:
        yield shop


async def test_an_order_completes_when_every_call_goes_over_mtls(shop: Shop) -> None:
    for process in shop.processes():
        serving = [entry for entry in process.log_entries() if entry.get("message") == "serving"]
        assert [entry.get("tls") for entry in serving] == ["mtls"], process.name
    async with shop.clients() as clients:
        await clients.stock({"tea": 5})
        placed = await clients.place({"tea": 2})
        final = await clients.wait_final(placed.name)
        assert final.state == order_pb2.ORDER_STATE_COMPLETED, final
        assert (await clients.stock_of("tea")).on_hand == 3
        assert await clients.invariant_violations([final], {"tea": 5}) == []


def test_plaintext_and_foreign_clients_are_turned_away(
    shop: Shop, tmp_path: Path, certs: Path
) -> None:
    make_certs(tmp_path)  # another installation's CA
    for process in shop.processes():
        assert health_status(process.address) == "UNAVAILABLE", process.name
        assert health_status(process.address, credentials=credentials(tmp_path)) == "UNAVAILABLE", (
            process.name
        )
        assert health_status(process.address, credentials=credentials(certs)) == "SERVING"


def test_grpcurl_reaches_a_service_with_the_operators_files(
    shop: Shop, certs: Path, grpcurl_binary: Path
) -> None:
    grpcurl = Grpcurl(grpcurl_binary, shop.catalog.address, tls=tls_files(certs))
    assert grpcurl.call("grpc.health.v1.Health/Check") == {"status": "SERVING"}
    listed = grpcurl.run("list")
    assert "agora.catalog.v1.CatalogService" in listed.stdout.split(), listed.describe()
    plaintext = Grpcurl(grpcurl_binary, shop.catalog.address).run("list")
    assert plaintext.returncode != 0, plaintext.describe()


def test_a_service_without_its_certificate_exits_2_naming_the_files(tmp_path: Path) -> None:
    missing = tmp_path / "no-certs"
    service = start_service("catalog", tmp_path / "catalog", env=tls_env(missing))

    status = service.process.wait(timeout=STOP_TIMEOUT_S)

    assert status == 2, service.tail()
    for name in ("catalog.pem", "catalog-key.pem", "ca.pem"):
        assert str(missing / name) in service.tail(), service.tail()
