"""A throwaway PostgreSQL cluster for the test session, and one fresh database per test.

Registered as a pytest plugin by ``tests/conftest.py``, so any test can ask for:

    async def test_products_survive_a_reconnect(database_url: str) -> None:
        engine = create_async_engine(database_url)
        ...

``database_url`` runs the test twice: once on a SQLite file, once on a fresh PostgreSQL
database (marked ``postgres``). ``fresh_postgres_database`` gives only the second, and
``postgres_url`` is the server's maintenance database, shared by the whole session.

The server is the one named by ``AGORA_TEST_POSTGRES_URL`` when that is set. Otherwise the
session runs ``initdb`` in a temporary directory and starts a private server on a free
loopback port, then stops it and removes the directory when the session ends. When neither
works, PostgreSQL tests are skipped with the reason, or fail with it when
``AGORA_REQUIRE_POSTGRES=1`` (as in CI).
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

URL_ENV = "AGORA_TEST_POSTGRES_URL"
REQUIRE_ENV = "AGORA_REQUIRE_POSTGRES"

_TRUTHY = frozenset({"1", "true", "yes", "on"})
_SERVER_USER = "postgres"
_START_ATTEMPTS = 3
_START_TIMEOUT_S = 60
_STOP_TIMEOUT_S = 60
_READY_TIMEOUT_S = 15.0
_LOG_TAIL_LINES = 20

T = TypeVar("T")


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be used; the message says why."""


def postgres_is_required(environ: Mapping[str, str]) -> bool:
    """Returns whether ``AGORA_REQUIRE_POSTGRES`` asks for PostgreSQL tests to run."""
    return environ.get(REQUIRE_ENV, "").strip().lower() in _TRUTHY


def unavailable_outcome(environ: Mapping[str, str]) -> Literal["skip", "fail"]:
    """Decides what a test that needs an unavailable PostgreSQL does: skip, or fail if required."""
    return "fail" if postgres_is_required(environ) else "skip"


def handle_unavailable(reason: str, environ: Mapping[str, str]) -> NoReturn:
    """Skips or fails the current test, as ``unavailable_outcome`` decides, with ``reason``."""
    if unavailable_outcome(environ) == "fail":
        pytest.fail(f"PostgreSQL is required ({REQUIRE_ENV}=1) but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def asyncpg_url(url: str) -> str:
    """Returns ``url`` with the SQLAlchemy asyncpg driver (accepts plain ``postgresql://``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed!r}")
    return _render(parsed.set(drivername="postgresql+asyncpg"))


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs the coroutine ``make()`` to completion on a private event loop in a worker thread.

    Sync fixtures use this so they never touch the event loop pytest-asyncio gives the test.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="agora-postgres") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def wait_until_ready(url: str, timeout_s: float = _READY_TIMEOUT_S) -> None:
    """Waits until ``select 1`` succeeds at ``url``.

    Raises PostgresUnavailable when it still fails after ``timeout_s`` seconds.
    """
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 5})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("select 1"))
                return
            except (OSError, SQLAlchemyError) as exc:
                if time.monotonic() >= deadline:
                    shown = make_url(url).render_as_string(hide_password=True)
                    raise PostgresUnavailable(
                        f"no answer from {shown} within {timeout_s:.0f}s: {exc}"
                    ) from exc
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def create_database(base_url: str) -> str:
    """Creates a database with a random name on ``base_url``'s server and returns its URL."""
    name = f"agora_test_{secrets.token_hex(6)}"
    engine = create_async_engine(base_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"create database {_quote_identifier(name)}"))
    finally:
        await engine.dispose()
    return _render(make_url(base_url).set(database=name))


async def drop_database(base_url: str, database_url: str) -> None:
    """Drops the database ``database_url`` names, closing any connection still open to it."""
    name = make_url(database_url).database
    if not name or name == make_url(base_url).database:
        raise ValueError(f"refusing to drop database {name!r}")
    engine = create_async_engine(base_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(
                text(f"drop database if exists {_quote_identifier(name)} with (force)")
            )
    finally:
        await engine.dispose()


def find_bindir() -> Path | None:
    """Returns the directory holding ``initdb`` and ``pg_ctl`` (newest Debian version first)."""

    def version_key(bindir: str) -> tuple[int, str]:
        version = Path(bindir).parent.name
        return (int(version) if version.isdigit() else -1, version)

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for candidate in candidates:
        bindir = Path(candidate)
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            return bindir
    return None


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL_LINES:])


@dataclass
class TemporaryCluster:
    """A PostgreSQL cluster in a temporary directory, started on a free loopback port."""

    bindir: Path
    base: Path
    run_as: list[str]
    port: int = 0

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "socket"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{_SERVER_USER}@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> TemporaryCluster:
        """Runs initdb and starts the server; raises PostgresUnavailable if either fails."""
        bindir = find_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "initdb and pg_ctl not found in /usr/lib/postgresql/*/bin or on PATH "
                "(install the postgresql package, or set "
                f"{URL_ENV}=postgresql://USER@HOST:PORT/DB)"
            )
        run_as = _run_as_prefix()
        cluster = cls(bindir=bindir, base=Path(tempfile.mkdtemp(prefix="agora-pg-")), run_as=run_as)
        try:
            cluster._prepare_directories()
            cluster._initdb()
            cluster._start_on_free_port()
        except BaseException:
            cluster._discard()
            raise
        return cluster

    def stop(self) -> None:
        """Stops the server (fast, then immediate) and removes the directory."""
        stopped = self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(_STOP_TIMEOUT_S))
        if stopped.returncode != 0:
            stopped = self._pg_ctl("stop", "-m", "immediate", "-w", "-t", str(_STOP_TIMEOUT_S))
        if stopped.returncode != 0 and (self.data / "postmaster.pid").exists():
            raise RuntimeError(
                f"could not stop the test PostgreSQL server in {self.base}: "
                f"{stopped.stdout}{stopped.stderr}"
            )
        shutil.rmtree(self.base)

    def _prepare_directories(self) -> None:
        self.socket_dir.mkdir()
        if self.run_as:
            server = pwd.getpwnam(_SERVER_USER)
            for path in (self.base, self.socket_dir):
                os.chown(path, server.pw_uid, server.pw_gid)

    def _initdb(self) -> None:
        result = self._run(
            self.bindir / "initdb",
            "-D",
            str(self.data),
            "--auth=trust",
            f"--username={_SERVER_USER}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            timeout=_START_TIMEOUT_S * 2,
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed:\n{result.stdout}{result.stderr}")

    def pause(self) -> None:
        """Stops the server but keeps its data, to simulate the database going away."""
        stopped = self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(_STOP_TIMEOUT_S))
        if stopped.returncode != 0:
            raise RuntimeError(f"could not stop PostgreSQL: {stopped.stdout}{stopped.stderr}")

    def resume(self) -> None:
        """Starts a paused server again on the same port."""
        started = self._start(self.port)
        if started.returncode != 0:
            raise RuntimeError(
                f"could not restart PostgreSQL: {started.stdout}{started.stderr}\n"
                + _tail(self.log)
            )
        run_blocking(lambda: wait_until_ready(self.url))

    def _start(self, port: int) -> subprocess.CompletedProcess[str]:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={port}",
                f"-c unix_socket_directories={shlex.quote(str(self.socket_dir))}",
                "-c fsync=off",
            ]
        )
        return self._pg_ctl(
            "start", "-w", "-t", str(_START_TIMEOUT_S), "-l", str(self.log), "-o", options
        )

    def _start_on_free_port(self) -> None:
        failure = ""
        for _ in range(_START_ATTEMPTS):  # another process may take the port before we bind it
            self.port = _free_loopback_port()
            started = self._start(self.port)
            if started.returncode == 0:
                run_blocking(lambda: wait_until_ready(self.url))
                return
            failure = f"{started.stdout}{started.stderr}\n{_tail(self.log)}"
        raise PostgresUnavailable(
            f"pg_ctl start failed {_START_ATTEMPTS} times; last output:\n{failure}"
        )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(
            self.bindir / "pg_ctl", "-D", str(self.data), *args, timeout=_START_TIMEOUT_S * 2
        )

    def _run(self, program: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        # Client-side PG* variables (PGPORT, PGHOST, ...) must not leak into the private server.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        return subprocess.run(
            [*self.run_as, str(program), *args],
            cwd=self.base,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _discard(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(self.base, ignore_errors=True)


def _run_as_prefix() -> list[str]:
    """Returns the command prefix that runs the server binaries as a user they accept.

    PostgreSQL refuses to run as root, so root runs them as the ``postgres`` system user.
    """
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and runuser is not available")
    try:
        pwd.getpwnam(_SERVER_USER)
    except KeyError as exc:
        raise PostgresUnavailable(
            f"running as root and there is no {_SERVER_USER!r} user to run the server as"
        ) from exc
    return [runuser, "-u", _SERVER_USER, "--"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every test that uses the PostgreSQL server with ``postgres``."""
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Yields the session's PostgreSQL URL: ``postgresql+asyncpg://USER@HOST:PORT/DB``."""
    external = os.environ.get(URL_ENV, "").strip()
    if external:
        try:
            url = asyncpg_url(external)
            run_blocking(lambda: wait_until_ready(url))
        except (ValueError, PostgresUnavailable) as exc:
            handle_unavailable(f"{URL_ENV}: {exc}", os.environ)
        yield url
        return
    try:
        cluster = TemporaryCluster.start()
    except PostgresUnavailable as exc:
        handle_unavailable(str(exc), os.environ)
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def fresh_postgres_database(postgres_url: str) -> Iterator[str]:
    """Yields the URL of a new, empty PostgreSQL database that is dropped after the test."""
    url = run_blocking(lambda: create_database(postgres_url))
    try:
        yield url
    finally:
        run_blocking(lambda: drop_database(postgres_url, url))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Yields a fresh database URL, once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("fresh_postgres_database")
    return url
