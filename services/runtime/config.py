"""Typed settings read from the environment when asked for, never at import time.

Every service process reads the same variables (``AGORA_PORT``, ``DATABASE_URL``, ...);
the launcher behind ``make run`` and the Kubernetes manifests set them per process.
Bad values fail start-up with one message that lists every problem::

    settings = load_server_settings("catalog")

Tools and the SDK read only the transport settings, as the operator::

    tls = load_tls_settings(OPERATOR)  # None: plaintext (AGORA_TLS unset or off)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

#: The port each service listens on by default, and where peers look for it.
DEFAULT_PORTS: dict[str, int] = {
    "identity": 50051,
    "catalog": 50052,
    "inventory": 50053,
    "orders": 50054,
    "payments": 50055,
    "notifications": 50056,
}

#: Where ``make certs`` writes the CA and the certificates, and where mTLS mode looks for
#: them unless told otherwise (``AGORA_CERTS_DIR``; relative to the working directory).
DEFAULT_CERTS_DIR = Path("var/certs")
#: The name under which people and tools (grpcurl, the SDK, the launcher) hold a
#: certificate in mTLS mode; a service holds one under its own name.
OPERATOR = "operator"
#: The CA certificate's file in the certificates directory (its key is ``ca-key.pem``).
CA_FILE = "ca.pem"
#: The values ``AGORA_TLS`` accepts: plaintext, or mutual TLS.
TLS_MODES = ("off", "mtls")

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
T = TypeVar("T")


class ConfigError(Exception):
    """One or more environment variables have unusable values."""


def certificate_file(directory: Path, name: str) -> Path:
    """Where the certificate of ``name`` (a service, or :data:`OPERATOR`) is in ``directory``."""
    return directory / f"{name}.pem"


def key_file(directory: Path, name: str) -> Path:
    """Where the private key of ``name``'s certificate is in ``directory``."""
    return directory / f"{name}-key.pem"


@dataclass(frozen=True)
class TlsSettings:
    """Mutual TLS (``AGORA_TLS=mtls``): the certificate a process presents and the CA it trusts.

    A service presents its certificate both as a server and as a client of its peers; it
    admits only peers whose certificate the CA signed. Read by :func:`load_tls_settings`.
    """

    #: PEM certificate, leaf first (``AGORA_TLS_CERT``, default
    #: ``<AGORA_CERTS_DIR>/<name>.pem``).
    cert: Path
    #: PEM private key of the certificate (``AGORA_TLS_KEY``, default
    #: ``<AGORA_CERTS_DIR>/<name>-key.pem``).
    key: Path
    #: PEM certificate of the CA that signs every Agora certificate (``AGORA_TLS_CA``,
    #: default ``<AGORA_CERTS_DIR>/ca.pem``).
    ca: Path

    @classmethod
    def in_directory(cls, directory: Path, name: str) -> TlsSettings:
        """The files ``make certs`` writes for ``name`` into ``directory``."""
        return cls(
            certificate_file(directory, name), key_file(directory, name), directory / CA_FILE
        )


@dataclass(frozen=True)
class ServerSettings:
    """How one service process listens, stores its data and shuts down."""

    service: str
    #: Interface to bind (``AGORA_HOST``, default ``127.0.0.1``; ``0.0.0.0`` in containers).
    host: str
    #: TCP port (``AGORA_PORT``, default from :data:`DEFAULT_PORTS`; 0 picks a free one).
    port: int
    #: Directory for embedded state such as the SQLite file (``AGORA_DATA_DIR``, default ``var``).
    data_dir: Path
    #: SQLAlchemy async URL (``DATABASE_URL``); default ``sqlite+aiosqlite:///<data_dir>/<service>.db``.
    database_url: str
    #: Apply pending migrations at start-up (``AGORA_AUTO_MIGRATE``, default true).
    auto_migrate: bool
    #: ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR`` (``AGORA_LOG_LEVEL``, default ``INFO``).
    log_level: str
    #: Seconds in-flight calls get to finish after SIGTERM (``AGORA_GRACE_SECONDS``, default 10).
    grace_seconds: float
    #: Calls handled at once before new ones are shed with RESOURCE_EXHAUSTED
    #: (``AGORA_MAX_CONCURRENT_RPCS``, default 1000).
    max_concurrent_rpcs: int
    #: Seconds between readiness probes of the database (``AGORA_READINESS_INTERVAL``, default 2).
    readiness_interval: float
    #: Largest request or response message in bytes; a bigger request is refused with
    #: RESOURCE_EXHAUSTED before it is read (``AGORA_MAX_MESSAGE_BYTES``, default 4 MiB).
    max_message_bytes: int = 4 * 1024 * 1024
    #: Calls per second each caller may make to a public RPC (``AGORA_RATE_LIMIT_PER_SECOND``,
    #: default 50; 0 turns the limit off), in bursts of up to ``AGORA_RATE_LIMIT_BURST``
    #: calls (default 100).
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    #: A call from this machine without an access token is the local operator (a service
    #: with the admin role), so plaintext local use needs no tokens
    #: (``AGORA_AUTH_TRUST_LOOPBACK``, default true in plaintext). Calls from elsewhere are
    #: never trusted that way; turn it off to enforce every rule on loopback too. Always
    #: off in mTLS mode, where certificates say who calls (setting it true there is an error).
    trust_loopback: bool = True
    #: Mutual TLS with the service's certificate (``AGORA_TLS=mtls``); None: plaintext
    #: (``AGORA_TLS=off``, the default).
    tls: TlsSettings | None = None


def load_server_settings(service: str, environ: Mapping[str, str] | None = None) -> ServerSettings:
    """Reads the settings of ``service`` from ``environ`` (default: the process environment).

    Raises:
        ConfigError: naming every variable whose value is unusable.
    """
    env = os.environ if environ is None else environ
    reader = EnvReader(env)
    data_dir = Path(env.get("AGORA_DATA_DIR", "var"))
    tls = _tls_settings(service, reader)
    settings = ServerSettings(
        service=service,
        host=env.get("AGORA_HOST", "127.0.0.1"),
        port=reader.get("AGORA_PORT", DEFAULT_PORTS.get(service, 0), port),
        data_dir=data_dir,
        database_url=reader.get(
            "DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / service}.db", _database_url
        ),
        auto_migrate=reader.get("AGORA_AUTO_MIGRATE", True, boolean),
        log_level=reader.get("AGORA_LOG_LEVEL", "INFO", _log_level),
        grace_seconds=reader.get("AGORA_GRACE_SECONDS", 10.0, non_negative_float),
        max_concurrent_rpcs=reader.get("AGORA_MAX_CONCURRENT_RPCS", 1000, positive_int),
        readiness_interval=reader.get("AGORA_READINESS_INTERVAL", 2.0, positive_float),
        max_message_bytes=reader.get("AGORA_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, positive_int),
        rate_limit_per_second=reader.get("AGORA_RATE_LIMIT_PER_SECOND", 50.0, non_negative_float),
        rate_limit_burst=reader.get("AGORA_RATE_LIMIT_BURST", 100, positive_int),
        trust_loopback=_trust_loopback(reader, tls),
        tls=tls,
    )
    reader.raise_if_invalid()
    return settings


def load_tls_settings(name: str, environ: Mapping[str, str] | None = None) -> TlsSettings | None:
    """Reads how ``name`` (a service, or :data:`OPERATOR`) talks to its peers.

    Returns None for plaintext (``AGORA_TLS`` unset or ``off``); with ``AGORA_TLS=mtls``,
    the certificate, key and CA files, which must exist (their contents are checked when
    credentials are made from them, by :mod:`runtime.tls`).

    Raises:
        ConfigError: naming an unusable ``AGORA_TLS`` or every file that is missing.
    """
    reader = EnvReader(os.environ if environ is None else environ)
    tls = _tls_settings(name, reader)
    reader.raise_if_invalid()
    return tls


def _tls_settings(name: str, reader: EnvReader) -> TlsSettings | None:
    if reader.get("AGORA_TLS", "off", _tls_mode) == "off":
        return None
    directory = reader.get("AGORA_CERTS_DIR", DEFAULT_CERTS_DIR, Path)
    defaults = TlsSettings.in_directory(directory, name)
    tls = TlsSettings(
        cert=reader.get("AGORA_TLS_CERT", defaults.cert, Path),
        key=reader.get("AGORA_TLS_KEY", defaults.key, Path),
        ca=reader.get("AGORA_TLS_CA", defaults.ca, Path),
    )
    missing = [
        f"{path} ({variable})"
        for variable, path in (
            ("AGORA_TLS_CERT", tls.cert),
            ("AGORA_TLS_KEY", tls.key),
            ("AGORA_TLS_CA", tls.ca),
        )
        if not path.is_file()
    ]
    if missing:
        reader.add_error(
            f"AGORA_TLS=mtls needs files that do not exist: {', '.join(missing)} "
            f"(`make certs` makes them in {directory}; AGORA_CERTS_DIR says where they are)"
        )
    return tls


def _trust_loopback(reader: EnvReader, tls: TlsSettings | None) -> bool:
    trusted = reader.get("AGORA_AUTH_TRUST_LOOPBACK", tls is None, boolean)
    if trusted and tls is not None:
        reader.add_error(
            "AGORA_AUTH_TRUST_LOOPBACK is on with AGORA_TLS=mtls: in mTLS mode a caller is "
            "known by its certificate, never by its address; leave it unset"
        )
        return False
    return trusted


def peer_address(service: str, environ: Mapping[str, str] | None = None) -> str:
    """Where to reach ``service``: ``AGORA_<SERVICE>_ADDR``, else its default port on loopback."""
    env = os.environ if environ is None else environ
    return env.get(f"AGORA_{service.upper()}_ADDR", f"127.0.0.1:{DEFAULT_PORTS[service]}")


class EnvReader:
    """Parses variables one by one and collects every error instead of stopping at the first.

    Services use it for settings of their own::

        reader = EnvReader(os.environ)
        interval = reader.get("INVENTORY_SWEEP_INTERVAL_SECONDS", 2.0, positive_float)
        reader.raise_if_invalid()
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._errors: list[str] = []

    def get(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self._env.get(name)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except ValueError as error:
            self._errors.append(f"{name}={raw!r}: {error}")
            return default

    def add_error(self, message: str) -> None:
        """Records a problem that is not one variable's value (files missing, a conflict)."""
        self._errors.append(message)

    def raise_if_invalid(self) -> None:
        if self._errors:
            raise ConfigError("invalid configuration: " + "; ".join(self._errors))


def port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:  # also rejects NaN
        raise ValueError("must be a number of seconds >= 0")
    return value


def positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a number of seconds > 0")
    return value


def boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError("must be one of " + ", ".join(_LOG_LEVELS))
    return level


def _tls_mode(raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in TLS_MODES:
        raise ValueError("must be one of " + ", ".join(TLS_MODES))
    return mode


def _database_url(raw: str) -> str:
    if not raw.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql://")):
        raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    # A plain postgresql:// URL (as most operators write it) uses the asyncpg driver.
    if raw.startswith("postgresql://"):
        return "postgresql+asyncpg://" + raw.removeprefix("postgresql://")
    return raw
