"""``make bench``: the catalog's throughput and latency as ratios against a bare echo server.

Every figure is measured in the same run, with the same h2load load, on this machine:

1. the baseline, ``bench/echo_server.py`` (grpc.aio, raw bytes, no interceptors);
2. a real catalog process (``python -m catalog``, SQLite in a temporary data dir, default
   settings), seeded through the generated client, answering GetProduct and
   ListProducts(page_size=50);
3. a second catalog process on the same data with ``AGORA_LOG_LEVEL=WARNING`` (no access
   log), answering GetProduct: the variation that shows what the per-call log costs;
4. with ``--postgres URL``, the same catalog cases on a fresh database of that server.

All servers stay up for the whole run. Each case is warmed up, then the runs are
interleaved: each of the ``--repeats`` rounds measures every case once, so a slow spell
of a shared machine hits every case alike. The table shows the medians over the rounds.
The table is printed and written as JSON to ``bench/results/``. A missed target is
reported, not an error: the exit status is non-zero only when the benchmark itself fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import the siblings through the ``bench`` package, and keep bench/
    # itself off the path, where bench/profile.py would shadow the standard library's.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench import harness
from bench.harness import BenchError, Load, Measurement, Server

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: From the issue: GetProduct keeps at least this share of the echo server's throughput...
TARGET_THROUGHPUT_RATIO = 0.8
#: ...and its p99 latency stays within this multiple of the echo server's p99.
TARGET_P99_RATIO = 2.0

DEFAULT_REQUESTS = 4000
DEFAULT_CLIENTS = 8
DEFAULT_STREAMS = 8
DEFAULT_WARMUP = 1000
DEFAULT_REPEATS = 3
DEFAULT_PRODUCTS = 200
LIST_PAGE_SIZE = 50


@dataclass(frozen=True)
class Target:
    case: str
    metric: str
    wanted: str
    ratio: float
    met: bool


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the catalog against a bare grpc.aio echo server with h2load."
    )
    parser.add_argument(
        "-n",
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help="requests per measured run, the same for every case (default: %(default)s)",
    )
    parser.add_argument(
        "-c",
        "--clients",
        type=int,
        default=DEFAULT_CLIENTS,
        help="concurrent connections (default: %(default)s)",
    )
    parser.add_argument(
        "-m",
        "--streams",
        type=int,
        default=DEFAULT_STREAMS,
        help="concurrent streams per connection (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help="requests sent and thrown away before each case's runs (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help="measured runs per case; the table shows their median (default: %(default)s)",
    )
    parser.add_argument(
        "--products",
        type=int,
        default=DEFAULT_PRODUCTS,
        help=f"products seeded into the catalog, more than {LIST_PAGE_SIZE} (default: %(default)s)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also run the catalog on a fresh database of this PostgreSQL server "
        "(postgresql://USER@HOST:PORT/DB; the database is created and dropped)",
    )
    parser.add_argument(
        "--no-variation",
        action="store_true",
        help="skip the GetProduct run with AGORA_LOG_LEVEL=WARNING",
    )
    parser.add_argument(
        "--experiments",
        action="store_true",
        help="add GetProduct on an in-memory store (with and without the access log) and with "
        "a 20+0 pool (see README)",
    )
    parser.add_argument("--h2load", help="the h2load binary (default: the one on PATH)")
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="print what to install instead of installing nghttp2-client when h2load is missing",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where the JSON report goes (default: bench/results)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (data, server logs)"
    )
    args = parser.parse_args(argv)
    for name in ("requests", "clients", "streams", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    if args.products < LIST_PAGE_SIZE + 1:
        parser.error(f"--products must be more than {LIST_PAGE_SIZE} (one full page and more)")
    return args


@dataclass
class Case:
    """One row of the table: a method of one server process, and its measured runs."""

    name: str
    server: str
    method: str
    target: Server
    path: str
    body_file: Path
    #: The catalog's AGORA_LOG_LEVEL, to check its log after each run; None for echo.
    log_level: str | None = None
    runs: list[Measurement] = field(default_factory=list)

    def median(self, metric: str) -> float:
        return harness.median([float(getattr(run, metric)) for run in self.runs])


class Bench:
    """The cases of one benchmark: one h2load, one load, one work directory.

    Every server stays up for the whole run and the runs are interleaved: round ``r``
    measures every case once, so a slow spell of the machine hits every case alike.
    """

    def __init__(self, h2load: str, load: Load, work: Path, servers: ExitStack) -> None:
        self.h2load = h2load
        self.load = load
        self.work = work
        self.servers = servers
        self.cases: list[Case] = []

    def add(
        self,
        name: str,
        server: str,
        method: str,
        target: Server,
        path: str,
        body: bytes,
        log_level: str | None = None,
    ) -> None:
        body_file = self.work / f"body-{len(self.cases)}.bin"
        body_file.write_bytes(body)
        self.cases.append(Case(name, server, method, target, path, body_file, log_level))

    def run_once(self, case: Case, requests: int) -> Measurement:
        offset = case.target.log_size()
        measured = harness.run_h2load(
            self.h2load,
            port=case.target.port,
            path=case.path,
            body_file=case.body_file,
            requests=requests,
            load=self.load,
            server_pid=case.target.pid,
            work_dir=self.work,
        )
        if case.log_level is not None:
            harness.check_served_ok(case.target, offset, requests, case.log_level)
        return measured

    def measure(self, repeats: int) -> None:
        """Warms every case up, then measures every case once per round, ``repeats`` rounds."""
        if self.load.warmup:
            for case in self.cases:
                _progress(f"warming up {case.name} [{case.server}]")
                self.run_once(case, self.load.warmup)
        for round_number in range(1, repeats + 1):
            for case in self.cases:
                measured = self.run_once(case, self.load.requests)
                case.runs.append(measured)
                _progress(
                    f"round {round_number}/{repeats} {case.name} [{case.server}]: "
                    f"{measured.req_per_s:,.0f} req/s, p50 {measured.p50_ms:.2f} ms, "
                    f"p99 {measured.p99_ms:.2f} ms, {measured.server_cpu_us:.0f} us CPU/req"
                )

    def add_echo(self, products: int) -> None:
        echo = self.servers.enter_context(harness.echo_server(self.work))
        # The baseline echoes the very bytes GetProduct gets.
        body = harness.grpc_body(harness.get_product_request([harness.product_name(products // 2)]))
        self.add("echo", "echo", "Echo", echo, harness.ECHO_PATH, body)

    def add_catalog(
        self, server: str, database_url: str | None, products: int, *, variation: bool
    ) -> None:
        """Starts and seeds a catalog on ``database_url`` (None: SQLite) and adds its cases."""
        data_dir = self.work / server
        catalog = self.servers.enter_context(
            harness.catalog_server(data_dir, database_url=database_url)
        )
        _progress(f"seeding the catalog [{server}] with {products} products")
        names = harness.seed_catalog(catalog.port, products)
        get = harness.grpc_body(harness.get_product_request(names))
        listing = harness.grpc_body(harness.list_products_request(LIST_PAGE_SIZE))
        harness.check_catalog_calls(
            catalog.port,
            harness.get_product_request(names),
            harness.list_products_request(LIST_PAGE_SIZE),
        )
        get_path = f"/{harness.CATALOG_SERVICE}/GetProduct"
        list_path = f"/{harness.CATALOG_SERVICE}/ListProducts"
        self.add("GetProduct", server, "GetProduct", catalog, get_path, get, "INFO")
        self.add(
            f"ListProducts({LIST_PAGE_SIZE})",
            server,
            "ListProducts",
            catalog,
            list_path,
            listing,
            "INFO",
        )
        if not variation:
            return
        # A second process on the same data, without the per-call access log.
        quiet = self.servers.enter_context(
            harness.catalog_server(
                data_dir,
                database_url=database_url,
                log_level="WARNING",
                log_name="catalog-warning.log",
            )
        )
        harness.check_catalog_calls(
            quiet.port,
            harness.get_product_request(names),
            harness.list_products_request(LIST_PAGE_SIZE),
        )
        self.add("GetProduct, log WARNING", server, "GetProduct", quiet, get_path, get, "WARNING")

    def add_experiments(self, products: int) -> None:
        """GetProduct on catalogs changed only from the outside (bench/instrumented_catalog.py).

        - in-memory store: the real catalog with no database under it; what it saves is
          what the database path (SQLAlchemy, pool, aiosqlite thread hops) costs; and the
          same without the access log, where the log's share is no longer drowned;
        - pool 20+0: a pool as large as the load's concurrency, so no connection is opened
          and closed under load (the default 5+10 churns them).
        """
        get_path = f"/{harness.CATALOG_SERVICE}/GetProduct"
        variants = (
            ("GetProduct, in-memory store", "memory", ["--memory-store"], "INFO"),
            (
                "GetProduct, in-memory store, log WARNING",
                "memory-quiet",
                ["--memory-store"],
                "WARNING",
            ),
            ("GetProduct, pool 20+0", "pool", ["--pool-size", "20", "--max-overflow", "0"], "INFO"),
        )
        for name, label, options, log_level in variants:
            data_dir = self.work / f"experiment-{label}"
            argv = [
                harness.PYTHON,
                "-m",
                "bench.instrumented_catalog",
                "--stats",
                str(data_dir / "stats.jsonl"),
                *options,
            ]
            catalog = self.servers.enter_context(
                harness.catalog_server(data_dir, database_url=None, log_level=log_level, argv=argv)
            )
            _progress(f"seeding the catalog [{label}] with {products} products")
            names = harness.seed_catalog(catalog.port, products)
            request = harness.get_product_request(names)
            harness.check_catalog_calls(
                catalog.port, request, harness.list_products_request(LIST_PAGE_SIZE)
            )
            server = "memory" if label.startswith("memory") else "sqlite"
            body = harness.grpc_body(request)
            self.add(name, server, "GetProduct", catalog, get_path, body, log_level)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evaluate(results: Sequence[Case]) -> list[Target]:
    """The issue's targets for every GetProduct row with default settings."""
    echo = results[0]
    targets: list[Target] = []
    for result in results[1:]:
        if result.name != "GetProduct":
            continue
        throughput = result.median("req_per_s") / echo.median("req_per_s")
        p99 = result.median("p99_ms") / echo.median("p99_ms")
        case = f"{result.name} [{result.server}]"
        targets.append(
            Target(
                case,
                "throughput",
                f">= {TARGET_THROUGHPUT_RATIO:.1f}x echo",
                throughput,
                throughput >= TARGET_THROUGHPUT_RATIO,
            )
        )
        targets.append(
            Target(
                case,
                "p99 latency",
                f"<= {TARGET_P99_RATIO:.1f}x echo",
                p99,
                p99 <= TARGET_P99_RATIO,
            )
        )
    return targets


def render(results: Sequence[Case], targets: Sequence[Target], header: dict[str, Any]) -> str:
    """The report as text: a header, the ratio table and the targets."""
    echo = results[0]
    load = header["load"]
    host = header["machine"]
    lines = [
        f"agora bench, {header['date']}",
        f"machine: nproc={host['nproc']}, {host['cpu']}; Python {host['python']}, "
        f"grpcio {host['grpcio']}, protobuf {host['protobuf']}; {header['h2load']}",
        f"load: h2load -n {load['requests']} -c {load['clients']} -m {load['streams']} "
        f"(warm-up {load['warmup']} requests); median of {header['repeats']} interleaved rounds; "
        f"{header['products']} products seeded",
        "",
        "| case | server | req/s | ratio vs echo | p50 ms | p99 ms | p99 ratio vs echo "
        "| max ms | server CPU us/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        lines.append(
            f"| {result.name} | {result.server} | {result.median('req_per_s'):,.0f} "
            f"| {result.median('req_per_s') / echo.median('req_per_s'):.2f}x "
            f"| {result.median('p50_ms'):.2f} | {result.median('p99_ms'):.2f} "
            f"| {result.median('p99_ms') / echo.median('p99_ms'):.2f}x "
            f"| {result.median('max_ms'):.2f} | {result.median('server_cpu_us'):.0f} |"
        )
    lines.append("")
    for target in targets:
        verdict = "met" if target.met else "MISSED"
        lines.append(
            f"target {target.case} {target.metric} {target.wanted}: "
            f"{target.ratio:.2f}x -> {verdict}"
        )
    return "\n".join(lines)


def report_json(
    results: Sequence[Case], targets: Sequence[Target], header: dict[str, Any]
) -> dict[str, Any]:
    echo = results[0]
    metrics = ("req_per_s", "mean_ms", "max_ms", "p50_ms", "p99_ms", "server_cpu_us")
    return {
        **header,
        "cases": [
            {
                "case": result.name,
                "server": result.server,
                "method": result.method,
                "median": {metric: result.median(metric) for metric in metrics},
                "throughput_ratio_vs_echo": result.median("req_per_s") / echo.median("req_per_s"),
                "p99_ratio_vs_echo": result.median("p99_ms") / echo.median("p99_ms"),
                "runs": [harness.as_dict(run) for run in result.runs],
            }
            for result in results
        ],
        "targets": [
            {
                "case": t.case,
                "metric": t.metric,
                "wanted": t.wanted,
                "ratio": t.ratio,
                "met": t.met,
            }
            for t in targets
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    harness.interrupt_on_sigterm()
    try:
        h2load = harness.find_h2load(args.h2load, install=not args.no_install)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    load = Load(args.requests, args.clients, args.streams, args.warmup)
    started = datetime.now(UTC)
    variation = not args.no_variation
    try:
        with harness.work_directory(args.keep) as work, ExitStack() as servers:
            bench = Bench(h2load, load, work, servers)
            bench.add_echo(args.products)
            bench.add_catalog("sqlite", None, args.products, variation=variation)
            if args.experiments:
                bench.add_experiments(args.products)
            if args.postgres:
                database_url = servers.enter_context(harness.postgres_database(args.postgres))
                bench.add_catalog("postgres", database_url, args.products, variation=variation)
            bench.measure(args.repeats)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    header: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": harness.machine(),
        "h2load": harness.h2load_version(h2load),
        "load": {
            "requests": load.requests,
            "clients": load.clients,
            "streams": load.streams,
            "warmup": load.warmup,
        },
        "repeats": args.repeats,
        "products": args.products,
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
    }
    targets = evaluate(bench.cases)
    print(render(bench.cases, targets, header))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report_json(bench.cases, targets, header), indent=2) + "\n")
    print(f"\nwritten to {out} ({header['seconds']}s in all)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; every server it started is stopped", file=sys.stderr)
        sys.exit(130)
