"""Identity's rules: email, password and display-name checks, token families."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from identity.domain import model
from identity.domain.model import TokenFamily

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "email",
    ["ada@example.com", "Ada.Lovelace+shop@mail.example.co.uk", "x@a-b.io", "o'neil@example.ie"],
)
def test_ordinary_addresses_are_valid(email: str) -> None:
    assert model.validate_email(email, "email") == []


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "a da@example.com",
        "ada@-example.com",
        "ada@example..com",
        "ädä@example.com",
        "a" * 65 + "@example.com",
        "ada@" + "a" * 250 + ".com",
    ],
)
def test_malformed_addresses_are_refused(email: str) -> None:
    (violation,) = model.validate_email(email, "email")
    assert violation.field == "email"


def test_email_key_ignores_case_and_surrounding_space() -> None:
    assert model.email_key("  Ada@Example.COM ") == "ada@example.com"


@pytest.mark.parametrize(
    ("password", "ok"),
    [("", False), ("1234567", False), ("12345678", True), ("é" * 128, True), ("x" * 129, False)],
)
def test_passwords_are_8_to_128_code_points(password: str, ok: bool) -> None:
    assert (model.validate_password(password, "password") == []) is ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [("Ada", True), ("   ", False), (" " + "a" * 100 + " ", True), ("a" * 101, False)],
)
def test_display_names_are_1_to_100_characters_once_stripped(name: str, ok: bool) -> None:
    assert (model.validate_display_name(name, "display_name") == []) is ok


def test_a_family_expires_at_its_expire_time() -> None:
    family = TokenFamily("f", "uada", NOON, NOON + timedelta(days=30))
    assert not family.expired(NOON + timedelta(days=30, seconds=-1))
    assert family.expired(NOON + timedelta(days=30))
    assert not family.revoked


def test_refresh_tokens_are_random_and_stored_as_sha256() -> None:
    first, second = model.new_refresh_token(), model.new_refresh_token()
    assert first != second
    assert len(first) == 43
    assert len(model.hash_refresh_token(first)) == 64
    assert model.hash_refresh_token(first) != first
