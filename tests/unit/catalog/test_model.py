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


def test_display_names_are_required_and_bounded() -> None:
    assert model.validate_display_name("  ", "d")[0].description == "is required"
    assert model.validate_display_name("x" * 201, "d")
    assert model.validate_display_name("x" * 200, "d") == []
