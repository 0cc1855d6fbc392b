"""Mutual TLS (``AGORA_TLS=mtls``): credentials from certificate files, callers from certificates.

``make certs`` (``scripts/certs.py``) makes a local CA and, signed by it, a certificate for
every service and one for the operator (people and tools). Each certificate names its
holder by a SPIFFE ID, its only URI SAN: ``spiffe://agora.local/service/<name>`` for a
service, ``spiffe://agora.local/operator`` for the operator. In mTLS mode::

    tls = settings.tls                                   # runtime.config.TlsSettings
    server.add_secure_port(address, server_credentials(tls))
    clients = ClientFactory()                            # default_channel_credentials()

- A server admits only clients that present a certificate the CA signed: a plaintext
  client, one without a certificate or one whose certificate another CA signed fails the
  handshake (UNAVAILABLE on its side) and never reaches a handler.
- A client checks the server's certificate against the CA and the address it dials
  (the certificates name ``<service>``, ``localhost``, ``127.0.0.1`` and ``::1``), and
  presents its own certificate.
- :func:`peer_spiffe_id` reads the ID of the verified client certificate from a call's
  auth context; :mod:`runtime.access` turns it into the caller.

Which certificate a :class:`runtime.clients.ClientFactory` presents when it is given no
credentials (:func:`default_channel_credentials`): in a service process, the service's
own (:func:`runtime.server.serve` calls :func:`use_for_clients` before the service is
built); anywhere else (the SDK, a tool), the operator's, as ``AGORA_TLS``,
``AGORA_CERTS_DIR`` and ``AGORA_TLS_CERT``/``_KEY``/``_CA`` say. Without ``AGORA_TLS``
everything stays plaintext.

Files are read and checked when credentials are made from them: each must parse, the key
must belong to the certificate, the certificate must be valid now and signed by the CA.
Any problem is a :class:`runtime.config.ConfigError` naming the files, so a service with
bad certificates exits 2 at start-up instead of failing every handshake later.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from runtime.config import OPERATOR, ConfigError, TlsSettings, load_tls_settings

#: The trust domain of every Agora SPIFFE ID.
TRUST_DOMAIN = "agora.local"
#: The SPIFFE ID of the operator's certificate: people and tools.
OPERATOR_ID = f"spiffe://{TRUST_DOMAIN}/operator"
_SERVICE_ID_PREFIX = f"spiffe://{TRUST_DOMAIN}/service/"
#: What a service name looks like (``orders``, ``catalog``).
SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")


def service_id(name: str) -> str:
    """The SPIFFE ID of service ``name``'s certificate.

    Raises:
        ValueError: if ``name`` is not a service name (lowercase letters, digits, ``-``).
    """
    if not SERVICE_NAME.fullmatch(name) or name == OPERATOR:
        raise ValueError(f"{name!r} is not a service name")
    return _SERVICE_ID_PREFIX + name


def spiffe_id(name: str) -> str:
    """The SPIFFE ID of ``name``'s certificate: the operator's, or service ``name``'s."""
    return OPERATOR_ID if name == OPERATOR else service_id(name)


def service_of(spiffe: str) -> str | None:
    """The service a SPIFFE ID names (``orders``), or None if it names no Agora service."""
    if not spiffe.startswith(_SERVICE_ID_PREFIX):
        return None
    name = spiffe.removeprefix(_SERVICE_ID_PREFIX)
    return name if SERVICE_NAME.fullmatch(name) and name != OPERATOR else None


def peer_spiffe_id(auth_context: Mapping[str, Iterable[bytes]]) -> str | None:
    """The SPIFFE ID of the call's verified client certificate; None without one.

    gRPC sets ``peer_spiffe_id`` only for a certificate verified in the TLS handshake
    whose only URI SAN is a well-formed SPIFFE ID; a certificate with several URI SANs
    names nobody.
    """
    if list(auth_context.get("transport_security_type", ())) != [b"ssl"]:
        return None
    values = list(auth_context.get("peer_spiffe_id", ()))
    if len(values) != 1:
        return None
    try:
        return values[0].decode("ascii")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM bytes of a :class:`~runtime.config.TlsSettings`, checked."""

    certificate_chain: bytes
    private_key: bytes
    root_certificates: bytes


def read_material(tls: TlsSettings, now: datetime | None = None) -> TlsMaterial:
    """Reads and checks the files ``tls`` names.

    Raises:
        ConfigError: naming each file that cannot be read or parsed, a key that does not
            belong to the certificate, a certificate that is not valid at ``now`` (default:
            the current time) or that the CA did not sign.
    """
    problems: list[str] = []
    raw: dict[Path, bytes] = {}
    for path in (tls.cert, tls.key, tls.ca):
        try:
            raw[path] = path.read_bytes()
        except OSError as error:
            problems.append(f"cannot read {path}: {error.strerror or error}")
    if problems:
        raise ConfigError("unusable TLS files: " + "; ".join(problems))
    chain = _certificates(raw[tls.cert], tls.cert, problems)
    authorities = _certificates(raw[tls.ca], tls.ca, problems)
    try:
        key = serialization.load_pem_private_key(raw[tls.key], password=None)
    except (ValueError, TypeError):
        problems.append(f"{tls.key} holds no unencrypted PEM private key")
        key = None
    if chain:
        leaf = chain[0]
        when = now or datetime.now(UTC)
        if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
            problems.append(
                f"{tls.cert} is valid from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now (`make certs` renews it)"
            )
        if key is not None and _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
            problems.append(f"{tls.key} is not the key of the certificate {tls.cert}")
        if authorities and not any(_issued_by(leaf, issuer) for issuer in (*chain, *authorities)):
            problems.append(f"{tls.cert} is not signed by the CA {tls.ca} (or its own chain)")
    if problems:
        raise ConfigError("unusable TLS files: " + "; ".join(problems))
    return TlsMaterial(raw[tls.cert], raw[tls.key], raw[tls.ca])


def _certificates(data: bytes, path: Path, problems: list[str]) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        problems.append(f"{path} holds no PEM certificate")
        return []


def _public_bytes(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate is issuer:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """A server's credentials: its certificate; clients must present one the CA signed.

    Raises:
        ConfigError: as :func:`read_material` does.
    """
    material = read_material(tls)
    return grpc.ssl_server_credentials(
        [(material.private_key, material.certificate_chain)],
        root_certificates=material.root_certificates,
        require_client_auth=True,
    )


def channel_credentials(tls: TlsSettings | None) -> grpc.ChannelCredentials | None:
    """A client's credentials for ``tls``: trust the CA, present the certificate; None for
    plaintext.

    Raises:
        ConfigError: as :func:`read_material` does.
    """
    if tls is None:
        return None
    material = read_material(tls)
    return grpc.ssl_channel_credentials(
        root_certificates=material.root_certificates,
        private_key=material.private_key,
        certificate_chain=material.certificate_chain,
    )


@dataclass(frozen=True)
class _ClientTls:
    settings: TlsSettings | None


_client_tls: contextvars.ContextVar[_ClientTls | None] = contextvars.ContextVar(
    "agora_client_tls", default=None
)


def use_for_clients(tls: TlsSettings | None) -> None:
    """Makes ``tls`` what :func:`default_channel_credentials` uses in this context (a service
    process's: its own certificate, or plaintext), instead of the operator's from the
    environment. :func:`runtime.server.serve` calls it before it builds the service."""
    _client_tls.set(_ClientTls(tls))


def default_channel_credentials(
    environ: Mapping[str, str] | None = None,
) -> grpc.ChannelCredentials | None:
    """The credentials of a :class:`runtime.clients.ClientFactory` given none.

    Inside a service process those of its own settings (see :func:`use_for_clients`);
    elsewhere the operator's as ``environ`` (default: the process environment) says;
    None (plaintext) unless ``AGORA_TLS=mtls``.

    Raises:
        ConfigError: if the TLS settings or their files are unusable.
    """
    chosen = _client_tls.get()
    if chosen is not None:
        return channel_credentials(chosen.settings)
    env = os.environ if environ is None else environ
    return channel_credentials(load_tls_settings(OPERATOR, env))
