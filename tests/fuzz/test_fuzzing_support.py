"""The fuzzer's own parts: what it generates parses, what it breaks is broken, and the
consistency check finds a half-written order."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import DecodeError

from tests.support.fuzzing import (
    MAX_MESSAGE_BYTES,
    NESTING_DEPTH,
    Input,
    MessageGenerator,
    agora_methods,
    consistency_problems,
    hostile_bodies,
    judge,
    nested_groups,
    oversized_body,
)
from tests.support.shop import CHECKOUT_SERVICES, NOTIFICATION_SERVICES

METHODS = agora_methods(CHECKOUT_SERVICES + NOTIFICATION_SERVICES)


def test_every_method_of_every_service_is_found() -> None:
    assert len(METHODS) >= 30
    assert {m.service for m in METHODS} == set(CHECKOUT_SERVICES + NOTIFICATION_SERVICES)
    assert "/agora.orders.v1.OrderService/PlaceOrder" in {m.path for m in METHODS}


def test_generated_messages_round_trip_and_vary() -> None:
    generator = MessageGenerator(random.Random(7))
    for method in METHODS:
        encodings = set()
        for _ in range(30):
            encoded = generator.message(method.request).SerializeToString()
            assert method.request.FromString(encoded).SerializeToString() == encoded
            encodings.add(encoded)
        if method.request.DESCRIPTOR.fields:  # GetJwks takes an empty request
            assert len(encodings) > 5, method.path


def test_the_same_seed_makes_the_same_bodies() -> None:
    method = METHODS[0]
    first = [i.body for i in hostile_bodies(method, 50, random.Random(3))]
    again = [i.body for i in hostile_bodies(method, 50, random.Random(3))]
    assert first == again


def test_nested_groups_pass_the_parsers_recursion_limit() -> None:
    request = METHODS[0].request
    request.FromString(nested_groups(15, 50))  # within the limit: parses
    with pytest.raises(DecodeError):
        request.FromString(nested_groups(15, NESTING_DEPTH))


def test_oversized_bodies_are_over_the_limit_and_still_well_formed() -> None:
    for method in METHODS:
        body = oversized_body(method)
        assert len(body) > MAX_MESSAGE_BYTES
        method.request.FromString(body)


def test_judge_refuses_server_errors_and_wrong_expected_codes() -> None:
    plain = Input(METHODS[0], "message", b"")
    oversized = Input(METHODS[0], "oversized", b"", grpc.StatusCode.RESOURCE_EXHAUSTED)
    deep = Input(METHODS[0], "deep_nesting", b"", grpc.StatusCode.INVALID_ARGUMENT)
    assert judge(plain, grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID", "") is None
    assert judge(plain, grpc.StatusCode.INTERNAL, "", "boom") is not None
    assert judge(plain, grpc.StatusCode.UNKNOWN, "", "") is not None
    assert judge(plain, grpc.StatusCode.UNAVAILABLE, "", "") is not None
    assert judge(plain, grpc.StatusCode.RESOURCE_EXHAUSTED, "", "metadata size exceeds") is not None
    assert judge(oversized, grpc.StatusCode.INVALID_ARGUMENT, "", "") is not None
    assert judge(oversized, grpc.StatusCode.RESOURCE_EXHAUSTED, "", "too big") is None
    assert judge(deep, grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID", "") is not None
    assert judge(deep, grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST", "") is None


def test_the_consistency_check_finds_an_order_without_lines(tmp_path: Path) -> None:
    (tmp_path / "orders").mkdir()
    with sqlite3.connect(tmp_path / "orders" / "orders.db") as db:
        db.executescript(
            "CREATE TABLE orders (id TEXT PRIMARY KEY);"
            "CREATE TABLE order_lines (order_id TEXT, position INT, quantity INT);"
            "CREATE TABLE order_steps (order_id TEXT, position INT);"
            "CREATE TABLE outbox (event_id TEXT, event_type TEXT, payload BLOB);"
            "INSERT INTO orders VALUES ('whole'), ('half');"
            "INSERT INTO order_lines VALUES ('whole', 0, 1);"
            "INSERT INTO outbox VALUES ('e1', 'agora.orders.v1.OrderPlaced', x'0a00');"
        )
    assert consistency_problems(tmp_path, ["orders"]) == [
        "orders: an order without lines: [('half',)]"
    ]
    with sqlite3.connect(tmp_path / "orders" / "orders.db") as db:
        db.execute("INSERT INTO outbox VALUES ('e2', 'agora.orders.v1.OrderPlaced', x'')")
    assert consistency_problems(tmp_path, ["orders"])[-1].startswith(
        "orders: an outbox row without payload"
    )
