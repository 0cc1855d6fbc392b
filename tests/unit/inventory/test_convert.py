"""Request checks and conversions of inventory's entrypoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import duration_pb2

from agora.inventory.v1 import inventory_pb2
from agora.inventory.v1 import inventory_service_pb2 as pb
from inventory.domain.model import Reservation, ReservationItem, ReservationState, Stock
from inventory.entrypoints import convert
from runtime import requests
from runtime.errors import InvalidArgument

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def violated(call: object) -> list[str]:
    assert callable(call)
    with pytest.raises(InvalidArgument) as caught:
        call()
    return [v.field for v in caught.value.violations]


def item(product: str, quantity: int = 1) -> inventory_pb2.ReservationItem:
    return inventory_pb2.ReservationItem(product=product, quantity=quantity)


def test_stock_names_are_parsed_and_malformed_ones_refused() -> None:
    assert convert.parse_stock_name("products/assam/stock") == "assam"
    for bad in ("", "products/assam", "stocks/assam", "products/Assam/stock", "products//stock"):
        assert violated(lambda bad=bad: convert.parse_stock_name(bad)) == ["name"]


def test_set_stock_checks_name_quantity_and_request_id_together() -> None:
    request = pb.SetStockRequest(name="products/assam", on_hand=-1, request_id="x" * 65)
    assert violated(lambda: convert.set_stock_command(request)) == ["name", "on_hand", "request_id"]
    command = convert.set_stock_command(
        pb.SetStockRequest(name="products/assam/stock", on_hand=5, etag="e", request_id="r1")
    )
    assert (command.product_id, command.on_hand, command.etag) == ("assam", 5, "e")
    assert command.idempotency is not None
    assert command.idempotency.request_id == "r1"


def test_the_fingerprint_ignores_the_request_id_only() -> None:
    a = pb.SetStockRequest(name="products/assam/stock", on_hand=5, request_id="r1")
    b = pb.SetStockRequest(name="products/assam/stock", on_hand=5, request_id="r2")
    c = pb.SetStockRequest(name="products/assam/stock", on_hand=6, request_id="r1")
    assert requests.fingerprint(a) == requests.fingerprint(b) != requests.fingerprint(c)


def test_reserve_defaults_the_ttl_and_keeps_the_item_order() -> None:
    command = convert.reserve_stock_command(
        pb.ReserveStockRequest(order="orders/o1", items=[item("products/b", 2), item("products/a")])
    )
    assert command.order_id == "o1"
    assert command.items == (ReservationItem("b", 2), ReservationItem("a", 1))
    assert command.ttl == timedelta(minutes=15)
    assert command.idempotency is None


def test_reserve_ignores_fractions_of_a_second_in_the_ttl() -> None:
    request = pb.ReserveStockRequest(
        order="orders/o1",
        items=[item("products/a")],
        ttl=duration_pb2.Duration(seconds=90, nanos=500_000_000),
    )
    assert convert.reserve_stock_command(request).ttl == timedelta(seconds=90)


def test_reserve_reports_every_bad_field() -> None:
    request = pb.ReserveStockRequest(
        order="order-1",
        items=[item("products/a", 0), item("products/a", 10_001), item("products/B")],
        ttl=duration_pb2.Duration(seconds=3601),
    )
    assert violated(lambda: convert.reserve_stock_command(request)) == [
        "order",
        "items[0].quantity",
        "items[1].product",
        "items[1].quantity",
        "items[2].product",
        "ttl",
    ]


def test_reserve_needs_one_to_a_hundred_items() -> None:
    empty = pb.ReserveStockRequest(order="orders/o1")
    assert violated(lambda: convert.reserve_stock_command(empty)) == ["items"]
    many = pb.ReserveStockRequest(
        order="orders/o1", items=[item(f"products/p{i}") for i in range(101)]
    )
    assert violated(lambda: convert.reserve_stock_command(many)) == ["items"]


def test_a_sub_second_ttl_is_out_of_range() -> None:
    request = pb.ReserveStockRequest(
        order="orders/o1", items=[item("products/a")], ttl=duration_pb2.Duration(nanos=5)
    )
    assert violated(lambda: convert.reserve_stock_command(request)) == ["ttl"]


def test_commit_and_release_need_a_reservation_name() -> None:
    assert violated(
        lambda: convert.commit_reservation_command(pb.CommitReservationRequest(name="orders/x"))
    ) == ["name"]
    assert violated(
        lambda: convert.release_reservation_command(pb.ReleaseReservationRequest())
    ) == ["name"]


def test_domain_objects_become_protos() -> None:
    stock = convert.stock_to_proto(Stock("assam", 10, 4, NOON, revision=3))
    assert (stock.name, stock.product, stock.on_hand, stock.reserved, stock.available) == (
        "products/assam/stock",
        "products/assam",
        10,
        4,
        6,
    )
    assert stock.etag
    assert stock.update_time.ToDatetime(UTC) == NOON
    reservation = convert.reservation_to_proto(
        Reservation(
            "rabc",
            "o1",
            (ReservationItem("assam", 2),),
            ReservationState.EXPIRED,
            NOON,
            NOON + timedelta(minutes=15),
            NOON + timedelta(minutes=16),
        )
    )
    assert reservation.name == "reservations/rabc"
    assert reservation.order == "orders/o1"
    assert reservation.state == inventory_pb2.RESERVATION_STATE_EXPIRED
    assert [(i.product, i.quantity) for i in reservation.items] == [("products/assam", 2)]
