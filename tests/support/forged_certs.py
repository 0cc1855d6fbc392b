"""Client certificates a server in mTLS mode must refuse, and raw credentials to present them.

    files = issue_expired(certs_dir, "late-operator")   # the operator's SPIFFE ID, right CA,
                                                        # expired yesterday
    creds = presenting(certs_dir / "ca.pem", files.cert, files.key)

:func:`runtime.tls.channel_credentials` checks the files it is given (a valid, CA-signed
certificate), so it cannot present a bad certificate: :func:`presenting` hands the bytes to
gRPC unchecked, trusting the CA given for the server's certificate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime.config import CA_FILE, OPERATOR, TlsSettings
from runtime.tls import spiffe_id
from tests.support.certs import tls_files

#: The CA's key as ``scripts/certs.py`` writes it.
CA_KEY_FILE = "ca-key.pem"


def issue_expired(
    directory: Path,
    name: str,
    holder: str = OPERATOR,
    *,
    expired_for: timedelta = timedelta(days=1),
) -> TlsSettings:
    """A client certificate the CA in ``directory`` signed for ``holder``'s SPIFFE ID, which
    expired ``expired_for`` ago; written as ``<name>.pem`` and ``<name>-key.pem`` there."""
    authority = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
    authority_key = serialization.load_pem_private_key(
        (directory / CA_KEY_FILE).read_bytes(), password=None
    )
    assert isinstance(authority_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    ended = datetime.now(UTC) - expired_for
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ended - timedelta(days=30))
        .not_valid_after(ended)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id(holder))]),
            critical=False,
        )
        .sign(authority_key, hashes.SHA256())
    )
    assert certificate.not_valid_after_utc < datetime.now(UTC)
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


def presenting(
    ca: Path, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """Credentials that trust ``ca`` for the server and present ``cert`` with ``key`` (none
    without them), unchecked."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=None if key is None else key.read_bytes(),
        certificate_chain=None if cert is None else cert.read_bytes(),
    )
