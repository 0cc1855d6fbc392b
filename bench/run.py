"""``make bench``: the catalog's throughput and latency as ratios against a bare echo server.

Every figure is measured in the same run, with the same h2load load, on this machine:

1. the baseline, ``bench/echo_server.py`` (grpc.aio, raw bytes, no interceptors);
2. a real catalog process (``python -m catalog``, SQLite in a temporary data dir, default
   settings), seeded through the generated client, answering GetProduct and
   ListProducts(page_size=50);
3. a second catalog process on the same data with ``AGORA_LOG_LEVEL=WARNING`` (no access
   log), answering GetProduct: the variation that shows what the per-call log costs;
4. access control: a real identity process, a user signed up and logged in through it, and
   catalog processes on the same data that fetch identity's keys, answering GetProduct
   calls that carry the user's access token: with the rate limit off, with loopback not
   trusted and a rate limit too high to refuse, and with the default rate limit, which
   refuses most of the calls (how quickly it refuses);
5. with ``--postgres URL``, the same catalog cases on a fresh database of that server.

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
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
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
#: The runtime's default rate limit of public methods per caller: per second, burst.
DEFAULT_RATE_LIMIT = (50.0, 100)
#: A rate limit (per second, and burst) no load of this benchmark reaches.
RATE_LIMIT_OUT_OF_REACH = 1_000_000


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
        "--no-auth",
        action="store_true",
        help="skip identity and the GetProduct runs with an access token (see README)",
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
    #: Request headers h2load sends with every call, besides the gRPC ones.
    headers: tuple[str, ...] = ()
    #: The settings the server runs with besides the defaults, for the report.
    settings: dict[str, str] = field(default_factory=dict)
    #: The rate limit (per second, burst) the calls run past: most are refused, and the
    #: access log is checked for that instead of for every call answered OK.
    rate_limit: tuple[float, int] | None = None
    runs: list[Measurement] = field(default_factory=list)
    limiter_runs: list[harness.LimiterRun] = field(default_factory=list)

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
        #: The identity user whose token the access-control cases send; None without them.
        self.session: harness.Session | None = None
        #: The catalogs that verify that token, checked again after the last round.
        self.token_catalogs: list[Server] = []

    def add(
        self,
        name: str,
        server: str,
        method: str,
        target: Server,
        path: str,
        body: bytes,
        log_level: str | None = None,
        *,
        headers: tuple[str, ...] = (),
        settings: dict[str, str] | None = None,
        rate_limit: tuple[float, int] | None = None,
    ) -> None:
        body_file = self.work / f"body-{len(self.cases)}.bin"
        body_file.write_bytes(body)
        self.cases.append(
            Case(
                name,
                server,
                method,
                target,
                path,
                body_file,
                log_level,
                headers,
                dict(settings or {}),
                rate_limit,
            )
        )

    def run_once(self, case: Case, requests: int) -> tuple[Measurement, harness.LimiterRun | None]:
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
            headers=case.headers,
        )
        if case.rate_limit is not None:
            rate, burst = case.rate_limit
            limited = harness.check_rate_limited(
                case.target, offset, requests, seconds=measured.seconds, rate=rate, burst=burst
            )
            return measured, limited
        if case.log_level is not None:
            harness.check_served_ok(case.target, offset, requests, case.log_level)
        return measured, None

    def measure(self, repeats: int) -> None:
        """Warms every case up, then measures every case once per round, ``repeats`` rounds."""
        if self.load.warmup:
            for case in self.cases:
                _progress(f"warming up {case.name} [{case.server}]")
                self.run_once(case, self.load.warmup)
        for round_number in range(1, repeats + 1):
            for case in self.cases:
                measured, limited = self.run_once(case, self.load.requests)
                case.runs.append(measured)
                refused = ""
                if limited is not None:
                    case.limiter_runs.append(limited)
                    refused = f", {limited.refused_share:.1%} refused"
                _progress(
                    f"round {round_number}/{repeats} {case.name} [{case.server}]: "
                    f"{measured.req_per_s:,.0f} req/s, p50 {measured.p50_ms:.2f} ms, "
                    f"p99 {measured.p99_ms:.2f} ms, {measured.server_cpu_us:.0f} us CPU/req"
                    f"{refused}"
                )
        self.check_token_still_valid()

    def add_echo(self, products: int) -> None:
        echo = self.servers.enter_context(harness.echo_server(self.work))
        # The baseline echoes the very bytes GetProduct gets.
        body = harness.grpc_body(harness.get_product_request([harness.product_name(products // 2)]))
        self.add("echo", "echo", "Echo", echo, harness.ECHO_PATH, body)

    def add_catalog(
        self, server: str, database_url: str | None, products: int, *, variation: bool
    ) -> list[str]:
        """Starts and seeds a catalog on ``database_url`` (None: SQLite) and adds its cases.

        Returns the names of the products seeded.
        """
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
            return names
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
        self.add(
            "GetProduct, log WARNING",
            server,
            "GetProduct",
            quiet,
            get_path,
            get,
            "WARNING",
            settings={"AGORA_LOG_LEVEL": "WARNING"},
        )
        return names

    def add_auth(self, names: Sequence[str]) -> None:
        """GetProduct with a real user's access token, on catalogs sharing the SQLite data.

        Identity runs as a real process; a user signs up and logs in through it, and each
        catalog gets identity's address, so it fetches identity's keys (GetJwks) and verifies
        the token as it would any customer's. The same token is sent with every call, as a
        client does until it expires, so after the first call the catalog finds it in its
        verified-token cache. GetProduct is ``ACCESS_PUBLIC``, so a user's calls are rate
        limited per user (default 50 a second, bursts of 100); 4,000 calls of one user would
        be almost all refused, hence the settings:

        - bearer token: the rate limit off (``AGORA_RATE_LIMIT_PER_SECOND=0``);
        - loopback untrusted + token: ``AGORA_AUTH_TRUST_LOOPBACK=false`` and a limit far
          above the load, so every call also takes a token from the user's bucket: the
          whole path of a remote user's call;
        - over the rate limit: the default limit, written out; most calls are refused
          (RESOURCE_EXHAUSTED ``RATE_LIMITED``), which shows how quickly a refusal is made.
        """
        data_dir = self.work / "sqlite"
        identity = self.servers.enter_context(harness.identity_server(self.work / "identity"))
        _progress("signing a user up and logging in through identity")
        session = harness.sign_up_and_log_in(identity.port)
        self.session = session
        request = harness.get_product_request(names)
        body = harness.grpc_body(request)
        get_path = f"/{harness.CATALOG_SERVICE}/GetProduct"
        unlimited = str(RATE_LIMIT_OUT_OF_REACH)
        variants: tuple[tuple[str, str, dict[str, str], tuple[float, int] | None], ...] = (
            ("GetProduct, bearer token", "token", {"AGORA_RATE_LIMIT_PER_SECOND": "0"}, None),
            (
                "GetProduct, loopback untrusted + token",
                "untrusted",
                {
                    "AGORA_AUTH_TRUST_LOOPBACK": "false",
                    "AGORA_RATE_LIMIT_PER_SECOND": unlimited,
                    "AGORA_RATE_LIMIT_BURST": unlimited,
                },
                None,
            ),
            (
                "GetProduct, over the rate limit",
                "limited",
                {
                    "AGORA_RATE_LIMIT_PER_SECOND": f"{DEFAULT_RATE_LIMIT[0]:g}",
                    "AGORA_RATE_LIMIT_BURST": str(DEFAULT_RATE_LIMIT[1]),
                },
                DEFAULT_RATE_LIMIT,
            ),
        )
        for name, label, settings, rate_limit in variants:
            catalog = self.servers.enter_context(
                harness.catalog_server(
                    data_dir,
                    database_url=None,
                    log_name=f"catalog-{label}.log",
                    env={
                        "AGORA_IDENTITY_ADDR": f"{harness.HOST}:{identity.port}",
                        **settings,
                    },
                )
            )
            harness.check_token_accepted(catalog.port, session, request)
            self.token_catalogs.append(catalog)
            self.add(
                name,
                "sqlite",
                "GetProduct",
                catalog,
                get_path,
                body,
                "INFO",
                headers=(session.authorization,),
                settings=settings,
                rate_limit=rate_limit,
            )

    def check_token_still_valid(self) -> None:
        """After the last round: the token had not expired and every catalog still verifies it.

        On a public method an expired or rejected token is ignored rather than refused, so
        without this a run could have measured anonymous calls while claiming token calls.
        """
        if self.session is None:
            return
        if time.time() >= self.session.expire_time:
            raise BenchError("the access token expired during the run; its rows are not valid")
        for catalog in self.token_catalogs:
            # No GetProduct here: the rate-limited catalog would refuse it.
            harness.check_token_accepted(catalog.port, self.session, None)

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
    for result in results:
        if result.rate_limit is None:
            continue
        limiter = limiter_medians(result)
        rate, burst = result.rate_limit
        lines += [
            "",
            f"{result.name} [{result.server}], {rate:g} calls/s per caller in bursts of "
            f"{burst}, one user's token (medians of the rounds):",
            f"  {limiter['refused_share']:.1%} of {result.runs[0].requests} calls refused "
            f"RESOURCE_EXHAUSTED (RATE_LIMITED), {limiter['answered']:.0f} answered OK; "
            f"h2load cannot tell them apart (HTTP 200 and a grpc-status trailer either way): "
            f"the counts come from the catalog's access log",
            f"  handler time in the catalog (access log duration_ms) p50 / p99: "
            f"refused {_ms(limiter['refused_p50_ms'])} / {_ms(limiter['refused_p99_ms'])}, "
            f"answered {_ms(limiter['answered_p50_ms'])} / {_ms(limiter['answered_p99_ms'])}",
        ]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} ms"


def limiter_medians(case: Case) -> dict[str, float | None]:
    """The medians over the rounds of what the rate limiter did (None: nothing to measure)."""
    medians: dict[str, float | None] = {}
    for metric in (
        "refused_share",
        "answered",
        "refused_p50_ms",
        "refused_p99_ms",
        "answered_p50_ms",
        "answered_p99_ms",
    ):
        values = [getattr(run, metric) for run in case.limiter_runs]
        present = [float(value) for value in values if value is not None]
        medians[metric] = harness.median(present) if present else None
    return medians


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
                "settings": result.settings,
                "headers": [header.split(":", 1)[0] for header in result.headers],
                "median": {metric: result.median(metric) for metric in metrics},
                "throughput_ratio_vs_echo": result.median("req_per_s") / echo.median("req_per_s"),
                "p99_ratio_vs_echo": result.median("p99_ms") / echo.median("p99_ms"),
                "runs": [harness.as_dict(run) for run in result.runs],
                **(
                    {}
                    if result.rate_limit is None
                    else {
                        "rate_limit": {
                            "per_second": result.rate_limit[0],
                            "burst": result.rate_limit[1],
                        },
                        "limiter_median": limiter_medians(result),
                        "limiter_runs": [asdict(run) for run in result.limiter_runs],
                    }
                ),
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
            names = bench.add_catalog("sqlite", None, args.products, variation=variation)
            if not args.no_auth:
                bench.add_auth(names)
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
