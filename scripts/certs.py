"""Makes the certificates of mTLS mode (``AGORA_TLS=mtls``): a local CA, then one per holder.

``make certs`` runs this script with the project's virtualenv::

    python scripts/certs.py [--dir DIR] [--force]

It writes into ``DIR`` (default ``$AGORA_CERTS_DIR``, else ``var/certs``):

- ``ca.pem``, ``ca-key.pem``: the local certificate authority (valid 10 years);
- ``<service>.pem``, ``<service>-key.pem`` for every service of
  ``runtime.config.DEFAULT_PORTS`` (valid 1 year): SPIFFE ID
  ``spiffe://agora.local/service/<service>`` as its only URI SAN, and DNS ``<service>``,
  ``localhost``, IP ``127.0.0.1`` and ``::1``, so a client verifies the server it dials by
  name or on loopback; usable as server and as client;
- ``operator.pem``, ``operator-key.pem`` (valid 1 year): SPIFFE ID
  ``spiffe://agora.local/operator``, client only, for people and tools (grpcurl's
  ``-cacert -cert -key``, the SDK, ``make run``'s health checks). A call over it without
  an access token acts as the operator (the ``admin`` role), as a token-less call from
  loopback does in plaintext: keep its key as private as the CA's.

Keys are EC P-256, PKCS#8 PEM, unencrypted, mode 0600; certificates are mode 0644. Files
are replaced atomically.

Running it again changes only what needs it. A CA that is still good is kept (it is made
again when it is missing, unreadable, its key does not match, or it expires within 30
days); ``--force`` makes a new CA, and with it every certificate. A certificate is made
again when it is missing, unreadable, not signed by the current CA, expires within 30
days, names other SANs, or its key does not match. Each file written or kept is listed.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from runtime.config import (
        CA_FILE,
        DEFAULT_CERTS_DIR,
        DEFAULT_PORTS,
        OPERATOR,
        certificate_file,
        key_file,
    )
    from runtime.tls import spiffe_id
except ImportError as missing:  # run outside the project's virtualenv
    sys.exit(
        f"certs: {missing}. Make the certificates with `make certs`, which uses the virtualenv."
    )

#: How long the CA is valid.
CA_VALIDITY = timedelta(days=3650)
#: How long a service's or the operator's certificate is valid.
LEAF_VALIDITY = timedelta(days=365)
#: A certificate that expires sooner than this is made again.
RENEW_BEFORE = timedelta(days=30)
#: Tolerance for clocks that disagree: certificates are valid from a little before now.
BACKDATE = timedelta(minutes=5)
CA_KEY_FILE = "ca-key.pem"
ORGANIZATION = "Agora"
#: The names every service certificate carries besides the service's own.
LOOPBACK_DNS = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Authority:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def expected_names(holder: str) -> set[x509.GeneralName]:
    """The SANs of ``holder``'s certificate: its SPIFFE ID, and a service's host names."""
    names: set[x509.GeneralName] = {x509.UniformResourceIdentifier(spiffe_id(holder))}
    if holder != OPERATOR:
        names |= {x509.DNSName(name) for name in (holder, *LOOPBACK_DNS)}
        names |= {x509.IPAddress(ipaddress.ip_address(ip)) for ip in LOOPBACK_IPS}
    return names


def ensure_certificates(
    directory: Path,
    services: Sequence[str],
    *,
    force: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """Makes whatever is missing or no longer good in ``directory``; returns what it did.

    Each entry of the result reads ``wrote <file>`` or ``kept <file>`` with a reason or
    an expiry date.
    """
    when = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    report: list[str] = []
    authority = None if force else _usable_authority(directory, when)
    if authority is None:
        authority = _new_authority(when)
        _write_key(directory / CA_KEY_FILE, authority.key)
        _write_certificate(directory / CA_FILE, authority.certificate)
        report.append(f"wrote {directory / CA_FILE} (new CA, {_until(authority.certificate)})")
    else:
        report.append(f"kept {directory / CA_FILE} ({_until(authority.certificate)})")
    for holder in [*services, OPERATOR]:
        cert_path, key_path = certificate_file(directory, holder), key_file(directory, holder)
        problem = _leaf_problem(cert_path, key_path, authority, holder, when)
        if problem is None:
            kept = x509.load_pem_x509_certificate(cert_path.read_bytes())
            report.append(f"kept {cert_path} ({_until(kept)})")
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _new_leaf(holder, key, authority, when)
        _write_key(key_path, key)
        _write_certificate(cert_path, certificate)
        report.append(f"wrote {cert_path} ({problem}; {_until(certificate)})")
    return report


def _until(certificate: x509.Certificate) -> str:
    return f"valid until {certificate.not_valid_after_utc:%Y-%m-%d}"


def _usable_authority(directory: Path, now: datetime) -> Authority | None:
    try:
        certificate = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
        key = serialization.load_pem_private_key(
            (directory / CA_KEY_FILE).read_bytes(), password=None
        )
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _der(key.public_key()) != _der(
        certificate.public_key()
    ):
        return None
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return None
    if not constraints.value.ca or certificate.not_valid_after_utc < now + RENEW_BEFORE:
        return None
    return Authority(certificate, key)


def _leaf_problem(
    cert_path: Path, key_path: Path, authority: Authority, holder: str, now: datetime
) -> str | None:
    """Why the certificate must be made again; None if it is good."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        return "new"
    except (OSError, ValueError, TypeError):
        return "unreadable"
    try:
        certificate.verify_directly_issued_by(authority.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the current CA"
    if certificate.not_valid_after_utc < now + RENEW_BEFORE:
        return "expiring"
    if _der(key.public_key()) != _der(certificate.public_key()):
        return "key does not match"
    try:
        names = set(
            certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        )
    except x509.ExtensionNotFound:
        names = set()
    if names != expected_names(holder):
        return "other names"
    return None


def _der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_authority(now: datetime) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name("Agora local CA")
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=False, certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(certificate, key)


def _new_leaf(
    holder: str, key: ec.EllipticCurvePrivateKey, authority: Authority, now: datetime
) -> x509.Certificate:
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if holder != OPERATOR:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    names = sorted(expected_names(holder), key=_san_order)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(holder))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + LEAF_VALIDITY, authority.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=True, certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )


def _san_order(name: x509.GeneralName) -> tuple[int, str]:
    kinds = (x509.UniformResourceIdentifier, x509.DNSName, x509.IPAddress)
    return next(i for i, kind in enumerate(kinds) if isinstance(name, kind)), str(name.value)


def _key_usage(*, signing: bool, certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificates,
        crl_sign=certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomically(path, pem, 0o600)


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    _write_atomically(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Writes ``data`` to a new file with ``mode`` (umask aside) and renames it over ``path``."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make certs",
        description="Make the local CA and the certificates of mTLS mode (AGORA_TLS=mtls).",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("AGORA_CERTS_DIR") or DEFAULT_CERTS_DIR),
        help="where to write (default: $AGORA_CERTS_DIR, else var/certs)",
    )
    parser.add_argument(
        "--force", action="store_true", help="make a new CA and every certificate again"
    )
    args = parser.parse_args(argv)
    try:
        report = ensure_certificates(args.dir, list(DEFAULT_PORTS), force=args.force)
    except OSError as error:
        print(f"certs: cannot write to {args.dir}: {error}", file=sys.stderr)
        return 1
    for line in report:
        print(f"certs: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
