"""``make certs``: scripts/certs.py makes a local CA and one certificate per service and the
operator, verifiable as TLS servers and clients, and changes nothing good when run again."""

from __future__ import annotations

import ipaddress
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from runtime.config import DEFAULT_PORTS, OPERATOR
from tests.support.certs import CERTS_PY, CERTS_TIMEOUT_S, make_certs, tls_files
from tests.support.processes import REPO, clean_environment

HOLDERS = [*DEFAULT_PORTS, OPERATOR]


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> set[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {f"{type(name).__name__}:{name.value}" for name in names}


def store(directory: Path) -> verification.Store:
    return verification.Store([certificate(directory / "ca.pem")])


def contents(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_every_service_and_the_operator_get_a_certificate_the_ca_signed(tmp_path: Path) -> None:
    make_certs(tmp_path)

    expected = {"ca.pem", "ca-key.pem"} | {
        f"{holder}{suffix}" for holder in HOLDERS for suffix in (".pem", "-key.pem")
    }
    assert {path.name for path in tmp_path.iterdir()} == expected
    for path in tmp_path.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if path.name.endswith("-key.pem") else 0o644), path.name
    authority = certificate(tmp_path / "ca.pem")
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    now = datetime.now(UTC)
    for holder in HOLDERS:
        files = tls_files(tmp_path, holder)
        cert = certificate(files.cert)
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == "secp256r1"
        assert key.public_key() == cert.public_key()
        cert.verify_directly_issued_by(authority)
        assert cert.not_valid_before_utc <= now
        assert now + timedelta(days=300) < cert.not_valid_after_utc < now + timedelta(days=400)
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        # Every holder is verifiable as a TLS client; services as servers too.
        client = verification.PolicyBuilder().store(store(tmp_path)).build_client_verifier()
        verified = client.verify(cert, [])
        assert (verified.chain[0], verified.chain[-1]) == (cert, authority)
        if holder == OPERATOR:
            assert sans(cert) == {"UniformResourceIdentifier:spiffe://agora.local/operator"}
            assert usages == {ExtendedKeyUsageOID.CLIENT_AUTH}
            continue
        assert sans(cert) == {
            f"UniformResourceIdentifier:spiffe://agora.local/service/{holder}",
            f"DNSName:{holder}",
            "DNSName:localhost",
            "IPAddress:127.0.0.1",
            "IPAddress:::1",
        }
        assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        for name in (
            x509.DNSName(holder),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ):
            server = verification.PolicyBuilder().store(store(tmp_path)).build_server_verifier(name)
            assert server.verify(cert, [])[0] == cert


def test_a_certificate_is_not_valid_for_another_services_name(tmp_path: Path) -> None:
    make_certs(tmp_path)
    orders = certificate(tmp_path / "orders.pem")
    server = (
        verification.PolicyBuilder()
        .store(store(tmp_path))
        .build_server_verifier(x509.DNSName("payments"))
    )
    with pytest.raises(verification.VerificationError):
        server.verify(orders, [])


def test_running_again_keeps_everything_that_is_still_good(tmp_path: Path) -> None:
    make_certs(tmp_path)
    before = contents(tmp_path)

    again = make_certs(tmp_path)

    assert contents(tmp_path) == before
    assert all(line.startswith("certs: kept ") for line in again.stdout.splitlines())
    assert len(again.stdout.splitlines()) == 1 + len(HOLDERS)


def test_force_makes_a_new_ca_and_every_certificate_again(tmp_path: Path) -> None:
    make_certs(tmp_path)
    before = contents(tmp_path)

    make_certs(tmp_path, "--force")

    after = contents(tmp_path)
    assert all(after[name] != before[name] for name in before)
    authority = certificate(tmp_path / "ca.pem")
    for holder in HOLDERS:
        certificate(tls_files(tmp_path, holder).cert).verify_directly_issued_by(authority)


def test_only_missing_or_foreign_certificates_are_made_again(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    make_certs(ours)
    make_certs(theirs)
    before = contents(ours)
    (ours / "orders.pem").unlink()
    for name in ("payments.pem", "payments-key.pem"):
        (ours / name).write_bytes((theirs / name).read_bytes())

    rerun = make_certs(ours)

    after = contents(ours)
    assert after["ca.pem"] == before["ca.pem"]
    assert after["catalog.pem"] == before["catalog.pem"]
    assert after["orders.pem"] != before["orders.pem"]
    assert after["payments.pem"] not in (
        before["payments.pem"],
        (theirs / "payments.pem").read_bytes(),
    )
    assert "not signed by the current CA" in rerun.stdout
    authority = certificate(ours / "ca.pem")
    for holder in ("orders", "payments"):
        certificate(ours / f"{holder}.pem").verify_directly_issued_by(authority)


def test_an_unusable_ca_is_replaced_and_every_certificate_with_it(tmp_path: Path) -> None:
    make_certs(tmp_path)
    before = contents(tmp_path)
    (tmp_path / "ca-key.pem").unlink()  # nothing can be signed with the old CA any more

    make_certs(tmp_path)

    after = contents(tmp_path)
    assert all(after[name] != before[name] for name in before if name != "ca-key.pem")
    authority = certificate(tmp_path / "ca.pem")
    certificate(tmp_path / "orders.pem").verify_directly_issued_by(authority)


def test_the_directory_defaults_to_agora_certs_dir(tmp_path: Path) -> None:
    target = tmp_path / "from-env"
    completed = subprocess.run(
        [sys.executable, str(CERTS_PY)],
        cwd=REPO,
        env=clean_environment({"AGORA_CERTS_DIR": str(target)}),
        capture_output=True,
        text=True,
        timeout=CERTS_TIMEOUT_S,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert (target / "ca.pem").is_file()
    assert os.access(target / "orders-key.pem", os.R_OK)
