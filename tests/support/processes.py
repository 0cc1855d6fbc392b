"""Real service processes for end-to-end tests: free ports, start, health, stop, grpcurl.

Everything here is bounded: every wait has a timeout, and every process started is
stopped again (SIGTERM, then SIGKILL) when its ``with`` block ends, even after a failure.
On Linux the kernel also SIGTERMs a started process if the test run itself dies::

    with running_service("catalog", tmp_path) as catalog:
        grpcurl = Grpcurl(GRPCURL, catalog.address)
        assert grpcurl.call("grpc.health.v1.Health/Check") == {"status": "SERVING"}
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.config import DEFAULT_PORTS, TlsSettings

REPO = Path(__file__).resolve().parents[2]
GRPCURL = REPO / ".bin" / "grpcurl"
SERVICES_DIR = REPO / "services"

#: Bound on a service becoming SERVING after it was started.
READY_TIMEOUT_S = 30.0
#: Bound on a service exiting after SIGTERM (its grace period is shorter in tests).
STOP_TIMEOUT_S = 30.0
#: Bound on one grpcurl run.
GRPCURL_TIMEOUT_S = 30.0

_PR_SET_PDEATHSIG = 1
#: A broker address nothing listens on (port 1 is privileged and unused on loopback).
NO_BROKER = "nats://127.0.0.1:1"


class ProcessFailed(AssertionError):
    """A process exited or missed a deadline; the message carries its last output."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports (held open together while they are picked)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((host, 0))
            ports.append(int(probe.getsockname()[1]))
        return ports


def implemented_services() -> list[str]:
    """Services with a ``__main__.py``, in the order of the runtime's DEFAULT_PORTS."""
    return [name for name in DEFAULT_PORTS if (SERVICES_DIR / name / "__main__.py").is_file()]


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``AGORA_*``, ``DATABASE_URL`` or ``NATS_URL``,
    plus ``extra``.

    A developer's own settings must not leak into the processes a test starts. Unless a
    test passes its own broker, ``NATS_URL`` points where nothing listens, so a test never
    publishes into a developer's running ``make run``.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGORA_") and k not in ("DATABASE_URL", "NATS_URL")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["NATS_URL"] = NO_BROKER
    env.update(extra or {})
    return env


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGTERM the child when the test run dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Polls ``condition`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def stop_process(
    process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S
) -> int:
    """Sends ``sig`` and waits up to ``timeout``; kills the process if it is still there.

    Returns the exit status (negative for a signal, as :mod:`subprocess` reports it).
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


# --- /proc: is a pid (still) the process we saw? -------------------------------------------


@dataclass(frozen=True)
class ProcInfo:
    """What ``/proc/<pid>/stat`` says about a process."""

    pid: int
    state: str
    ppid: int
    #: Clock ticks after boot at which the process started: tells a reused pid apart.
    start_ticks: int


def proc_info(pid: int) -> ProcInfo | None:
    """The process with ``pid`` now, or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    rest = stat[stat.rindex(")") + 2 :].split()
    return ProcInfo(pid=pid, state=rest[0], ppid=int(rest[1]), start_ticks=int(rest[19]))


def proc_cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` (empty if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def still_running(seen: ProcInfo) -> bool:
    """True if the process ``seen`` earlier runs yet (not gone, not a zombie, pid not reused)."""
    now = proc_info(seen.pid)
    return now is not None and now.start_ticks == seen.start_ticks and now.state not in "ZX"


# --- gRPC health ---------------------------------------------------------------------------

_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


def health_status(
    address: str,
    service: str = "",
    timeout: float = 2.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> str:
    """The health ``Check`` status name for ``service``, or the gRPC code name on failure.

    ``credentials`` for a service in mTLS mode (:func:`tests.support.certs.credentials`);
    plaintext without.
    """
    channel = (
        grpc.insecure_channel(address, _FAST_RECONNECT)
        if credentials is None
        else grpc.secure_channel(address, credentials, _FAST_RECONNECT)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return str(code.name)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


# --- one service process -------------------------------------------------------------------


@dataclass
class ServiceProcess:
    """A service started with ``python -m <name>``; its output goes to ``log_path``."""

    name: str
    address: str
    process: subprocess.Popen[bytes]
    log_path: Path
    #: What the test's health checks present: None for plaintext, else mTLS credentials.
    credentials: grpc.ChannelCredentials | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def log_entries(self) -> list[dict[str, Any]]:
        """The JSON log lines parsed (other lines, such as a traceback, are left out)."""
        entries = []
        for line in self.log_lines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def logged(self, message: str) -> bool:
        return any(entry.get("message") == message for entry in self.log_entries())

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_lines()[-lines:]) or "(no output)"

    def wait_for_log(self, message: str, timeout: float) -> None:
        """Waits until a JSON log line has ``message``.

        Raises:
            ProcessFailed: on timeout.
        """
        if not wait_until(lambda: self.logged(message), timeout):
            raise ProcessFailed(
                f"{self.name} did not log {message!r} within {timeout}s:\n{self.tail()}"
            )

    def wait_until_serving(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Waits until health ``Check`` says SERVING.

        Raises:
            ProcessFailed: if the process exits or the deadline passes first.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ProcessFailed(
                    f"{self.name} exited with status {self.process.returncode} before serving:\n"
                    + self.tail()
                )
            if health_status(self.address, timeout=1.0, credentials=self.credentials) == "SERVING":
                return
            if time.monotonic() >= deadline:
                raise ProcessFailed(
                    f"{self.name} was not SERVING within {timeout}s:\n{self.tail()}"
                )
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        return stop_process(self.process, sig, timeout)


def start_service(
    name: str,
    data_dir: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> ServiceProcess:
    """Starts ``python -m <name>`` on ``127.0.0.1:<port>`` with its data in ``data_dir``.

    It does not wait for the service: see :meth:`ServiceProcess.wait_until_serving`, whose
    health checks present ``credentials`` (for a service started with ``AGORA_TLS=mtls``).
    """
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"{name}.log"
    child_env = clean_environment(
        {
            "AGORA_HOST": "127.0.0.1",
            "AGORA_PORT": str(port),
            "AGORA_DATA_DIR": str(data_dir),
            "AGORA_GRACE_SECONDS": "5",
            **(env or {}),
        }
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", name],
            cwd=REPO,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),
        )
    return ServiceProcess(name, f"127.0.0.1:{port}", process, log_path, credentials)


@contextlib.contextmanager
def running_service(
    name: str,
    data_dir: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> Iterator[ServiceProcess]:
    """Starts the service, waits until it is SERVING, and always stops it afterwards."""
    service = start_service(name, data_dir, port=port, env=env, credentials=credentials)
    try:
        service.wait_until_serving()
        yield service
    finally:
        service.stop()


# --- output of a process, read as it comes ----------------------------------------------------


class OutputReader:
    """Collects the lines of a text stream on a thread, so tests can wait for one."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str] | None:
        """The first line matching ``pattern``; None if the stream ends or time runs out."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines:
                    if match := regex.search(line):
                        return match
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


# --- grpcurl -------------------------------------------------------------------------------


@dataclass
class GrpcurlResult:
    """One grpcurl run."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit status {self.returncode}\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class GrpcStatus:
    """A failed call as grpcurl's ``-format-error`` prints it: a ``google.rpc.Status``."""

    code: int
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)

    def detail(self, type_name: str) -> dict[str, Any]:
        """The detail of type ``google.rpc.<type_name>`` (exactly one must be there)."""
        url = f"type.googleapis.com/google.rpc.{type_name}"
        found = [d for d in self.details if d.get("@type") == url]
        assert len(found) == 1, f"expected one {type_name} in {self.details}"
        return found[0]

    @property
    def reason(self) -> str:
        return str(self.detail("ErrorInfo")["reason"])

    @property
    def violated_fields(self) -> list[str]:
        bad_request = self.detail("BadRequest")
        violations = bad_request.get("field_violations") or bad_request.get("fieldViolations")
        return [str(v["field"]) for v in violations or []]


class Grpcurl:
    """Runs the grpcurl binary against one address, discovering APIs by reflection.

    Plaintext, or mutual TLS with ``tls``'s files (``-cacert -cert -key``).
    """

    def __init__(self, binary: Path, address: str, tls: TlsSettings | None = None) -> None:
        self.binary = binary
        self.address = address
        self.tls = tls

    def run(self, *args: str, data: object = None, options: Sequence[str] = ()) -> GrpcurlResult:
        """``grpcurl -plaintext [options] [-d JSON] ADDRESS args...`` (or the TLS flags)."""
        transport = (
            ["-plaintext"]
            if self.tls is None
            else [
                "-cacert",
                str(self.tls.ca),
                "-cert",
                str(self.tls.cert),
                "-key",
                str(self.tls.key),
            ]
        )
        argv = [str(self.binary), *transport, "-max-time", "20", *options]
        if data is not None:
            argv += ["-d", json.dumps(data)]
        argv += [self.address, *args]
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=GRPCURL_TIMEOUT_S, check=False
        )
        return GrpcurlResult(argv, completed.returncode, completed.stdout, completed.stderr)

    def call(self, method: str, data: object = None) -> Any:
        """Calls ``method`` (``pkg.Service/Method``), asserts success, returns the parsed JSON."""
        result = self.run(method, data=data if data is not None else {})
        assert result.returncode == 0, result.describe()
        return result.json()

    def call_error(self, method: str, data: object = None) -> GrpcStatus:
        """Calls ``method``, asserts it fails, and returns the status with its details."""
        result = self.run(method, data=data if data is not None else {}, options=["-format-error"])
        assert result.returncode != 0, result.describe()
        # With -format-error grpcurl prints the status as JSON, on stderr.
        status = json.loads(result.stderr)
        # grpcurl exits with 64 + the status code when a call fails.
        assert result.returncode == 64 + status["code"], result.describe()
        return GrpcStatus(
            int(status["code"]), str(status.get("message", "")), status.get("details", [])
        )
