"""Where a catalog call's time goes: the catalog profiled while h2load drives one method.

    .venv/bin/python bench/profile.py                      # GetProduct, SQLite, defaults
    .venv/bin/python bench/profile.py --log-level WARNING  # without the access log
    .venv/bin/python bench/profile.py --memory-store       # without the database
    .venv/bin/python bench/profile.py --method ListProducts --profiler cprofile

It starts the real catalog through ``bench/instrumented_catalog.py`` (``python -m catalog``
plus counters), seeds it through the generated client, warms it up, then:

1. measures one h2load run without a profiler: req/s, latency, the server's CPU per call
   (user and kernel, and by thread: event loop, aiosqlite workers, gRPC threads), context
   switches, and the database work per call (SQL statements, aiosqlite thread hops by
   sqlite3 function, pool checkouts, new connections);
2. measures a second run, long enough to last ``--profile-seconds``, under a profiler:
   py-spy when it is installed (sampling the thread that holds the GIL, so it shows what
   the one core Python can use is spent on; ``--native`` adds C frames such as gRPC's
   Cython core and syscalls), else cProfile (the main thread, with much more overhead);
3. prints the event-loop thread's time by layer (gRPC and the event loop, the runtime's
   interceptor, the servicer, SQLAlchemy, aiosqlite thread hops, protobuf, logging), by
   span (inclusive: the handler, the unit of work, the query, the conversion, the access
   log), and the top functions; and writes it as JSON to ``bench/results/`` with the raw
   profile beside it (py-spy's collapsed stacks, or cProfile's pstats).

Nothing here changes the service's code: ``--log-level`` sets ``AGORA_LOG_LEVEL``;
``--pool-size`` and ``--max-overflow`` are passed to the engine the service creates;
``--memory-store`` hands its composition root an in-memory unit of work.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import the siblings through the ``bench`` package, and keep bench/
    # itself off the path: this file's name would shadow the standard library's ``profile``.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import os
import pstats
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import harness
from bench.harness import BenchError, Load, Server

RESULTS_DIR = Path(__file__).resolve().parent / "results"
METHODS = ("GetProduct", "ListProducts")
PROFILE_STOP_TIMEOUT_S = 30.0
#: What bench/instrumented_catalog.py counts.
COUNTERS = ("checkouts", "connects", "statements", "hops")

# Layers, checked from the innermost frame of a sample outwards: the first frame that
# belongs to a library layer decides where the sample's time went; a sample with none is
# the event loop's own (or the interpreter's). Frames are written the way py-spy writes
# them, ``function (path/file.py:line)``; cProfile's are converted to that form.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # cProfile sees the log handler's write as a bare built-in; nothing else here writes text.
    (
        "logging (access log, JSON)",
        ("logging/", "json/", "runtime/logs.py", "_json", "_io.TextIOWrapper"),
    ),
    ("protobuf", ("google/protobuf", "protobuf/", "_message", "upb")),
    # The worker-thread queue is aiosqlite's; cProfile sees its put_nowait as a bare built-in.
    ("aiosqlite thread hops", ("aiosqlite/", "_write_to_self", "_read_from_self", "SimpleQueue")),
    ("sqlite3 driver", ("sqlite3", "_sqlite")),
    ("SQLAlchemy", ("sqlalchemy/", "greenlet")),
    ("asyncpg", ("asyncpg/",)),
    ("catalog (servicer, convert, domain)", ("catalog/",)),
    ("in-memory store (experiment)", ("memory_store.py",)),
    ("runtime (interceptor, context)", ("runtime/",)),
    ("gRPC (grpc.aio, cygrpc)", ("grpc/", "cygrpc", "grpc_")),
)
EVENT_LOOP_LAYER = "event loop (asyncio, and C code it calls: gRPC Cython, task steps)"
# Handle._run calls each callback through Context.run: C code (gRPC's Cython) runs there.
# The main thread's socket reads are the wake-up socket pairs of asyncio and grpc.aio.
EVENT_LOOP = (
    "asyncio/",
    "_asynciomodule",
    "selectors",
    "epoll",
    "_run (asyncio",
    "_contextvars",
    "'recv' of '_socket.socket'",
)
OTHER_LAYER = "other (interpreter, libc, gc)"
#: Frames every sample has at its root, or that only wrap: they say nothing about the cost.
TRANSPARENT = ("<frozen runpy>", "__main__.py", "runtime/server.py", "instrumented_catalog.py")

# Spans: a py-spy sample counts for a span when one of its frames contains one of the
# strings. Spans nest and overlap. cProfile can only give the spans of plain functions
# (the last flag): its cumulative time of a coroutine also counts the time it was suspended.
SPANS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    (
        "call handler (interceptor and everything inside)",
        ("handle (runtime/interceptors.py",),
        False,
    ),
    ("servicer method", ("(catalog/entrypoints/servicer.py",), False),
    ("unit of work: connect + BEGIN", ("__aenter__ (catalog/adapters/unit_of_work.py",), False),
    ("repository query (SELECT + rows)", ("(catalog/adapters/repository.py",), False),
    ("unit of work: ROLLBACK + release", ("__aexit__ (catalog/adapters/unit_of_work.py",), False),
    ("domain -> protobuf conversion", ("product_to_proto (",), True),
    ("access log line", ("info (logging/__init__.py",), True),
)


@dataclass(frozen=True)
class ThreadCpu:
    """CPU seconds of the server over one measured run: by thread role, user and system."""

    groups: dict[str, float]
    total: float
    user: float
    system: float
    #: Of the threads alive at the end of the run (ended threads' switches are lost).
    voluntary_switches: int
    involuntary_switches: int


@dataclass(frozen=True)
class Profile:
    """A profile reduced to shares of the event-loop thread's busy time."""

    profiler: str
    #: Busy samples (py-spy) or busy seconds (cProfile) of the main thread.
    busy: float
    layers: dict[str, float]
    spans: dict[str, float]
    top: list[tuple[str, float]]
    #: Share of all busy samples that were not on the main thread (py-spy only).
    other_threads: dict[str, float]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Profile the catalog while h2load drives one of its methods."
    )
    parser.add_argument("--method", choices=METHODS, default="GetProduct")
    parser.add_argument(
        "-n",
        "--requests",
        type=int,
        default=3000,
        help="requests per run (default: %(default)s)",
    )
    parser.add_argument("-c", "--clients", type=int, default=8)
    parser.add_argument("-m", "--streams", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=6.0,
        help="the profiled run sends enough calls to last about this long (default: 6)",
    )
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument(
        "--profiler",
        choices=("auto", "py-spy", "cprofile"),
        default="auto",
        help="auto: py-spy when installed, else cProfile (default: %(default)s)",
    )
    parser.add_argument("--py-spy", dest="py_spy", help="the py-spy binary (default: PATH, venv)")
    parser.add_argument(
        "--native", action="store_true", help="py-spy: include C frames (gRPC core, libc)"
    )
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument(
        "--nonblocking",
        action="store_true",
        help="py-spy: do not pause the catalog to sample (less overhead, rare torn stacks)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="AGORA_LOG_LEVEL of the catalog (default: %(default)s)",
    )
    parser.add_argument("--pool-size", type=int, help="experiment: the engine's pool_size")
    parser.add_argument("--max-overflow", type=int, help="experiment: the engine's max_overflow")
    parser.add_argument(
        "--memory-store",
        action="store_true",
        help="experiment: the catalog on an in-memory store instead of its database",
    )
    parser.add_argument("--postgres", metavar="URL", help="run on a fresh database of this server")
    parser.add_argument("--top", type=int, default=15, help="functions to list (default: 15)")
    parser.add_argument("--h2load", help="the h2load binary (default: the one on PATH)")
    parser.add_argument("--no-install", action="store_true", help="never apt-get nghttp2-client")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if min(args.requests, args.clients, args.streams, args.rate) < 1 or args.warmup < 0:
        parser.error("--requests, --clients, --streams and --rate must be positive")
    if args.products <= 50:
        parser.error("--products must be more than 50")
    return args


def find_py_spy(explicit: str | None) -> str | None:
    if explicit:
        if shutil.which(explicit) is None:
            raise BenchError(f"py-spy not found at {explicit!r}")
        return explicit
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


# ---------------------------------------------------------------------------------------------
# Attribution


def layer_of(frames: Sequence[str]) -> str:
    """The layer of a stack (innermost frame last): see :data:`LAYERS`."""
    in_event_loop = False
    for frame in reversed(frames):
        if any(needle in frame for needle in TRANSPARENT):
            continue
        for layer, needles in LAYERS:
            if any(needle in frame for needle in needles):
                return layer
        in_event_loop = in_event_loop or any(needle in frame for needle in EVENT_LOOP)
    return EVENT_LOOP_LAYER if in_event_loop else OTHER_LAYER


def spans_of(frames: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for frame in frames:
        for span, needles, _ in SPANS:
            if any(needle in frame for needle in needles):
                found.add(span)
    return found


def read_py_spy(path: Path, main_tid: int, top: int) -> Profile:
    """Reduces py-spy's raw output (``--threads``, one collapsed stack per line)."""
    layers: Counter[str] = Counter()
    spans: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    busy = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        # "thread (TID): NAME" (py-spy 0.4) or "thread (0xHEX)" (older ones).
        tid_text = thread.split("(", 1)[1].split(")", 1)[0] if "(" in thread else ""
        tid = int(tid_text, 0) if tid_text else -1
        if tid != main_tid:
            name = thread.split(": ", 1)[1] if ": " in thread else thread
            threads[_thread_role(name)] += count
            continue
        busy += count
        layers[layer_of(frames)] += count
        for span in spans_of(frames):
            spans[span] += count
        leaves[frames[-1] if frames else "(no Python frame)"] += count
    if busy == 0:
        raise BenchError(f"py-spy recorded no sample of the main thread in {path}")
    all_samples = busy + sum(threads.values())
    return Profile(
        profiler="py-spy",
        busy=busy,
        layers={layer: n / busy for layer, n in layers.most_common()},
        spans={span: spans[span] / busy for span, _, _ in SPANS},
        top=[(frame, n / busy) for frame, n in leaves.most_common(top)],
        other_threads={role: n / all_samples for role, n in threads.most_common()},
    )


def _import_roots() -> list[str]:
    roots = {str(Path(entry).resolve()) for entry in sys.path if entry}
    return sorted(roots, key=len, reverse=True)


def _cprofile_frame(key: tuple[str, int, str], roots: Sequence[str]) -> str:
    """A cProfile key as py-spy names a frame: ``function (module/path.py:line)``."""
    filename, line, function = key
    if filename == "~":  # a built-in: "<method 'put' of '_queue.SimpleQueue' objects>"
        return function
    for root in roots:
        if filename.startswith(root + os.sep):
            filename = filename[len(root) + 1 :]
            break
    return f"{function} ({filename}:{line})"


#: Built-ins whose time is waiting, not work: the event loop blocked in epoll.
_IDLE = ("select.epoll", "'poll' of 'select.epoll'")


def read_cprofile(path: Path, top: int) -> Profile:
    """Reduces cProfile stats: own time by layer, cumulative time of the spans."""
    stats: dict[tuple[str, int, str], Any] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    own: dict[str, float] = {}
    cumulative: dict[str, float] = {}
    roots = _import_roots()
    for key, (_calls, _primitive, tottime, cumtime, _callers) in stats.items():
        frame = _cprofile_frame(key, roots)
        own[frame] = own.get(frame, 0.0) + tottime
        cumulative[frame] = max(cumulative.get(frame, 0.0), cumtime)
    idle = sum(seconds for frame, seconds in own.items() if any(i in frame for i in _IDLE))
    busy = sum(own.values()) - idle
    if busy <= 0:
        raise BenchError(f"cProfile recorded no busy time in {path}")
    layers: dict[str, float] = {}
    for frame, seconds in own.items():
        if not any(i in frame for i in _IDLE):
            layer = layer_of([frame])
            layers[layer] = layers.get(layer, 0.0) + seconds
    spans: dict[str, float] = {}
    for span, needles, plain_functions in SPANS:
        if not plain_functions:
            continue
        matching = [s for f, s in cumulative.items() if any(n in f for n in needles)]
        # A span's functions call each other (coroutine and wrapper): the outermost one holds
        # the span's time, so take the largest, not the sum.
        spans[span] = max(matching, default=0.0) / busy
    ranked = sorted(
        ((f, s) for f, s in own.items() if not any(i in f for i in _IDLE)),
        key=lambda item: item[1],
        reverse=True,
    )
    return Profile(
        profiler="cProfile",
        busy=busy,
        layers={
            layer: seconds / busy
            for layer, seconds in sorted(layers.items(), key=lambda item: item[1], reverse=True)
        },
        spans=spans,
        top=[(frame, seconds / busy) for frame, seconds in ranked[:top]],
        other_threads={},
    )


def _thread_role(name: str) -> str:
    if "_connection_worker_thread" in name:
        return "aiosqlite worker threads"
    if "_poll_wrapper" in name:
        return "gRPC poller thread"
    if name in ("MainThread", "main"):
        return "event loop (main thread)"
    if name in ("python",):
        return "other Python threads"
    return f"gRPC core ({name})" if name.startswith(("grpc", "event_engine")) else name


# ---------------------------------------------------------------------------------------------
# The runs


class Catalog:
    """The instrumented catalog process, its marks and its stats file."""

    def __init__(self, server: Server, stats: Path) -> None:
        self.server = server
        self.stats = stats

    def _lines(self) -> list[dict[str, Any]]:
        if not self.stats.exists():
            return []
        return [json.loads(line) for line in self.stats.read_text().splitlines() if line]

    def signal(self, signum: int) -> dict[str, Any]:
        """Sends ``signum`` and returns the line the catalog writes for it."""
        before = len(self._lines())
        os.kill(self.server.pid, signum)
        deadline = time.monotonic() + PROFILE_STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            lines = self._lines()
            if len(lines) > before:
                return lines[before]
            time.sleep(0.05)
        raise BenchError(f"the catalog did not answer signal {signum} within 30s")


def measure_plain(
    catalog: Catalog, run: Callable[[], harness.Measurement]
) -> tuple[harness.Measurement, ThreadCpu, dict[str, Any]]:
    """One run without a profiler: the figures, CPU by thread role and the pool counters."""
    pid = catalog.server.pid
    start = catalog.signal(signal.SIGUSR1)
    stat = Path(f"/proc/{pid}/stat")
    threads_before = harness.thread_cpu_seconds(pid)
    user_before, system_before = harness.cpu_split_of(stat)
    switches_before = harness.context_switches(pid)
    measured = run()
    threads_after = harness.thread_cpu_seconds(pid)
    user_after, system_after = harness.cpu_split_of(stat)
    switches_after = harness.context_switches(pid)
    end = catalog.signal(signal.SIGUSR1)
    names: dict[str, str] = {**start["threads"], **end["threads"]}
    groups: dict[str, float] = {}
    for tid, (comm, seconds) in threads_after.items():
        spent = seconds - threads_before.get(tid, (comm, 0.0))[1]
        role = "event loop (main thread)" if tid == pid else _thread_role(names.get(str(tid), comm))
        groups[role] = groups.get(role, 0.0) + spent
    user, system = user_after - user_before, system_after - system_before
    total = user + system
    ended = total - sum(groups.values())
    if ended > 0.005:
        groups["threads that ended during the run (on SQLite: aiosqlite workers)"] = ended
    pool: dict[str, Any] = {key: end[key] - start[key] for key in COUNTERS}
    before = start["hops_by_function"]
    pool["hops_by_function"] = {
        function: count - before.get(function, 0)
        for function, count in sorted(end["hops_by_function"].items(), key=lambda i: -i[1])
        if count > before.get(function, 0)
    }
    ordered = dict(sorted(groups.items(), key=lambda item: item[1], reverse=True))
    cpu = ThreadCpu(
        ordered,
        total,
        user,
        system,
        switches_after[0] - switches_before[0],
        switches_after[1] - switches_before[1],
    )
    return measured, cpu, pool


def profile_py_spy(
    py_spy: str,
    catalog: Catalog,
    run: Callable[[], harness.Measurement],
    out: Path,
    args: argparse.Namespace,
) -> tuple[harness.Measurement, Profile]:
    command = [
        py_spy,
        "record",
        "--pid",
        str(catalog.server.pid),
        "--rate",
        str(args.rate),
        "--format",
        "raw",
        "--threads",
        "--gil",
        "--output",
        str(out),
    ]
    if args.native:
        command.append("--native")
    if args.nonblocking:
        command.append("--nonblocking")
    log = out.with_suffix(".log")
    with log.open("wb") as sink:
        recorder = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
    try:
        time.sleep(1.0)  # py-spy attaches before the load starts
        if recorder.poll() is not None:
            raise BenchError(f"py-spy exited ({recorder.returncode}):\n{log.read_text()[-2000:]}")
        measured = run()
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        recorder.wait(PROFILE_STOP_TIMEOUT_S)
    finally:
        harness.stop_process(recorder)
    if not out.exists():
        raise BenchError(f"py-spy wrote no profile:\n{log.read_text()[-2000:]}")
    return measured, read_py_spy(out, catalog.server.pid, args.top)


def profile_cprofile(
    catalog: Catalog, run: Callable[[], harness.Measurement], out: Path, top: int
) -> tuple[harness.Measurement, Profile]:
    catalog.signal(signal.SIGUSR2)
    measured = run()
    stopped = catalog.signal(signal.SIGUSR2)
    if stopped["event"] != "profile-stop" or not out.exists():
        raise BenchError(f"the catalog did not write its cProfile stats: {stopped}")
    return measured, read_cprofile(out, top)


# ---------------------------------------------------------------------------------------------
# Report


@dataclass(frozen=True)
class Outcome:
    """Everything one profiling session measured."""

    header: dict[str, Any]
    plain: harness.Measurement
    cpu: ThreadCpu
    pool: dict[str, Any]
    profiled: harness.Measurement
    profile: Profile


def render(outcome: Outcome) -> str:
    header, plain, cpu, pool = outcome.header, outcome.plain, outcome.cpu, outcome.pool
    profiled, profile = outcome.profiled, outcome.profile
    calls = plain.requests
    lines = [
        f"agora profile, {header['date']}: {header['method']} on catalog/{header['database']}, "
        f"AGORA_LOG_LEVEL={header['log_level']}"
        + (f", engine options {header['engine_options']}" if header["engine_options"] else ""),
        f"machine: nproc={header['machine']['nproc']}, {header['machine']['cpu']}; "
        f"load: h2load -n {calls} -c {header['load']['clients']} -m {header['load']['streams']}",
        "",
        f"without profiler: {plain.req_per_s:,.0f} req/s, p50 {plain.p50_ms:.2f} ms, "
        f"p99 {plain.p99_ms:.2f} ms, server CPU {plain.server_cpu_us:.0f} us per call",
        f"server CPU per call: {cpu.user / calls * 1e6:.0f} us user + "
        f"{cpu.system / calls * 1e6:.0f} us system (kernel); context switches per call of the "
        f"threads still alive: {cpu.voluntary_switches / calls:.1f} voluntary, "
        f"{cpu.involuntary_switches / calls:.1f} involuntary",
        "server CPU per call by thread:",
    ]
    for group, seconds in cpu.groups.items():
        lines.append(f"  {seconds / calls * 1e6:7.0f} us  {group}")
    if header["database"] == "memory":
        lines.append("database work per call: none (in-memory store)")
    else:
        lines.append(
            f"database work per call: {pool['statements'] / calls:.2f} SQL statements, "
            f"{pool['hops'] / calls:.2f} aiosqlite thread hops, "
            f"{pool['checkouts'] / calls:.2f} pool checkouts; "
            f"{pool['connects'] / calls * 1000:.1f} new connections per 1000 calls"
        )
        if pool["checkouts"] == 0:
            lines.append("  (nothing counted: the counters did not attach to the service's engine)")
        if pool["hops"]:
            hops = ", ".join(
                f"{name} {n / calls:.2f}" for name, n in pool["hops_by_function"].items()
            )
            lines.append(f"  thread hops per call by sqlite3 function: {hops}")
    lines += [
        "",
        f"under {profile.profiler}: {profiled.requests} calls, {profiled.req_per_s:,.0f} req/s "
        f"({profiled.req_per_s / plain.req_per_s:.0%} of the run without profiler); "
        + (
            f"{profile.busy:.0f} samples of the event-loop thread holding the GIL"
            if profile.profiler == "py-spy"
            else f"{profile.busy:.2f} s of main-thread time"
        ),
        f"event-loop thread busy time by layer (innermost frame that names a layer); "
        f"{PROFILE_BASIS[profile.profiler]}:",
    ]
    for layer, share in profile.layers.items():
        lines.append(f"  {share:6.1%}  {layer}")
    lines.append(
        "spans (inclusive, they nest):"
        if profile.profiler == "py-spy"
        else "spans (plain functions only: cProfile cannot time coroutines inclusively):"
    )
    for span, share in profile.spans.items():
        lines.append(f"  {share:6.1%}  {span}")
    if profile.other_threads:
        lines.append("GIL held by other threads (share of all samples):")
        for role, share in profile.other_threads.items():
            lines.append(f"  {share:6.1%}  {role}")
    lines.append("top functions by own time:")
    for frame, share in profile.top:
        lines.append(f"  {share:6.1%}  {frame}")
    return "\n".join(lines)


PROFILE_BASIS = {
    "py-spy": "share of the samples in which the event-loop thread held the GIL",
    "cProfile": "share of the main thread's profiled time, waiting in epoll excluded",
}


def document(outcome: Outcome) -> dict[str, Any]:
    calls = outcome.plain.requests
    return {
        **outcome.header,
        "without_profiler": harness.as_dict(outcome.plain),
        "cpu_us_per_call_by_thread": {
            group: seconds / calls * 1e6 for group, seconds in outcome.cpu.groups.items()
        },
        "cpu_us_per_call_user": outcome.cpu.user / calls * 1e6,
        "cpu_us_per_call_system": outcome.cpu.system / calls * 1e6,
        "context_switches_per_call_live_threads": {
            "voluntary": outcome.cpu.voluntary_switches / calls,
            "involuntary": outcome.cpu.involuntary_switches / calls,
        },
        "pool": outcome.pool,
        "with_profiler": harness.as_dict(outcome.profiled),
        "profiler": outcome.profile.profiler,
        "layers": outcome.profile.layers,
        "spans": outcome.profile.spans,
        "gil_by_other_threads": outcome.profile.other_threads,
        "top": outcome.profile.top,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    harness.interrupt_on_sigterm()
    started = datetime.now(UTC)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = args.results_dir / f"profile-{started.strftime('%Y%m%dT%H%M%SZ')}"
    try:
        h2load = harness.find_h2load(args.h2load, install=not args.no_install)
        py_spy = find_py_spy(args.py_spy) if args.profiler != "cprofile" else None
        if args.profiler == "py-spy" and py_spy is None:
            raise BenchError("py-spy is not installed (.venv/bin/pip install py-spy)")
        if py_spy is None:
            print(
                "profiling with cProfile (main thread only); for every thread and C frames "
                "install py-spy: .venv/bin/pip install py-spy",
                file=sys.stderr,
            )
        load = Load(args.requests, args.clients, args.streams, args.warmup)
        with harness.work_directory(args.keep) as work:
            session = Session(args, h2load, py_spy, load, work, stem)
            if args.postgres:
                with harness.postgres_database(args.postgres) as database_url:
                    outcome = session.run(database_url)
            else:
                outcome = session.run(None)
    except BenchError as error:
        print(f"profile: {error}", file=sys.stderr)
        return 1
    print(render(outcome))
    stem.with_suffix(".json").write_text(json.dumps(document(outcome), indent=2) + "\n")
    print(f"\nwritten to {stem}.json (raw profile beside it)")
    return 0


class Session:
    """One catalog process: seeded, warmed up, measured plain, then under the profiler."""

    def __init__(
        self,
        args: argparse.Namespace,
        h2load: str,
        py_spy: str | None,
        load: Load,
        work: Path,
        stem: Path,
    ) -> None:
        self.args = args
        self.h2load = h2load
        self.py_spy = py_spy
        self.load = load
        self.work = work
        #: Where the raw profile is kept: ``stem.txt`` (py-spy) or ``stem.pstats`` (cProfile).
        self.stem = stem

    def run(self, database_url: str | None) -> Outcome:
        args, load, work = self.args, self.load, self.work
        stats = work / "stats.jsonl"
        raw = work / ("profile.txt" if self.py_spy else "profile.pstats")
        argv = [harness.PYTHON, "-m", "bench.instrumented_catalog", "--stats", str(stats)]
        if self.py_spy is None:
            argv += ["--cprofile", str(raw)]
        engine_options: dict[str, int] = {}
        if args.pool_size is not None:
            argv += ["--pool-size", str(args.pool_size)]
            engine_options["pool_size"] = args.pool_size
        if args.max_overflow is not None:
            argv += ["--max-overflow", str(args.max_overflow)]
            engine_options["max_overflow"] = args.max_overflow
        if args.memory_store:
            argv.append("--memory-store")
        with harness.catalog_server(
            work / "catalog", database_url=database_url, log_level=args.log_level, argv=argv
        ) as server:
            print(f"seeding the catalog with {args.products} products", file=sys.stderr)
            names = harness.seed_catalog(server.port, args.products)
            get = harness.get_product_request(names)
            listing = harness.list_products_request()
            harness.check_catalog_calls(server.port, get, listing)
            body = work / "body.bin"
            body.write_bytes(harness.grpc_body(get if args.method == "GetProduct" else listing))
            catalog = Catalog(server, stats)

            def run(requests: int = load.requests) -> harness.Measurement:
                offset = server.log_size()
                measured = harness.run_h2load(
                    self.h2load,
                    port=server.port,
                    path=f"/{harness.CATALOG_SERVICE}/{args.method}",
                    body_file=body,
                    requests=requests,
                    load=load,
                    server_pid=server.pid,
                    work_dir=work,
                )
                harness.check_served_ok(server, offset, requests, args.log_level)
                return measured

            if load.warmup:
                run(load.warmup)
            print("measuring without profiler", file=sys.stderr)
            plain, cpu, pool = measure_plain(catalog, run)
            # Enough calls for the profiled run to last about --profile-seconds.
            profiled_calls = max(load.requests, int(plain.req_per_s * args.profile_seconds))
            print(f"measuring {profiled_calls} calls under the profiler", file=sys.stderr)

            def run_profiled() -> harness.Measurement:
                return run(profiled_calls)

            if self.py_spy is not None:
                profiled, profile = profile_py_spy(self.py_spy, catalog, run_profiled, raw, args)
            else:
                profiled, profile = profile_cprofile(catalog, run_profiled, raw, args.top)
        shutil.copyfile(raw, self.stem.with_suffix(raw.suffix))
        header: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": harness.machine(),
            "method": args.method,
            "database": "memory" if args.memory_store else "postgres" if database_url else "sqlite",
            "log_level": args.log_level,
            "engine_options": engine_options,
            "load": {"requests": load.requests, "clients": load.clients, "streams": load.streams},
        }
        return Outcome(header, plain, cpu, pool, profiled, profile)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("profile: interrupted; every server it started is stopped", file=sys.stderr)
        sys.exit(130)
