"""The real catalog (``python -m catalog``), started in-process with measuring hooks for profiling.

``bench/profile.py`` starts it as ``python -m bench.instrumented_catalog`` from the repository
root (so the standard library's ``profile``, which cProfile imports, is not shadowed by
``bench/profile.py``). It serves exactly what ``python -m catalog`` serves, with the same
settings from the environment, and adds:

- counters: DBAPI connections opened, pool checkouts, SQL statements sent, and aiosqlite
  thread hops (each ``aiosqlite.Connection._execute``: one job handed to the connection's
  worker thread and one result handed back to the event loop);
- marks: each SIGUSR1 appends one JSON line to ``--stats`` with the counters and the names
  of the live threads by native id (so per-thread CPU from /proc can be named);
- with ``--cprofile FILE``, SIGUSR2 starts cProfile (main thread only) and the next SIGUSR2
  stops it and dumps its stats to FILE; both also append a line to ``--stats``;
- experiments that change nothing in the service's code: ``--pool-size`` and
  ``--max-overflow`` are passed to the engine the service creates; ``--memory-store`` hands
  the composition root an in-memory unit of work (``bench/memory_store.py``) instead of
  the database one, through the ``uow`` parameter of ``catalog.bootstrap.build``.

SIGTERM stops it as it stops the catalog (graceful drain, cleanups, exit 0).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import aiosqlite.core
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.memory_store import MemoryStore, MemoryUnitOfWork
from catalog.bootstrap import build
from runtime import db
from runtime.config import ServerSettings
from runtime.server import Service, run


class Counters:
    """Events of the engines the service creates and aiosqlite hops, counted from any thread."""

    def __init__(self) -> None:
        # Reentrant: the signal handlers read the counters on the main thread, possibly in
        # the middle of an update the main thread was making.
        self._lock = threading.RLock()
        self.connects = 0
        self.checkouts = 0
        self.statements = 0
        self.hops = 0
        self.hops_by_function: dict[str, int] = {}

    def on_connect(self, *_args: Any) -> None:
        with self._lock:
            self.connects += 1

    def on_checkout(self, *_args: Any) -> None:
        with self._lock:
            self.checkouts += 1

    def on_statement(self, *_args: Any) -> None:
        with self._lock:
            self.statements += 1

    def on_hop(self, function: str) -> None:
        with self._lock:
            self.hops += 1
            self.hops_by_function[function] = self.hops_by_function.get(function, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "connects": self.connects,
                "checkouts": self.checkouts,
                "statements": self.statements,
                "hops": self.hops,
                "hops_by_function": dict(self.hops_by_function),
            }


class Marks:
    """What SIGUSR1 and SIGUSR2 do: write the counters, start and stop cProfile."""

    def __init__(self, counters: Counters, stats: Path, cprofile: Path | None) -> None:
        self._counters = counters
        self._stats = stats
        self._cprofile_path = cprofile
        self._profiler: cProfile.Profile | None = None

    def _write(self, event_name: str) -> None:
        threads = {str(t.native_id): t.name for t in threading.enumerate() if t.native_id}
        line = {
            "event": event_name,
            "time": time.time(),
            **self._counters.snapshot(),
            "threads": threads,
        }
        with self._stats.open("a") as out:
            out.write(json.dumps(line) + "\n")

    def mark(self, _signum: int, _frame: FrameType | None) -> None:
        self._write("mark")

    def toggle_profiler(self, _signum: int, _frame: FrameType | None) -> None:
        if self._cprofile_path is None:
            self._write("no-profiler")
        elif self._profiler is None:
            self._profiler = cProfile.Profile()
            self._profiler.enable()
            self._write("profile-start")
        else:
            self._profiler.disable()
            self._profiler.dump_stats(self._cprofile_path)
            self._profiler = None
            self._write("profile-stop")


def instrument(counters: Counters, engine_options: dict[str, int]) -> None:
    """Makes every engine the service creates count its events and use ``engine_options``."""
    create_engine = db.create_engine

    def counting_engine(url: str, **kwargs: Any) -> AsyncEngine:
        engine = create_engine(url, **{**engine_options, **kwargs})
        event.listen(engine.sync_engine, "connect", counters.on_connect)
        event.listen(engine.sync_engine, "checkout", counters.on_checkout)
        event.listen(engine.sync_engine, "before_cursor_execute", counters.on_statement)
        return engine

    db.create_engine = counting_engine

    # Every aiosqlite operation (cursor, execute, fetch, close, commit, rollback) goes
    # through Connection._execute: one round trip to the connection's worker thread.
    connection_class: Any = aiosqlite.core.Connection
    execute = connection_class._execute

    async def counting_execute(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        counters.on_hop(getattr(fn, "__qualname__", type(fn).__name__))
        return await execute(self, fn, *args, **kwargs)

    connection_class._execute = counting_execute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stats", type=Path, required=True, help="JSON lines of the counters")
    parser.add_argument("--cprofile", type=Path, help="cProfile between two SIGUSR2, to FILE")
    parser.add_argument("--pool-size", type=int, help="experiment: the engine's pool_size")
    parser.add_argument("--max-overflow", type=int, help="experiment: the engine's max_overflow")
    parser.add_argument(
        "--memory-store",
        action="store_true",
        help="experiment: serve from memory instead of the database (bench/memory_store.py)",
    )
    args = parser.parse_args()
    engine_options: dict[str, int] = {}
    if args.pool_size is not None:
        engine_options["pool_size"] = args.pool_size
    if args.max_overflow is not None:
        engine_options["max_overflow"] = args.max_overflow
    counters = Counters()
    instrument(counters, engine_options)
    marks = Marks(counters, args.stats, args.cprofile)
    signal.signal(signal.SIGUSR1, marks.mark)
    signal.signal(signal.SIGUSR2, marks.toggle_profiler)
    if not args.memory_store:
        run("catalog", build)
        return
    store = MemoryStore()

    async def build_in_memory(settings: ServerSettings) -> Service:
        return await build(settings, uow=lambda: MemoryUnitOfWork(store))

    run("catalog", build_in_memory)


if __name__ == "__main__":
    main()
