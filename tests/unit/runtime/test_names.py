"""The resource id rule every service shares."""

from __future__ import annotations

import pytest

from runtime.names import validate_id


@pytest.mark.parametrize("good", ["a", "green-tea", "p0123", "a" * 63])
def test_valid_ids(good: str) -> None:
    assert validate_id(good, "id") == []


@pytest.mark.parametrize("bad", ["", "Green", "1tea", "tea_leaf", "a" * 64, "tea/x", "té", "tea\n"])
def test_invalid_ids(bad: str) -> None:
    assert [v.field for v in validate_id(bad, "product_id")] == ["product_id"]
