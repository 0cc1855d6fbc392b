"""Protobuf <-> domain conversion for inventory, including every check of request shape.

``field_behavior`` annotations document intent but enforce nothing, so required fields,
name formats and ranges are checked here; every problem in a request is reported at
once as a ``BadRequest`` field violation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from agora.inventory.v1 import inventory_pb2, inventory_service_pb2
from inventory.domain import model
from inventory.domain.commands import (
    CommitReservation,
    ReleaseReservation,
    ReserveStock,
    SetStock,
)
from inventory.domain.model import Reservation, ReservationItem, ReservationState, Stock
from runtime.requests import Violations, parse_name, read_idempotency, require_name

_STATES = {
    ReservationState.ACTIVE: inventory_pb2.RESERVATION_STATE_ACTIVE,
    ReservationState.COMMITTED: inventory_pb2.RESERVATION_STATE_COMMITTED,
    ReservationState.RELEASED: inventory_pb2.RESERVATION_STATE_RELEASED,
    ReservationState.EXPIRED: inventory_pb2.RESERVATION_STATE_EXPIRED,
}


def parse_stock_name(name: str, field_path: str = "name") -> str:
    """The product id in ``products/{product}/stock``."""
    return require_name(name, "products", field_path, suffix="/stock")


def parse_reservation_name(name: str, field_path: str = "name") -> str:
    return require_name(name, "reservations", field_path)


def stock_to_proto(stock: Stock) -> inventory_pb2.Stock:
    return inventory_pb2.Stock(
        name=stock.name,
        product=stock.product,
        on_hand=stock.on_hand,
        reserved=stock.reserved,
        available=stock.available,
        update_time=_timestamp(stock.update_time),
        etag=stock.etag,
    )


def reservation_to_proto(reservation: Reservation) -> inventory_pb2.Reservation:
    return inventory_pb2.Reservation(
        name=reservation.name,
        order=reservation.order,
        items=[
            inventory_pb2.ReservationItem(product=item.product, quantity=item.quantity)
            for item in reservation.items
        ],
        state=_STATES[reservation.state],
        create_time=_timestamp(reservation.create_time),
        expire_time=_timestamp(reservation.expire_time),
        update_time=_timestamp(reservation.update_time),
    )


def set_stock_command(request: inventory_service_pb2.SetStockRequest) -> SetStock:
    violations = Violations()
    product_id = parse_name(request.name, "products", "name", violations, suffix="/stock")
    violations.extend(model.validate_on_hand(request.on_hand, "on_hand"))
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    return SetStock(product_id, request.on_hand, request.etag, idempotency)


def reserve_stock_command(request: inventory_service_pb2.ReserveStockRequest) -> ReserveStock:
    violations = Violations()
    order_id = parse_name(request.order, "orders", "order", violations)
    if not request.items:
        violations.add("items", "is required: name at least one product")
    elif len(request.items) > model.MAX_ITEMS:
        violations.add("items", f"must hold at most {model.MAX_ITEMS} items")
    items: list[ReservationItem] = []
    seen: set[str] = set()
    for index, item in enumerate(request.items):
        path = f"items[{index}]"
        product_id = parse_name(item.product, "products", f"{path}.product", violations)
        if product_id and product_id in seen:
            violations.add(f"{path}.product", "names a product already listed; list each once")
        seen.add(product_id)
        violations.extend(model.validate_quantity(item.quantity, f"{path}.quantity"))
        items.append(ReservationItem(product_id, item.quantity))
    ttl = model.DEFAULT_TTL
    if request.HasField("ttl") and (request.ttl.seconds or request.ttl.nanos):
        # Fractions of a second are ignored, as the contract says.
        ttl = timedelta(seconds=request.ttl.seconds)
        violations.extend(model.validate_ttl(ttl, "ttl"))
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    return ReserveStock(order_id, tuple(items), ttl, idempotency)


def commit_reservation_command(
    request: inventory_service_pb2.CommitReservationRequest,
) -> CommitReservation:
    violations = Violations()
    reservation_id = parse_name(request.name, "reservations", "name", violations)
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    return CommitReservation(reservation_id, idempotency)


def release_reservation_command(
    request: inventory_service_pb2.ReleaseReservationRequest,
) -> ReleaseReservation:
    violations = Violations()
    reservation_id = parse_name(request.name, "reservations", "name", violations)
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    return ReleaseReservation(reservation_id, idempotency)


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
