"""Certificates for mTLS tests, made by the same script as ``make certs``::

make_certs(tmp_path)                       # scripts/certs.py --dir tmp_path
env = tls_env(tmp_path)                    # AGORA_TLS=mtls, AGORA_CERTS_DIR=tmp_path
channel = grpc.aio.secure_channel(address, credentials(tmp_path, "orders"))
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime.config import CA_FILE, OPERATOR, TlsSettings
from runtime.tls import channel_credentials
from tests.support.processes import REPO

CERTS_PY = REPO / "scripts" / "certs.py"
#: Bound on one run of the script.
CERTS_TIMEOUT_S = 60.0


def make_certs(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs ``scripts/certs.py --dir directory [args]`` and asserts it succeeded."""
    completed = subprocess.run(
        [sys.executable, str(CERTS_PY), "--dir", str(directory), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=CERTS_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def tls_env(directory: Path) -> dict[str, str]:
    """The environment of a process in mTLS mode with the certificates in ``directory``."""
    return {"AGORA_TLS": "mtls", "AGORA_CERTS_DIR": str(directory)}


def tls_files(directory: Path, holder: str = OPERATOR) -> TlsSettings:
    """The certificate, key and CA of ``holder`` (a service, or the operator)."""
    return TlsSettings.in_directory(directory, holder)


def credentials(directory: Path, holder: str = OPERATOR) -> grpc.ChannelCredentials:
    """Client credentials presenting ``holder``'s certificate and trusting the CA."""
    made = channel_credentials(tls_files(directory, holder))
    assert made is not None
    return made


def issue_stranger(directory: Path, name: str, uris: list[str]) -> TlsSettings:
    """A client certificate the CA in ``directory`` signs, with the URI SANs ``uris`` (it
    names no Agora holder unless they say so); written as ``<name>.pem`` next to the others."""
    authority = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
    authority_key = serialization.load_pem_private_key(
        (directory / "ca-key.pem").read_bytes(), password=None
    )
    assert isinstance(authority_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri) for uri in uris]),
            critical=False,
        )
    certificate = builder.sign(authority_key, hashes.SHA256())
    files = tls_files(directory, name)
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files
