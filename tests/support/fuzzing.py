"""Hostile input for every RPC of every Agora service: the generator and the caller.

:class:`MessageGenerator` builds a random request message from its descriptor, seeded, so a
run replays: every scalar type with its extreme values, odd unicode (NUL, bidi controls,
non-BMP characters, long strings), bytes, nested messages to a bounded depth, repeated
fields and maps of bounded length, enums including values the contract does not know, and
oneofs. Strings are drawn partly from plausible values (resource names of the stocked
shop, test cards, currency codes, UUIDs) so that some requests get past validation and
reach the handlers. :func:`hostile_bodies` turns one method into the raw bodies to send:
generated messages, mutated encodings, random bytes, an oversized body and deeply nested
groups. :class:`Fuzzer` sends them over plain channels with identity (de)serializers, so
the bytes go on the wire exactly as made, and tallies the status codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import string
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from agora.catalog.v1 import catalog_service_pb2
from agora.identity.v1 import identity_service_pb2
from agora.inventory.v1 import inventory_service_pb2
from agora.notifications.v1 import notification_service_pb2
from agora.orders.v1 import order_service_pb2
from agora.payments.v1 import payment_service_pb2

#: Each running service's contract module.
CONTRACTS: dict[str, ModuleType] = {
    "catalog": catalog_service_pb2,
    "inventory": inventory_service_pb2,
    "payments": payment_service_pb2,
    "orders": order_service_pb2,
    "identity": identity_service_pb2,
    "notifications": notification_service_pb2,
}

#: Codes that say the server failed, never right for a caller's mistake.
FORBIDDEN_CODES = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
#: Codes a caller's mistake may get (AIP-193): the request is refused, the server is fine.
CALLER_CODES = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
#: The default ``AGORA_MAX_MESSAGE_BYTES``: a larger body is RESOURCE_EXHAUSTED.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: How deep the nested groups of a "deep" body go: upb refuses more than 100.
NESTING_DEPTH = 1000

#: What a default client says when an answer's trailers pass its metadata limit (8 KiB
#: soft, 16 KiB hard): it reports RESOURCE_EXHAUSTED in place of the server's answer.
TRAILERS_SYMPTOM = "metadata size exceeds"
#: The pseudo-code the tally counts such an answer under.
TRAILERS_TOO_LARGE = "TRAILERS_TOO_LARGE_FOR_A_DEFAULT_CLIENT"

#: A field's descriptor: the stubs give a union of the pure-Python and upb classes, and
#: the two expose the same attributes.
Field = Any

#: Kinds of input, in the report's order.
KINDS = ("message", "mutated", "random_bytes", "oversized", "deep_nesting", "deep_in_field")


@dataclass(frozen=True)
class Method:
    """One unary RPC: its wire path and request class."""

    service: str
    path: str
    request: type[Message]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def agora_methods(services: Sequence[str]) -> list[Method]:
    """Every method of every Agora API that ``services`` serve, from their descriptors."""
    found: list[Method] = []
    for service in services:
        module = CONTRACTS[service]
        for api in module.DESCRIPTOR.services_by_name.values():
            for method in api.methods:
                found.append(
                    Method(
                        service,
                        f"/{api.full_name}/{method.name}",
                        GetMessageClass(method.input_type),
                    )
                )
    return found


# --- the generator ------------------------------------------------------------------------

_INT_EXTREMES = {
    32: (0, 1, -1, 2**31 - 1, -(2**31), 2**31 - 2, -(2**31) + 1, 100, 1000, 10**6),
    64: (0, 1, -1, 2**63 - 1, -(2**63), 2**53, -(2**53), 10**9, 10**12, 10**18),
}
_UINT_EXTREMES = {
    32: (0, 1, 2, 2**31, 2**32 - 1, 100, 10**6),
    64: (0, 1, 2, 2**63, 2**64 - 1, 2**53, 10**18),
}
_FLOATS = (0.0, -0.0, 1.0, -1.0, 1e-45, 3.4e38, -3.4e38, float("inf"), float("-inf"), float("nan"))
#: Odd characters: NUL and other controls, bidi overrides, BOM, combining marks, non-BMP
#: emoji, private use, the replacement character, noncharacters. No lone surrogates:
#: protobuf strings are UTF-8, which cannot carry them.
_ODD_CHARS = (
    "\x00",
    "\x01",
    "\x1f",
    "\x7f",
    "\u0085",
    "\u00a0",
    "\u200b",
    "\u200d",
    "\u202e",
    "\u2028",
    "\ufeff",
    "\u0301",
    "\ufffd",
    "\uffff",
    "\U0001f600",
    "\U0010ffff",
    "\ue000",
    "%",
    "/",
    "\\",
    "'",
    '"',
    "*",
    "..",
    "-",
    "_",
    " ",
    "\n",
    "\t",
)
#: Values that are valid somewhere in the shop, so some requests reach the handlers.
PLAUSIBLE_STRINGS = (
    "tea",
    "cup",
    "pot",
    "products/tea",
    "products/cup",
    "products/missing",
    "products/tea/stock",
    "products/cup/stock",
    "categories/tea",
    "categories/other",
    "users/alice",
    "users/bob",
    "orders/none",
    "payments/none",
    "reservations/none",
    "notifications/none",
    "EUR",
    "USD",
    "XXX",
    "4242 4242 4242 4242",
    "4000 0000 0000 0002",
    "alice@example.com",
    "correct horse battery staple",
    "price",
    "display_name",
    "*",
    "",
)


class MessageGenerator:
    """Random messages of any type, built from the descriptor by a seeded generator."""

    def __init__(self, rng: random.Random, max_depth: int = 4, max_repeated: int = 6) -> None:
        self.rng = rng
        self.max_depth = max_depth
        self.max_repeated = max_repeated

    def message(self, cls: type[Message]) -> Message:
        made = cls()
        self.fill(made, 0)
        return made

    def fill(self, message: Message, depth: int) -> None:
        rng = self.rng
        density = rng.choice((0.0, 0.3, 0.6, 0.9, 1.0))
        for item in message.DESCRIPTOR.fields:
            if rng.random() >= density:
                continue
            if _is_map(item):
                self._fill_map(message, item, depth)
            elif item.is_repeated:
                target = getattr(message, item.name)
                for _ in range(self._count()):
                    if item.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                        if depth < self.max_depth:
                            self.fill(target.add(), depth + 1)
                    else:
                        target.append(self.scalar(item))
            elif item.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                if depth < self.max_depth:
                    child = getattr(message, item.name)
                    child.SetInParent()
                    self.fill(child, depth + 1)
            else:
                setattr(message, item.name, self.scalar(item))

    def _count(self) -> int:
        if self.rng.random() < 0.05:
            return self.rng.randint(self.max_repeated, self.max_repeated * 20)
        return self.rng.randint(0, self.max_repeated)

    def _fill_map(self, message: Message, item: Field, depth: int) -> None:
        entry = item.message_type
        key_field = entry.fields_by_name["key"]
        value_field = entry.fields_by_name["value"]
        target = getattr(message, item.name)
        for _ in range(self._count()):
            key = self.scalar(key_field)
            if value_field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                if depth < self.max_depth:
                    self.fill(target[key], depth + 1)
            else:
                target[key] = self.scalar(value_field)

    def scalar(self, item: Field) -> Any:
        rng = self.rng
        kind = item.cpp_type
        if kind == FieldDescriptor.CPPTYPE_STRING:
            return self.text() if item.type == FieldDescriptor.TYPE_STRING else self.blob()
        if kind == FieldDescriptor.CPPTYPE_BOOL:
            return rng.random() < 0.5
        if kind in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
            return rng.choice(_FLOATS) if rng.random() < 0.5 else rng.uniform(-1e6, 1e6)
        if kind == FieldDescriptor.CPPTYPE_ENUM:
            return self.enum_value(item)
        bits = 64 if kind in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64) else 32
        if kind in (FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
            if rng.random() < 0.5:
                return rng.choice(_UINT_EXTREMES[bits])
            return rng.randint(0, 2**bits - 1) if rng.random() < 0.3 else rng.randint(0, 1000)
        if rng.random() < 0.5:
            return rng.choice(_INT_EXTREMES[bits])
        if rng.random() < 0.3:
            return rng.randint(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return rng.randint(-10, 1000)

    def enum_value(self, item: Field) -> int:
        known: list[int] = [value.number for value in item.enum_type.values]
        roll = self.rng.random()
        if roll < 0.7:
            return self.rng.choice(known)
        if roll < 0.85:
            return max(known) + self.rng.randint(1, 1000)
        return self.rng.choice((-1, 2**31 - 1, -(2**31)))

    def text(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.35:
            return rng.choice(PLAUSIBLE_STRINGS)
        if roll < 0.45:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if roll < 0.55:
            # A plausible value with an odd character spliced in.
            base = rng.choice(PLAUSIBLE_STRINGS)
            at = rng.randint(0, len(base))
            return base[:at] + rng.choice(_ODD_CHARS) + base[at:]
        if roll < 0.6:
            return rng.choice(string.ascii_lowercase) * rng.choice((63, 64, 200, 201, 1000, 70_000))
        length = rng.randint(0, 40)
        pool = string.printable + "".join(_ODD_CHARS)
        return "".join(
            rng.choice(pool) if rng.random() < 0.8 else chr(rng.randint(0x80, 0xD7FF))
            for _ in range(length)
        )

    def blob(self) -> bytes:
        return self.rng.randbytes(self.rng.choice((0, 1, 16, 100, 1000)))


def _is_map(item: Field) -> bool:
    entry = item.message_type
    return item.is_repeated and entry is not None and entry.GetOptions().map_entry


# --- raw bodies -----------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def nested_groups(field_number: int, depth: int) -> bytes:
    """``depth`` start-group tags of ``field_number`` then as many end-group tags: an
    unknown field nested far past the parser's recursion limit."""
    return _varint(field_number << 3 | 3) * depth + _varint(field_number << 3 | 4) * depth


def length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def oversized_body(method: Method) -> bytes:
    """A body just over the default limit: one string/bytes field, or an unknown one."""
    size = MAX_MESSAGE_BYTES + 1024
    for item in method.request.DESCRIPTOR.fields:
        if item.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            return length_delimited(item.number, b"a" * size)
    return length_delimited(536_870_911, b"a" * size)


def mutate(encoded: bytes, rng: random.Random) -> bytes:
    """A valid encoding broken the way a bad client breaks one: bit flips, cuts, splices."""
    data = bytearray(encoded or b"\x08")
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.4 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif roll < 0.6 and data:
            del data[rng.randrange(len(data)) :]
        elif roll < 0.8:
            at = rng.randint(0, len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            data[rng.randint(0, len(data)) :] = b"\xff" * rng.randint(1, 11)
    return bytes(data)


@dataclass(frozen=True)
class Input:
    """One body to send and what the answer must be."""

    method: Method
    kind: str
    body: bytes
    #: The code this input must get, when the kind fixes one; else any caller's code.
    expect: grpc.StatusCode | None = None


def hostile_bodies(method: Method, count: int, rng: random.Random) -> Iterator[Input]:
    """``count`` generated, mutated and random bodies for ``method``, then the fixed ones:
    one oversized body, one of top-level nested groups and one per message-typed field
    with nested groups inside it."""
    generator = MessageGenerator(rng)
    for _ in range(count):
        roll = rng.random()
        if roll < 0.6:
            yield Input(method, "message", generator.message(method.request).SerializeToString())
        elif roll < 0.8:
            encoded = generator.message(method.request).SerializeToString()
            yield Input(method, "mutated", mutate(encoded, rng))
        else:
            size = rng.choice((0, 1, 2, 5, 16, 64, 512, 4096))
            yield Input(method, "random_bytes", rng.randbytes(size))
    yield Input(
        method, "oversized", oversized_body(method), expect=grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    yield Input(
        method,
        "deep_nesting",
        nested_groups(15, NESTING_DEPTH),
        expect=grpc.StatusCode.INVALID_ARGUMENT,
    )
    for item in method.request.DESCRIPTOR.fields:
        if item.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            yield Input(
                method,
                "deep_in_field",
                length_delimited(item.number, nested_groups(15, NESTING_DEPTH)),
            )


# --- sending and tallying -------------------------------------------------------------------


@dataclass
class Tally:
    """What came back, by kind, method and code, and every answer that broke a rule."""

    inputs: Counter[str] = field(default_factory=Counter)
    codes: dict[str, Counter[str]] = field(default_factory=dict)
    by_method: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def record(self, item: Input, code: str, problem: str | None) -> None:
        """Counts ``code`` (a status code's name, or :data:`TRAILERS_TOO_LARGE`) for ``item``."""
        self.inputs[item.kind] += 1
        self.codes.setdefault(item.method.service, Counter())[code] += 1
        self.by_method.setdefault(item.method.path, Counter())[code] += 1
        if problem is not None:
            self.failures.append(f"{item.method.path} [{item.kind}] {problem}")

    def failure_kinds(self) -> dict[str, int]:
        """The failures grouped by method, kind of input and rule (without the details)."""
        return dict(Counter(failure.split(": ", 1)[0] for failure in self.failures).most_common())

    @property
    def total(self) -> int:
        return sum(self.inputs.values())

    def report(self) -> dict[str, Any]:
        return {
            "inputs": sum(self.inputs.values()),
            "inputs_per_kind": dict(sorted(self.inputs.items())),
            "codes_per_service": {
                k: dict(sorted(v.items())) for k, v in sorted(self.codes.items())
            },
            "codes_per_method": {
                k: dict(sorted(v.items())) for k, v in sorted(self.by_method.items())
            },
            "failure_count": len(self.failures),
            "failure_kinds": self.failure_kinds(),
            "failures": self.failures[:30],
        }


def _reason(error: grpc.aio.AioRpcError) -> str:
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError as mismatch:  # the status detail disagrees with the call's code
        return f"<{mismatch}>"
    if status is None:
        return ""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def judge(item: Input, code: grpc.StatusCode, reason: str, details: str) -> str | None:
    """The rule ``code`` breaks for ``item``, or None."""
    if code in FORBIDDEN_CODES:
        return f"{code.name}: {details[:200]}"
    if TRAILERS_SYMPTOM in details:
        return f"{TRAILERS_TOO_LARGE}: {details[:200]}"
    if item.expect is not None and code != item.expect:
        return f"expected {item.expect.name}, got {code.name} ({reason}): {details[:200]}"
    if item.kind == "deep_nesting" and reason != "MALFORMED_REQUEST":
        return f"expected reason MALFORMED_REQUEST, got {reason!r}"
    if code not in CALLER_CODES:
        return f"{code.name} is no answer to a caller's mistake: {details[:200]}"
    return None


class Fuzzer:
    """Sends hostile bodies to the services at ``addresses`` with ``concurrency`` calls in
    flight, and tallies the answers."""

    def __init__(
        self, addresses: Mapping[str, str], *, concurrency: int = 16, timeout: float = 20.0
    ) -> None:
        self.addresses = dict(addresses)
        self.concurrency = concurrency
        self.timeout = timeout
        self.tally = Tally()

    async def run(self, inputs: Iterator[Input]) -> Tally:
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        channels = {
            name: grpc.aio.insecure_channel(address, options=options)
            for name, address in self.addresses.items()
        }
        queue: asyncio.Queue[Input | None] = asyncio.Queue(maxsize=self.concurrency * 4)

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                await self._send(channels[item.method.service], item)

        try:
            workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
            for item in inputs:
                await queue.put(item)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for channel in channels.values():
                await channel.close(None)
        return self.tally

    async def _send(self, channel: grpc.aio.Channel, item: Input) -> None:
        # No serializers: the bytes go on the wire as they are, and come back as bytes.
        call = channel.unary_unary(item.method.path, None, None)
        try:
            await call(item.body, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            details = error.details() or ""
            problem = judge(item, error.code(), _reason(error), details)
            code = TRAILERS_TOO_LARGE if TRAILERS_SYMPTOM in details else error.code().name
        else:
            problem = judge(item, grpc.StatusCode.OK, "", "")
            code = grpc.StatusCode.OK.name
        self.tally.record(item, code, problem)


# --- nothing half-written -------------------------------------------------------------------

#: Per database, queries that must return no rows.
CONSISTENCY_QUERIES: dict[str, dict[str, str]] = {
    "orders": {
        "an order without lines": "SELECT id FROM orders o WHERE NOT EXISTS "
        "(SELECT 1 FROM order_lines l WHERE l.order_id = o.id)",
        "a line of no order": "SELECT order_id FROM order_lines l WHERE NOT EXISTS "
        "(SELECT 1 FROM orders o WHERE o.id = l.order_id)",
        "a step of no order": "SELECT order_id FROM order_steps s WHERE NOT EXISTS "
        "(SELECT 1 FROM orders o WHERE o.id = s.order_id)",
        "a line with no units": "SELECT order_id FROM order_lines WHERE quantity <= 0",
    },
    "inventory": {
        "stock outside 0 <= reserved <= on_hand": "SELECT product_id FROM stocks "
        "WHERE reserved < 0 OR on_hand < 0 OR reserved > on_hand",
        "a reservation without items": "SELECT id FROM reservations r WHERE NOT EXISTS "
        "(SELECT 1 FROM reservation_items i WHERE i.reservation_id = r.id)",
    },
    "payments": {
        "more captured than authorized": "SELECT id FROM payments WHERE "
        "captured_units > amount_units OR (captured_units = amount_units "
        "AND captured_nanos > amount_nanos)",
        "more refunded than captured": "SELECT id FROM payments WHERE "
        "refunded_units > captured_units OR (refunded_units = captured_units "
        "AND refunded_nanos > captured_nanos)",
    },
    "catalog": {
        "a product of no category": "SELECT id FROM products p WHERE NOT EXISTS "
        "(SELECT 1 FROM categories c WHERE c.id = p.category_id)",
    },
}


def consistency_problems(data_dir: Path, services: Sequence[str]) -> list[str]:
    """Half-written state in the services' SQLite databases under ``data_dir``: the
    integrity and foreign-key checks, outbox rows without a payload, and the per-service
    queries of :data:`CONSISTENCY_QUERIES`."""
    problems: list[str] = []
    for service in services:
        path = data_dir / service / f"{service}.db"
        if not path.is_file():
            problems.append(f"{service}: no database at {path.name}")
            continue
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if (verdict := db.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
                problems.append(f"{service}: integrity_check says {verdict}")
            for row in db.execute("PRAGMA foreign_key_check"):
                problems.append(f"{service}: foreign key broken: {row}")
            queries = dict(CONSISTENCY_QUERIES.get(service, {}))
            if "outbox" in tables:
                queries["an outbox row without payload"] = (
                    "SELECT event_id FROM outbox WHERE payload IS NULL OR length(payload) = 0 "
                    "OR event_type = ''"
                )
            for what, query in queries.items():
                rows = db.execute(query).fetchall()
                if rows:
                    problems.append(f"{service}: {what}: {rows[:5]}")
    return problems
