"""What the benchmark and the profiler share: h2load, server processes, seeding, statistics.

Everything here starts real processes on loopback and stops them again: every wait is
bounded, and every process started is stopped in a ``finally`` (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from google.type import money_pb2

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2, catalog_service_pb2_grpc
from agora.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The interpreter running the benchmark (the project's virtualenv under ``make bench``).
PYTHON = sys.executable
HOST = "127.0.0.1"

CATALOG_SERVICE = "agora.catalog.v1.CatalogService"
IDENTITY_SERVICE = "agora.identity.v1.IdentityService"
ECHO_PATH = "/bench.Echo/Echo"
CATEGORY_ID = "bench"

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
CALL_TIMEOUT_S = 10.0
APT_TIMEOUT_S = 600.0
INSTALL_HINT = "apt-get update && apt-get install -y nghttp2-client"


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def interrupt_on_sigterm() -> None:
    """Makes SIGTERM (and a SIGINT that the shell set to be ignored) raise KeyboardInterrupt.

    So a benchmark stopped either way unwinds its ``finally`` blocks and stops its servers.
    """

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


# ---------------------------------------------------------------------------------------------
# h2load


@dataclass(frozen=True)
class Load:
    """How h2load drives one measurement: the same for every case of a run."""

    #: Requests per measured run (h2load ``-n``).
    requests: int
    #: Concurrent HTTP/2 connections (h2load ``-c``).
    clients: int
    #: Concurrent streams per connection (h2load ``-m``).
    streams: int
    #: Requests sent before measuring, on the same server process, and thrown away.
    warmup: int


@dataclass(frozen=True)
class Measurement:
    """One h2load run against one server process."""

    requests: int
    seconds: float
    req_per_s: float
    #: From h2load's "time for request" line.
    mean_ms: float
    max_ms: float
    #: From the per-request log h2load writes with ``--log-file`` (nearest rank).
    p50_ms: float
    p99_ms: float
    #: Server process CPU time (all threads, user + system) per request, in microseconds.
    server_cpu_us: float


def find_h2load(explicit: str | None = None, *, install: bool = True) -> str:
    """Returns the h2load to use; installs Debian's nghttp2-client when missing and allowed.

    Raises:
        BenchError: naming exactly what to install, when h2load is missing and cannot be installed.
    """
    if explicit:
        if shutil.which(explicit) is None:
            raise BenchError(f"h2load not found at {explicit!r}")
        return explicit
    found = shutil.which("h2load")
    if found:
        return found
    if not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError(f"h2load is missing; install Debian's nghttp2-client: {INSTALL_HINT}")
    print(f"h2load is missing; running: {INSTALL_HINT}", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "nghttp2-client"],
    ):
        done = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(
                f"{' '.join(command)} failed ({done.returncode}); install it by hand: "
                f"{INSTALL_HINT}\n{done.stderr[-2000:]}"
            )
    found = shutil.which("h2load")
    if not found:
        raise BenchError(
            f"nghttp2-client installed but h2load is still not on PATH ({INSTALL_HINT})"
        )
    return found


def h2load_version(h2load: str) -> str:
    done = subprocess.run(
        [h2load, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip() or done.stderr.strip()


def grpc_body(message: Message) -> bytes:
    """One uncompressed gRPC frame: a zero flag byte, a 4-byte big-endian length, the message."""
    payload = message.SerializeToString()
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


_FINISHED = re.compile(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx")
_TIME_FOR_REQUEST = re.compile(
    r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)"
)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class H2loadSummary:
    """What h2load prints at the end of a run."""

    total: int
    succeeded: int
    status_2xx: int
    seconds: float
    req_per_s: float
    min_ms: float
    max_ms: float
    mean_ms: float


def parse_h2load_output(text: str) -> H2loadSummary:
    """Parses h2load's closing summary.

    Raises:
        BenchError: when a line is missing (h2load failed, or printed something unexpected).
    """
    finished = _FINISHED.search(text)
    requests = _REQUESTS.search(text)
    status = _STATUS.search(text)
    timing = _TIME_FOR_REQUEST.search(text)
    if not (finished and requests and status and timing):
        raise BenchError(f"cannot read h2load's summary:\n{text[-3000:]}")
    return H2loadSummary(
        total=int(requests.group(1)),
        succeeded=int(requests.group(4)),
        status_2xx=int(status.group(1)),
        seconds=float(finished.group(1)) * _UNIT_MS[finished.group(2)] / 1000.0,
        req_per_s=float(finished.group(3)),
        min_ms=float(timing.group(1)) * _UNIT_MS[timing.group(2)],
        max_ms=float(timing.group(3)) * _UNIT_MS[timing.group(4)],
        mean_ms=float(timing.group(5)) * _UNIT_MS[timing.group(6)],
    )


def read_latencies_ms(log_file: Path) -> list[float]:
    """The per-request latencies in an h2load ``--log-file``, in milliseconds, sorted."""
    latencies: list[float] = []
    for line in log_file.read_text().splitlines():
        columns = line.split("\t")
        if len(columns) >= 3 and columns[2].strip():
            latencies.append(int(columns[2]) / 1000.0)
    latencies.sort()
    return latencies


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in (0, 1]) of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    # round() keeps float noise (0.07 * 100 = 7.000000000000001) from moving the rank.
    rank = math.ceil(round(fraction * len(sorted_values), 9))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def run_h2load(
    h2load: str,
    *,
    port: int,
    path: str,
    body_file: Path,
    requests: int,
    load: Load,
    server_pid: int,
    work_dir: Path,
    headers: Sequence[str] = (),
) -> Measurement:
    """Sends ``requests`` calls of ``path`` with ``body_file`` and measures them.

    ``headers`` are more request headers (``authorization: Bearer ...``), sent with every call.

    Raises:
        BenchError: if h2load fails, or any request did not get an HTTP 200 answer.
    """
    log_file = work_dir / f"h2load-{secrets.token_hex(4)}.tsv"
    command = [
        h2load,
        f"--requests={requests}",
        f"--clients={load.clients}",
        f"--max-concurrent-streams={load.streams}",
        f"--data={body_file}",
        "--header=content-type: application/grpc",
        "--header=te: trailers",
        *(f"--header={header}" for header in headers),
        f"--log-file={log_file}",
        f"http://{HOST}:{port}{path}",
    ]
    # Generous: even 100 calls/s must finish; h2load itself has no overall deadline.
    timeout = 120.0 + requests / 100.0
    cpu_before = process_cpu_seconds(server_pid)
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        raise BenchError(f"h2load did not finish within {timeout:.0f}s") from expired
    cpu_after = process_cpu_seconds(server_pid)
    if done.returncode != 0:
        raise BenchError(f"h2load failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    summary = parse_h2load_output(done.stdout)
    if summary.succeeded != requests or summary.status_2xx != requests:
        raise BenchError(
            f"only {summary.succeeded} of {requests} requests succeeded "
            f"({summary.status_2xx} HTTP 2xx):\n{done.stdout}"
        )
    latencies = read_latencies_ms(log_file)
    log_file.unlink()
    if len(latencies) != requests:
        raise BenchError(f"h2load logged {len(latencies)} requests, expected {requests}")
    return Measurement(
        requests=requests,
        seconds=summary.seconds,
        req_per_s=summary.req_per_s,
        mean_ms=summary.mean_ms,
        max_ms=summary.max_ms,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        server_cpu_us=(cpu_after - cpu_before) / requests * 1e6,
    )


# ---------------------------------------------------------------------------------------------
# Processes


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(stat_path: Path) -> list[str]:
    text = stat_path.read_text()
    # The command name (field 2) is in parentheses and may contain spaces.
    return text[text.rindex(")") + 2 :].split()


def cpu_split_of(stat_path: Path) -> tuple[float, float]:
    """User and system CPU seconds in a /proc ``stat`` file (of a process or of one thread)."""
    fields = _stat_fields(stat_path)
    # Fields 14 and 15 (utime, stime) of proc(5); the list starts at field 3.
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS


def cpu_seconds_of(stat_path: Path) -> float:
    """User plus system CPU seconds in a /proc ``stat`` file (of a process or of one thread)."""
    return sum(cpu_split_of(stat_path))


def context_switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches so far of the live threads of ``pid``."""
    voluntary = involuntary = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary


def process_cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far, ended threads included, in seconds."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each live thread of ``pid``: native id -> (comm, seconds)."""
    found: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            seconds = cpu_seconds_of(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended while we looked
        found[int(task.name)] = (name, seconds)
    return found


@dataclass
class Server:
    """A server process started by :func:`server_process`."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, a bounded wait, then SIGKILL and another bounded wait."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def server_process(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    find_port: Callable[[int, str], int | None],
    env: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> Iterator[Server]:
    """Starts ``argv`` with stdout and stderr in ``log_path`` and yields it once it listens.

    ``find_port`` gets the pid and the log written so far, and returns the port once the
    server listens. The process is stopped when the block exits, however it exits.
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            cwd=REPO_ROOT,
            env=dict(os.environ if env is None else env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own Ctrl-C handling stops it, in order
        )
    try:
        deadline = time.monotonic() + timeout
        port: int | None = None
        while port is None:
            if process.poll() is not None:
                raise BenchError(
                    f"{name} exited ({process.returncode}) while starting:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not listen within {timeout:.0f}s:\n{_tail(log_path)}")
            time.sleep(0.05)
            port = find_port(process.pid, log_path.read_text(errors="replace"))
        yield Server(name=name, process=process, port=port, log_path=log_path)
    finally:
        stop_process(process)


_ECHO_LISTENING = re.compile(r"listening on [^\s:]+:(\d+)")


def echo_port(pid: int, log: str) -> int | None:
    found = _ECHO_LISTENING.search(log)
    return int(found.group(1)) if found else None


def listening_port(pid: int) -> int | None:
    """The TCP port process ``pid`` listens on, once it does (found through /proc).

    The catalog logs its port at INFO only, so this also works at ``AGORA_LOG_LEVEL=WARNING``.
    """
    inodes: set[str] = set()
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                columns = row.split()
                # local_address is HEXIP:HEXPORT; state 0A is LISTEN; column 10 is the inode.
                if columns[3] == "0A" and columns[9] in inodes:
                    return int(columns[1].rsplit(":", 1)[1], 16)
    return None


@contextlib.contextmanager
def echo_server(work_dir: Path) -> Iterator[Server]:
    """The baseline server of ``bench/echo_server.py`` on a free loopback port."""
    argv = [PYTHON, str(REPO_ROOT / "bench" / "echo_server.py"), "--host", HOST, "--port", "0"]
    with server_process(
        "echo server", argv, log_path=work_dir / "echo.log", find_port=echo_port
    ) as server:
        check_echo(server.port)
        yield server


def catalog_env(
    data_dir: Path, *, database_url: str | None, log_level: str, extra: Mapping[str, str] = {}
) -> dict[str, str]:
    """The environment of a service process (catalog, identity) on a free loopback port with
    its own data dir: the AGORA_* settings of this shell are left out, ``extra`` added."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AGORA_") and key != "DATABASE_URL"
    }
    env.update(
        AGORA_HOST=HOST,
        AGORA_PORT="0",
        AGORA_DATA_DIR=str(data_dir),
        AGORA_LOG_LEVEL=log_level,
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


@contextlib.contextmanager
def catalog_server(
    data_dir: Path,
    *,
    database_url: str | None,
    log_level: str = "INFO",
    argv: Sequence[str] | None = None,
    log_name: str = "catalog.log",
    env: Mapping[str, str] = {},
) -> Iterator[Server]:
    """A real catalog process (``python -m catalog``, or ``argv``) that answers health checks.

    ``env`` adds ``AGORA_*`` settings (access control, identity's address) to the defaults.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with server_process(
        "catalog",
        argv or [PYTHON, "-m", "catalog"],
        log_path=data_dir / log_name,
        find_port=lambda pid, _log: listening_port(pid),
        env=catalog_env(data_dir, database_url=database_url, log_level=log_level, extra=env),
    ) as server:
        wait_serving(server.port)
        yield server


#: How long the access tokens of the benchmark's identity live: longer than any run, so a
#: token cannot expire mid-run (on a public method an expired token is ignored, not
#: refused, which would silently change what is measured; the run checks it did not).
BENCH_TOKEN_TTL_S = 6 * 3600


@contextlib.contextmanager
def identity_server(data_dir: Path) -> Iterator[Server]:
    """A real identity process (``python -m identity``) with its own SQLite data dir.

    Its access tokens live :data:`BENCH_TOKEN_TTL_S`; the rest is identity's defaults.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    env = catalog_env(
        data_dir,
        database_url=None,
        log_level="INFO",
        extra={"IDENTITY_ACCESS_TOKEN_TTL_SECONDS": str(BENCH_TOKEN_TTL_S)},
    )
    with server_process(
        "identity",
        [PYTHON, "-m", "identity"],
        log_path=data_dir / "identity.log",
        find_port=lambda pid, _log: listening_port(pid),
        env=env,
    ) as server:
        wait_serving(server.port, IDENTITY_SERVICE)
        yield server


# ---------------------------------------------------------------------------------------------
# Calls through the generated client


def wait_serving(
    port: int, service: str = CATALOG_SERVICE, timeout: float = START_TIMEOUT_S
) -> None:
    """Waits until the health check of ``service`` (the catalog's) answers SERVING."""
    from grpc_health.v1 import health_pb2

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        while True:
            try:
                answer = check(health_pb2.HealthCheckRequest(service=service), timeout=2.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{service} was not SERVING within {timeout:.0f}s")
            time.sleep(0.1)


def check_echo(port: int) -> None:
    """Checks that the echo server answers a call with its request bytes."""
    probe = b"\x0a\x05hello"
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_S)
        echo = channel.unary_unary(ECHO_PATH, request_serializer=None, response_deserializer=None)
        answer = echo(probe, timeout=CALL_TIMEOUT_S)
    if answer != probe:
        raise BenchError(f"the echo server answered {answer!r} to {probe!r}")


def product_name(index: int) -> str:
    return f"products/p{index:04d}"


def seed_catalog(port: int, products: int) -> list[str]:
    """Creates one category and ``products`` products through the generated client."""
    names: list[str] = []
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        stub.CreateCategory(
            catalog_service_pb2.CreateCategoryRequest(
                category_id=CATEGORY_ID,
                category=catalog_pb2.Category(display_name="Benchmark goods"),
            ),
            timeout=CALL_TIMEOUT_S,
        )
        for index in range(products):
            name = product_name(index)
            stub.CreateProduct(
                catalog_service_pb2.CreateProductRequest(
                    product_id=name.removeprefix("products/"),
                    product=catalog_pb2.Product(
                        display_name=f"Benchmark product {index}",
                        description=f"Product number {index}, made for the benchmark.",
                        category=f"categories/{CATEGORY_ID}",
                        price=money_pb2.Money(
                            currency_code="EUR", units=10 + index % 90, nanos=990_000_000
                        ),
                    ),
                ),
                timeout=CALL_TIMEOUT_S,
            )
            names.append(name)
    return names


def get_product_request(names: Sequence[str]) -> catalog_service_pb2.GetProductRequest:
    """Asks for the product in the middle of the seeded ones."""
    return catalog_service_pb2.GetProductRequest(name=names[len(names) // 2])


def list_products_request(page_size: int = 50) -> catalog_service_pb2.ListProductsRequest:
    return catalog_service_pb2.ListProductsRequest(page_size=page_size)


def check_catalog_calls(
    port: int,
    get: catalog_service_pb2.GetProductRequest,
    listing: catalog_service_pb2.ListProductsRequest,
) -> None:
    """Checks, once, that the request bodies h2load will send get the expected answers.

    h2load counts any HTTP 200 as a success, gRPC errors included, so this is what shows
    the load measures real answers.
    """
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        got = stub.GetProduct(get, timeout=CALL_TIMEOUT_S)
        if got.product.name != get.name:
            raise BenchError(f"GetProduct({get.name}) answered {got.product.name!r}")
        page = stub.ListProducts(listing, timeout=CALL_TIMEOUT_S)
        if len(page.products) != listing.page_size or not page.next_page_token:
            raise BenchError(
                f"ListProducts(page_size={listing.page_size}) answered "
                f"{len(page.products)} products, next_page_token={page.next_page_token!r}"
            )


@dataclass(frozen=True)
class LoggedCall:
    """One line of a service's access log: a call's status code, reason and handler time."""

    code: str
    reason: str
    #: From the handler's start to its end, error answer included (``duration_ms``).
    duration_ms: float


def access_log_calls(log: str) -> list[LoggedCall]:
    """The access-log lines of ``log`` (one line per call at INFO), in order."""
    calls: list[LoggedCall] = []
    for line in log.splitlines():
        if '"agora.access"' not in line:
            continue
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            calls.append(
                LoggedCall(
                    str(entry.get("code", "?")),
                    str(entry.get("reason", "")),
                    float(entry.get("duration_ms", "nan")),
                )
            )
    return calls


def access_log_codes(log: str) -> dict[str, int]:
    """Counts the access-log lines of ``log`` by status code (one line per call at INFO)."""
    codes: dict[str, int] = {}
    for call in access_log_calls(log):
        codes[call.code] = codes.get(call.code, 0) + 1
    return codes


def check_served_ok(server: Server, log_offset: int, expected: int, log_level: str) -> None:
    """Checks the catalog's own log since ``log_offset``: every call OK, nothing logged as an error.

    At INFO the access log must show ``expected`` OK calls and no other code; at higher
    levels there is no access log, so only the absence of ERROR lines can be checked.
    """
    log = server.log_since(log_offset)
    if '"level": "ERROR"' in log:
        raise BenchError(f"the catalog logged errors under load:\n{log[-3000:]}")
    if log_level in ("DEBUG", "INFO"):
        codes = access_log_codes(log)
        if codes.get("OK", 0) < expected or set(codes) - {"OK"}:
            raise BenchError(f"the catalog's access log shows {codes}, expected {expected} OK")


@dataclass(frozen=True)
class LimiterRun:
    """How the catalog answered one run of calls past a caller's rate limit (its access log).

    The handler times are the access log's ``duration_ms``: inside the catalog, from the
    interceptor's start to the handler's end, the error answer included. h2load cannot
    split its own latencies by gRPC status: it sees an HTTP 200 either way.
    """

    calls: int
    answered: int
    refused: int
    refused_p50_ms: float | None
    refused_p99_ms: float | None
    answered_p50_ms: float | None
    answered_p99_ms: float | None

    @property
    def refused_share(self) -> float:
        return self.refused / self.calls


def _percentile_or_none(values: Sequence[float], fraction: float) -> float | None:
    return percentile(sorted(values), fraction) if values else None


def check_rate_limited(
    server: Server,
    log_offset: int,
    expected: int,
    *,
    seconds: float,
    rate: float,
    burst: int,
) -> LimiterRun:
    """Checks the catalog's access log after ``expected`` calls of one caller past its limit.

    Every call must be OK or RESOURCE_EXHAUSTED with reason ``RATE_LIMITED``, and no more
    may be answered than a token bucket of ``burst`` refilled at ``rate`` a second allows
    over the run's ``seconds`` (plus one second of slack): so with more calls than that,
    some must have been refused.
    """
    log = server.log_since(log_offset)
    if '"level": "ERROR"' in log:
        raise BenchError(f"the catalog logged errors under load:\n{log[-3000:]}")
    calls = access_log_calls(log)
    answered = [call.duration_ms for call in calls if call.code == "OK"]
    refused = [
        call.duration_ms
        for call in calls
        if call.code == "RESOURCE_EXHAUSTED" and call.reason == "RATE_LIMITED"
    ]
    if len(calls) != expected or len(answered) + len(refused) != len(calls):
        raise BenchError(
            f"the catalog's access log shows {access_log_codes(log)}, expected {expected} "
            "calls, each OK or RESOURCE_EXHAUSTED (RATE_LIMITED)"
        )
    allowed = burst + rate * (seconds + 1.0)
    if len(answered) > allowed:
        raise BenchError(
            f"the rate limiter let {len(answered)} calls through in {seconds:.2f}s, "
            f"more than a bucket of {burst} refilled at {rate:g}/s allows ({allowed:.0f})"
        )
    return LimiterRun(
        calls=len(calls),
        answered=len(answered),
        refused=len(refused),
        refused_p50_ms=_percentile_or_none(refused, 0.50),
        refused_p99_ms=_percentile_or_none(refused, 0.99),
        answered_p50_ms=_percentile_or_none(answered, 0.50),
        answered_p99_ms=_percentile_or_none(answered, 0.99),
    )


# ---------------------------------------------------------------------------------------------
# Identity: a real user and its access token


@dataclass(frozen=True)
class Session:
    """A user signed up and logged in through identity."""

    #: The user's resource name (``users/{id}``), the ``sub`` of its token.
    user: str
    access_token: str
    #: When the access token expires, in seconds since the Unix epoch.
    expire_time: float

    @property
    def authorization(self) -> str:
        """The request header that carries the token."""
        return f"authorization: Bearer {self.access_token}"

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.access_token}"),)


def sign_up_and_log_in(port: int) -> Session:
    """Signs a new user (a customer, no roles) up with identity and logs it in."""
    email = f"bench-{secrets.token_hex(6)}@example.com"
    password = secrets.token_urlsafe(18)
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        # Hashing the password (Argon2, identity's default cost) takes a while.
        stub.SignUp(
            identity_service_pb2.SignUpRequest(
                email=email, password=password, display_name="Benchmark user"
            ),
            timeout=CALL_TIMEOUT_S * 3,
        )
        login = stub.Login(
            identity_service_pb2.LoginRequest(email=email, password=password),
            timeout=CALL_TIMEOUT_S * 3,
        )
    if not login.access_token or not login.user:
        raise BenchError(f"identity's Login answered no token or no user: {login.user!r}")
    return Session(login.user, login.access_token, float(login.access_token_expire_time.seconds))


def _call_code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        if isinstance(error, grpc.Call):
            return error.code()
        raise
    return grpc.StatusCode.OK


def check_token_accepted(
    port: int, session: Session, get: catalog_service_pb2.GetProductRequest | None
) -> None:
    """Checks that the catalog verifies ``session``'s token as that user's, and (with ``get``)
    that GetProduct answers with it.

    On a public method such as GetProduct an invalid or expired token is ignored, not
    refused, so a GetProduct that answers proves nothing about the token. CreateCategory
    needs the ``admin`` role: a customer's verified token gets PERMISSION_DENIED, where a
    token that did not verify gets UNAUTHENTICATED, and no token at all from loopback (the
    local operator, an admin) would get past the access rule. The request's category id
    is empty, so a call that did get past the access rule would end INVALID_ARGUMENT
    without creating anything.
    """
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        code = _call_code(
            lambda: stub.CreateCategory(
                catalog_service_pb2.CreateCategoryRequest(category_id=""),
                timeout=CALL_TIMEOUT_S,
                metadata=session.metadata,
            )
        )
        if code != grpc.StatusCode.PERMISSION_DENIED:
            raise BenchError(
                f"the catalog answered {code.name} to CreateCategory with {session.user}'s "
                "token; PERMISSION_DENIED would show it verified the token as a customer's"
            )
        if get is not None:
            got = stub.GetProduct(get, timeout=CALL_TIMEOUT_S, metadata=session.metadata)
            if got.product.name != get.name:
                raise BenchError(f"GetProduct({get.name}) answered {got.product.name!r}")


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _asyncpg_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise BenchError(f"--postgres needs a PostgreSQL URL, not {parsed.drivername}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


async def _admin(url: str, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S * 3), engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """Creates a fresh database on the server of ``server_url``, yields its URL, then drops it."""
    from sqlalchemy.engine import make_url

    base = _asyncpg_url(server_url)
    name = f"agora_bench_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    except Exception as error:
        raise BenchError(f"cannot create a database on {make_url(base)!r}: {error}") from error
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# ---------------------------------------------------------------------------------------------
# Reporting


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "grpcio": metadata.version("grpcio"),
        "protobuf": metadata.version("protobuf"),
        "sqlalchemy": metadata.version("sqlalchemy"),
    }


def as_dict(measurement: Measurement) -> dict[str, Any]:
    return asdict(measurement)


@contextlib.contextmanager
def work_directory(keep: bool) -> Iterator[Path]:
    """A temporary directory for data, logs and bodies; removed afterwards unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix="agora-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)
