"""``make run``: scripts/run.py starts NATS and every implemented service, and stops them all.

The launcher runs for real, with every service and its NATS JetStream server moved to a
free port and a temporary data directory. Nothing here assumes which services exist: the
expectations are derived from ``services/<name>/__main__.py`` and the runtime's port table,
as the launcher's are.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runtime.config import DEFAULT_PORTS
from tests.support.certs import make_certs, tls_env, tls_files
from tests.support.nats import server_info
from tests.support.processes import (
    REPO,
    STOP_TIMEOUT_S,
    Grpcurl,
    OutputReader,
    ProcInfo,
    clean_environment,
    die_with_parent,
    free_ports,
    health_status,
    implemented_services,
    proc_cmdline,
    proc_info,
    still_running,
    stop_process,
    wait_until,
)

RUN_PY = REPO / "scripts" / "run.py"
#: Bound on the launcher migrating, starting and reporting every service ready.
BANNER_TIMEOUT_S = 90.0
#: Bound on the launcher exiting once asked to stop (services' grace is 5s here).
LAUNCHER_STOP_TIMEOUT_S = 60.0
BANNER_END = "Press Ctrl-C to stop"
SERVICE_LINE = re.compile(r"^  (?P<name>[a-z]+)\s+(?P<address>\S+:\d+)\s+pid (?P<pid>\d+)\s*$")
NATS_LINE = re.compile(
    r"^  nats\s+(?P<address>\S+:\d+)\s+pid (?P<pid>\d+)\s+\(JetStream, (?P<store>[^)]+)\)\s*$"
)
EXTERNAL_NATS_LINE = re.compile(r"^  nats\s+(?P<url>\S+)\s+\(NATS_URL, not started\)\s*$")


@dataclass(frozen=True)
class Started:
    """A service the banner reported, and what /proc said about its pid right then."""

    name: str
    address: str
    info: ProcInfo


@dataclass
class Launcher:
    process: subprocess.Popen[str]
    stdout: OutputReader
    stderr: OutputReader
    started: dict[str, Started] = field(default_factory=dict)
    #: The NATS server the banner reported (None until then, or when NATS_URL was given).
    nats: Started | None = None
    #: Where the banner says the NATS server keeps its data.
    nats_store: Path | None = None

    def output(self) -> str:
        return f"stdout:\n{self.stdout.text}\nstderr:\n{self.stderr.text}"

    def wait_for_banner(self) -> dict[str, Started]:
        """Waits until the launcher reports every service ready, and parses its banner."""
        if self.stdout.wait_for(BANNER_END, BANNER_TIMEOUT_S) is None:
            pytest.fail(
                f"no banner within {BANNER_TIMEOUT_S}s (exit status {self.process.poll()})\n"
                + self.output()
            )
        for line in self.stdout.text.splitlines():
            if match := SERVICE_LINE.match(line):
                pid = int(match["pid"])
                info = proc_info(pid)
                assert info is not None, f"{match['name']} (pid {pid}) is not running"
                self.started[match["name"]] = Started(match["name"], match["address"], info)
            elif match := NATS_LINE.match(line):
                pid = int(match["pid"])
                info = proc_info(pid)
                assert info is not None, f"nats-server (pid {pid}) is not running"
                self.nats = Started("nats", match["address"], info)
                self.nats_store = Path(match["store"])
        return self.started

    def children(self) -> list[Started]:
        """Every process the banner reported: the services and the NATS server."""
        return [*self.started.values(), *([self.nats] if self.nats else [])]


@pytest.fixture
def all_ports() -> list[int]:
    """Distinct free ports: one per service in DEFAULT_PORTS, then one for NATS."""
    return free_ports(len(DEFAULT_PORTS) + 1)


@pytest.fixture
def ports(all_ports: list[int]) -> dict[str, int]:
    """A free port for every service, implemented or not, so no default port is used."""
    return dict(zip(DEFAULT_PORTS, all_ports[:-1], strict=True))


@pytest.fixture
def nats_port(all_ports: list[int]) -> int:
    """A free port for the launcher's NATS server, so a developer's 4222 is left alone."""
    return all_ports[-1]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def env(ports: dict[str, int], nats_port: int, data_dir: Path) -> dict[str, str]:
    environment = clean_environment(
        {
            **{f"AGORA_{name.upper()}_PORT": str(port) for name, port in ports.items()},
            "AGORA_NATS_PORT": str(nats_port),
            "AGORA_DATA_DIR": str(data_dir),
            "AGORA_GRACE_SECONDS": "5",
        }
    )
    # No NATS_URL: the launcher starts its own NATS server (on nats_port).
    environment.pop("NATS_URL", None)
    return environment


@contextlib.contextmanager
def launched(env: dict[str, str]) -> Iterator[Launcher]:
    """Runs scripts/run.py; afterwards it and every child it reported are gone, always."""
    process = subprocess.Popen(
        [sys.executable, str(RUN_PY)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent(),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    launcher = Launcher(process, OutputReader(process.stdout), OutputReader(process.stderr))
    try:
        yield launcher
    finally:
        stop_process(process, signal.SIGTERM, LAUNCHER_STOP_TIMEOUT_S)
        for child in launcher.children():
            if still_running(child.info):
                os.kill(child.info.pid, signal.SIGKILL)
        launcher.stdout.join(STOP_TIMEOUT_S)
        launcher.stderr.join(STOP_TIMEOUT_S)


def run_to_completion(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs scripts/run.py when it is expected to give up on its own."""
    return subprocess.run(
        [sys.executable, str(RUN_PY)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BANNER_TIMEOUT_S,
        check=False,
    )


def proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode().partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_launcher_serves_every_implemented_service_and_stops_them_all(
    env: dict[str, str],
    ports: dict[str, int],
    nats_port: int,
    data_dir: Path,
    grpcurl_binary: Path,
    sig: int,
) -> None:
    with launched(env) as launcher:
        started = launcher.wait_for_banner()

        assert list(started) == implemented_services(), launcher.output()
        # The NATS server runs first, as the launcher's child, with JetStream on files in
        # the data directory, and every service is told where it is.
        nats = launcher.nats
        assert nats is not None, launcher.output()
        assert nats.address == f"127.0.0.1:{nats_port}"
        assert nats.info.ppid == launcher.process.pid
        assert Path(proc_cmdline(nats.info.pid)[0]).name == "nats-server"
        greeting = server_info("127.0.0.1", nats_port)
        assert greeting is not None
        assert greeting["jetstream"] is True
        assert launcher.nats_store == (data_dir / "nats").resolve()
        assert (data_dir / "nats" / "jetstream").is_dir()
        for child in started.values():
            assert proc_environ(child.info.pid)["NATS_URL"] == f"nats://127.0.0.1:{nats_port}"
        for name, child in started.items():
            assert child.address == f"127.0.0.1:{ports[name]}"
            assert child.info.ppid == launcher.process.pid
            assert proc_cmdline(child.info.pid)[-2:] == ["-m", name]
            grpcurl = Grpcurl(grpcurl_binary, child.address)
            assert grpcurl.call("grpc.health.v1.Health/Check") == {"status": "SERVING"}
            listed = grpcurl.run("list")
            assert "grpc.health.v1.Health" in listed.stdout.split(), listed.describe()
            assert f"-plaintext {child.address} list" in launcher.stdout.text
        if "catalog" in started:
            catalog = Grpcurl(grpcurl_binary, started["catalog"].address)
            # A fresh data directory: the launcher did not use the repository's var/.
            listing = catalog.call(
                "agora.catalog.v1.CatalogService/ListProducts", {"page_size": 10}
            )
            assert listing == {}

        launcher.process.send_signal(sig)
        status = launcher.process.wait(timeout=LAUNCHER_STOP_TIMEOUT_S)

        assert status == 0, launcher.output()
        for child in launcher.children():
            assert not still_running(child.info), f"{child.name} outlived the launcher"
        launcher.stderr.join(STOP_TIMEOUT_S)
        for name in started:
            # Each child's JSON log lines reach the terminal, prefixed with its name.
            assert re.search(rf"^{name}\s+\| .*serving", launcher.stderr.text, re.M), name
        assert "all services and nats-server stopped" in launcher.stderr.text


def test_each_service_gets_its_port_data_dir_every_peers_address_and_a_given_nats_url(
    env: dict[str, str], ports: dict[str, int], nats_port: int, data_dir: Path
) -> None:
    # A broker of the caller's: the launcher starts none and passes the URL through.
    external = "nats://127.0.0.1:1"
    env["NATS_URL"] = external
    with launched(env) as launcher:
        started = launcher.wait_for_banner()

        assert launcher.nats is None, launcher.output()
        banner = [
            m for line in launcher.stdout.text.splitlines() if (m := EXTERNAL_NATS_LINE.match(line))
        ]
        assert [m["url"] for m in banner] == [external], launcher.output()
        assert "ignoring AGORA_NATS_PORT" in launcher.stderr.text
        assert server_info("127.0.0.1", nats_port) is None
        assert not (data_dir / "nats").exists()
        for name, child in started.items():
            child_env = proc_environ(child.info.pid)
            assert child_env["AGORA_PORT"] == str(ports[name])
            assert Path(child_env["AGORA_DATA_DIR"]) == data_dir.resolve()
            assert "DATABASE_URL" not in child_env
            assert child_env["NATS_URL"] == external
            peers = {
                f"AGORA_{peer.upper()}_ADDR": f"127.0.0.1:{port}"
                for peer, port in ports.items()
                if peer != name
            }
            assert {k: child_env.get(k) for k in peers} == peers


def test_children_do_not_outlive_a_killed_launcher(env: dict[str, str]) -> None:
    with launched(env) as launcher:
        started = launcher.wait_for_banner()
        assert started

        assert launcher.nats is not None
        children = launcher.children()

        launcher.process.kill()
        launcher.process.wait(timeout=LAUNCHER_STOP_TIMEOUT_S)

        gone = wait_until(
            lambda: not any(still_running(c.info) for c in children),
            timeout=LAUNCHER_STOP_TIMEOUT_S,
            interval=0.1,
        )
        assert gone, [c.name for c in children if still_running(c.info)]


def test_a_port_in_use_stops_the_launch_with_the_service_port_and_override(
    env: dict[str, str], ports: dict[str, int], data_dir: Path
) -> None:
    name = implemented_services()[0]
    port = ports[name]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()

        result = run_to_completion(env)

    assert result.returncode != 0
    message = result.stderr
    assert f"port {port} for {name} is already in use" in message, message
    assert f"AGORA_{name.upper()}_PORT=" in message, message
    assert BANNER_END not in result.stdout
    # Refused before anything ran: no migration, no database file.
    assert not data_dir.exists() or not any(data_dir.iterdir())


def test_a_nats_port_in_use_stops_the_launch_with_both_ways_out(
    env: dict[str, str], nats_port: int, data_dir: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", nats_port))
        squatter.listen()

        result = run_to_completion(env)

    assert result.returncode != 0
    message = result.stderr
    assert f"port {nats_port} for nats is already in use" in message, message
    assert "AGORA_NATS_PORT=" in message, message
    assert f"NATS_URL=nats://127.0.0.1:{nats_port}" in message, message
    assert BANNER_END not in result.stdout
    assert not data_dir.exists() or not any(data_dir.iterdir())


def test_a_failing_migration_stops_the_launch_with_its_output(
    env: dict[str, str], tmp_path: Path
) -> None:
    name = implemented_services()[0]
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("a file where a directory should be\n")
    env[f"AGORA_{name.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{not_a_directory}/{name}.db"

    result = run_to_completion(env)

    assert result.returncode == 1, result.stderr
    assert f"migrating {name} failed" in result.stderr
    assert "its last output" in result.stderr
    assert BANNER_END not in result.stdout


@pytest.mark.parametrize("whose", ["service", "nats"])
def test_an_unusable_port_variable_is_named_before_anything_starts(
    env: dict[str, str], whose: str
) -> None:
    name = implemented_services()[0] if whose == "service" else "nats"
    env[f"AGORA_{name.upper()}_PORT"] = "http"

    result = run_to_completion(env)

    assert result.returncode == 2
    assert f"AGORA_{name.upper()}_PORT='http'" in result.stderr


def test_with_agora_tls_mtls_every_service_serves_over_mtls_with_certificates_made_before(
    env: dict[str, str], tmp_path: Path, grpcurl_binary: Path
) -> None:
    certs = tmp_path / "certs"
    make_certs(certs)
    operator = tls_files(certs)
    env.update(tls_env(certs))
    # One certificate for every service cannot be right: each takes its own.
    env["AGORA_TLS_CERT"] = str(operator.cert)
    with launched(env) as launcher:
        started = launcher.wait_for_banner()

        assert list(started) == implemented_services(), launcher.output()
        assert "ignoring AGORA_TLS_CERT" in launcher.stderr.text
        for name, child in started.items():
            child_env = proc_environ(child.info.pid)
            assert child_env["AGORA_TLS"] == "mtls"
            assert Path(child_env["AGORA_CERTS_DIR"]) == certs.resolve()
            assert "AGORA_TLS_CERT" not in child_env
            assert health_status(child.address) == "UNAVAILABLE", name  # plaintext is refused
            grpcurl = Grpcurl(grpcurl_binary, child.address, tls=operator)
            assert grpcurl.call("grpc.health.v1.Health/Check") == {"status": "SERVING"}
            flags = f"-cacert {operator.ca} -cert {operator.cert} -key {operator.key}"
            assert f"{flags} {child.address} list" in launcher.stdout.text, launcher.output()
        assert "-plaintext" not in launcher.stdout.text

        launcher.process.send_signal(signal.SIGTERM)
        status = launcher.process.wait(timeout=LAUNCHER_STOP_TIMEOUT_S)

        assert status == 0, launcher.output()


def test_mtls_without_certificates_stops_the_launch_and_says_how_to_make_them(
    env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    env.update(tls_env(tmp_path / "no-certs"))

    result = run_to_completion(env)

    assert result.returncode == 2, result.stderr
    assert "make certs" in result.stderr
    assert BANNER_END not in result.stdout
    assert not data_dir.exists() or not any(data_dir.iterdir())
