"""Inventory's model rules: quantities, names, expiry and etags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inventory.domain import model
from inventory.domain.model import Reservation, ReservationItem, ReservationState, Stock

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def reservation(state: ReservationState = ReservationState.ACTIVE) -> Reservation:
    return Reservation(
        id="rabc",
        order_id="o1",
        items=(ReservationItem("sencha", 1), ReservationItem("assam", 2)),
        state=state,
        create_time=NOON,
        expire_time=NOON + timedelta(minutes=15),
        update_time=NOON,
    )


def test_stock_names_and_available_units() -> None:
    stock = Stock("assam", on_hand=10, reserved=4)
    assert (stock.name, stock.product, stock.available) == (
        "products/assam/stock",
        "products/assam",
        6,
    )


def test_the_etag_changes_with_the_revision_only() -> None:
    assert Stock("assam", 10, revision=1).etag == Stock("assam", 99, revision=1).etag
    assert Stock("assam", 10, revision=1).etag != Stock("assam", 10, revision=2).etag


def test_only_an_active_reservation_at_or_past_its_expiry_is_overdue() -> None:
    expiry = NOON + timedelta(minutes=15)
    assert not reservation().is_overdue(expiry - timedelta(microseconds=1))
    assert reservation().is_overdue(expiry)
    assert not reservation(ReservationState.COMMITTED).is_overdue(expiry + timedelta(days=1))


def test_items_are_locked_in_product_order() -> None:
    assert [i.product_id for i in reservation().items_by_product()] == ["assam", "sencha"]


def test_quantity_on_hand_and_ttl_ranges() -> None:
    assert model.validate_quantity(1, "q") == []
    assert model.validate_quantity(10_000, "q") == []
    assert model.validate_quantity(0, "q")
    assert model.validate_quantity(10_001, "q")
    assert model.validate_on_hand(0, "n") == []
    assert model.validate_on_hand(10**9, "n") == []
    assert model.validate_on_hand(-1, "n")
    assert model.validate_on_hand(10**9 + 1, "n")
    assert model.validate_ttl(timedelta(seconds=1), "t") == []
    assert model.validate_ttl(timedelta(hours=1), "t") == []
    assert model.validate_ttl(timedelta(hours=1, seconds=1), "t")
    assert model.validate_ttl(timedelta(seconds=-5), "t")
