"""Validation rules of the catalog's domain model."""

from __future__ import annotations

import pytest

from catalog.domain import model
from catalog.domain.model import Money


@pytest.mark.parametrize(
    ("money", "bad_field"),
    [
        (Money("eur", 1), "price.currency_code"),
        (Money("EURO", 1), "price.currency_code"),
        (Money("EUR", -1), "price"),
        (Money("EUR", 0, -5), "price"),
        (Money("EUR", 1, 1_000_000_000), "price.nanos"),
    ],
)
def test_bad_prices_name_the_offending_field(money: Money, bad_field: str) -> None:
    assert [v.field for v in money.violations("price")] == [bad_field]


def test_a_good_price_has_no_violations() -> None:
    assert Money("EUR", 4, 500_000_000).violations("price") == []
    assert Money("JPY", 0).violations("price") == []


def test_money_orders_by_amount_through_total_nanos() -> None:
    assert Money("EUR", 1, 999_999_999).total_nanos < Money("EUR", 2).total_nanos
    assert Money.from_total_nanos("EUR", 4_500_000_000) == Money("EUR", 4, 500_000_000)


@pytest.mark.parametrize("good", ["a", "green-tea", "p0123", "a" * 63])
def test_valid_ids(good: str) -> None:
    assert model.validate_id(good, "id") == []


@pytest.mark.parametrize("bad", ["", "Green", "1tea", "tea_leaf", "a" * 64, "tea/x", "té"])
def test_invalid_ids(bad: str) -> None:
    assert [v.field for v in model.validate_id(bad, "product_id")] == ["product_id"]


def test_display_names_are_required_and_bounded() -> None:
    assert model.validate_display_name("  ", "d")[0].description == "is required"
    assert model.validate_display_name("x" * 201, "d")
    assert model.validate_display_name("x" * 200, "d") == []
