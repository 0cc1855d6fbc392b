"""The inventory contract's ``buf.validate`` rules state what inventory itself enforces.

Each bad request below breaks a rule of the contract; inventory's own conversion must
reject it too, naming the same fields. That a reservation names each product once is
left to inventory: a rule could only name the whole list, where inventory names the
repeated item (``items[1].product``).
"""

from __future__ import annotations

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message

from agora.inventory.v1 import inventory_pb2
from agora.inventory.v1 import inventory_service_pb2 as pb
from inventory.entrypoints import convert
from tests.support.contract_rules import (
    ServiceCheck,
    assert_accepted_alike,
    assert_left_to_service,
    assert_rejected_alike,
    request_types,
    requests_with_rules,
)

SERVICE = pb.DESCRIPTOR.services_by_name["InventoryService"]
TOO_LONG_REQUEST_ID = "r" * 65

#: What inventory runs on each request type before any use case.
SERVICE_CHECKS: dict[type[Message], ServiceCheck] = {
    pb.SetStockRequest: convert.set_stock_command,
    pb.GetStockRequest: lambda r: convert.parse_stock_name(r.name),
    pb.ReserveStockRequest: convert.reserve_stock_command,
    pb.CommitReservationRequest: convert.commit_reservation_command,
    pb.ReleaseReservationRequest: convert.release_reservation_command,
    pb.GetReservationRequest: lambda r: convert.parse_reservation_name(r.name),
}


def item(product: str = "products/tea", quantity: int = 1) -> inventory_pb2.ReservationItem:
    return inventory_pb2.ReservationItem(product=product, quantity=quantity)


def reserve(
    order: str = "orders/o1",
    items: list[inventory_pb2.ReservationItem] | None = None,
    ttl: Duration | None = None,
    request_id: str = "",
) -> pb.ReserveStockRequest:
    return pb.ReserveStockRequest(
        order=order, items=[item()] if items is None else items, ttl=ttl, request_id=request_id
    )


BAD_REQUESTS: list[tuple[str, Message, list[str]]] = [
    ("stock name missing", pb.SetStockRequest(on_hand=1), ["name"]),
    (
        "stock of a product name, negative on hand, request id too long",
        pb.SetStockRequest(name="products/tea", on_hand=-1, request_id=TOO_LONG_REQUEST_ID),
        ["name", "on_hand", "request_id"],
    ),
    (
        "on hand above the maximum",
        pb.SetStockRequest(name="products/tea/stock", on_hand=1_000_000_001),
        ["on_hand"],
    ),
    ("stock name missing to get", pb.GetStockRequest(), ["name"]),
    ("stock name of a stocks", pb.GetStockRequest(name="products/tea/stocks"), ["name"]),
    ("stock of a capital id", pb.GetStockRequest(name="products/Tea/stock"), ["name"]),
    ("reservation of nothing", pb.ReserveStockRequest(), ["order", "items"]),
    ("reservation for a malformed order", reserve(order="orders/O1"), ["order"]),
    (
        "reservation of too many items",
        reserve(items=[item(f"products/p{i}") for i in range(101)]),
        ["items"],
    ),
    (
        "items malformed",
        reserve(
            items=[item(), item("tea", 0), item("products/cake", 10_001)],
            request_id=TOO_LONG_REQUEST_ID,
        ),
        ["items[1].product", "items[1].quantity", "items[2].quantity", "request_id"],
    ),
    ("item without a product", reserve(items=[item("")]), ["items[0].product"]),
    ("time to live under a second", reserve(ttl=Duration(nanos=500_000_000)), ["ttl"]),
    ("time to live over an hour", reserve(ttl=Duration(seconds=3601)), ["ttl"]),
    ("negative time to live", reserve(ttl=Duration(seconds=-5)), ["ttl"]),
    ("commit without a name", pb.CommitReservationRequest(), ["name"]),
    (
        "commit of a malformed name",
        pb.CommitReservationRequest(name="reservations/r 1", request_id=TOO_LONG_REQUEST_ID),
        ["name", "request_id"],
    ),
    ("release without a name", pb.ReleaseReservationRequest(), ["name"]),
    (
        "release of an order",
        pb.ReleaseReservationRequest(name="orders/o1", request_id=TOO_LONG_REQUEST_ID),
        ["name", "request_id"],
    ),
    ("reservation name missing", pb.GetReservationRequest(), ["name"]),
    ("reservation name empty id", pb.GetReservationRequest(name="reservations/"), ["name"]),
]


@pytest.mark.parametrize(
    ("request_message", "fields"),
    [pytest.param(request, fields, id=case) for case, request, fields in BAD_REQUESTS],
)
def test_the_service_rejects_what_the_contract_rejects_naming_the_same_fields(
    request_message: Message, fields: list[str]
) -> None:
    assert_rejected_alike(request_message, fields, SERVICE_CHECKS[type(request_message)])


GOOD_REQUESTS: list[Message] = [
    pb.SetStockRequest(name="products/tea/stock"),
    pb.SetStockRequest(
        name="products/tea/stock", on_hand=1_000_000_000, etag="e1", request_id="r" * 64
    ),
    pb.GetStockRequest(name="products/t" + "0" * 62 + "/stock"),
    reserve(),
    reserve(
        items=[item(f"products/p{i}", 10_000) for i in range(100)],
        ttl=Duration(seconds=1),
        request_id="r" * 64,
    ),
    # Zero means the default; fractions of a second are ignored, so 3600.9s is an hour.
    reserve(ttl=Duration()),
    reserve(ttl=Duration(seconds=3600, nanos=900_000_000)),
    reserve(ttl=Duration(seconds=1, nanos=1)),
    pb.CommitReservationRequest(name="reservations/r0123456789abcdef0123456789abcdef"),
    pb.ReleaseReservationRequest(name="reservations/r1", request_id="r-1"),
    pb.GetReservationRequest(name="reservations/r1"),
]


@pytest.mark.parametrize("request_message", GOOD_REQUESTS, ids=lambda r: type(r).__name__)
def test_requests_the_service_accepts_break_no_rule(request_message: Message) -> None:
    assert_accepted_alike(request_message, SERVICE_CHECKS[type(request_message)])


def test_a_product_listed_twice_is_left_to_the_service() -> None:
    request = reserve(items=[item(), item("products/cake"), item()])
    assert_left_to_service(
        request, ["items[2].product"], "INVALID_ARGUMENT", SERVICE_CHECKS[type(request)]
    )


def test_every_inventory_request_carries_rules() -> None:
    assert request_types(SERVICE) == {t.DESCRIPTOR.full_name for t in SERVICE_CHECKS}
    assert requests_with_rules(SERVICE) == {t.DESCRIPTOR.name for t in SERVICE_CHECKS}
