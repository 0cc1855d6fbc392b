"""AIP-158 paging: page sizes are clamped and tokens only work for the query that issued them."""

from __future__ import annotations

import base64
import json

import pytest

from runtime.errors import InvalidArgument
from runtime.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_page_token,
    encode_page_token,
    page_size,
)


def test_a_page_size_of_zero_means_the_default() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE
    assert page_size(0, default=20) == 20


def test_a_page_size_within_bounds_is_kept() -> None:
    assert page_size(1) == 1
    assert page_size(MAX_PAGE_SIZE) == MAX_PAGE_SIZE


def test_a_page_size_above_the_maximum_is_clamped() -> None:
    assert page_size(MAX_PAGE_SIZE + 1) == MAX_PAGE_SIZE
    assert page_size(10_000, maximum=100) == 100


@pytest.mark.parametrize("requested", [-1, -1000])
def test_a_negative_page_size_is_an_invalid_argument(requested: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        page_size(requested)

    assert raised.value.reason == "INVALID_ARGUMENT"
    assert [v.field for v in raised.value.violations] == ["page_size"]


@pytest.mark.parametrize("after", ["products/tea", "", "products/thé vert", "a" * 300])
def test_a_token_decodes_to_the_key_it_was_built_from(after: str) -> None:
    token = encode_page_token(after, query="category=categories/tea")

    assert decode_page_token(token, query="category=categories/tea") == after


def test_a_token_is_url_safe_and_unpadded() -> None:
    token = encode_page_token("products/?&=/+", query="q")

    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_an_empty_token_means_the_first_page() -> None:
    assert decode_page_token("", query="anything") is None


def test_a_token_from_another_query_is_rejected() -> None:
    token = encode_page_token("products/tea", query="category=categories/tea")

    with pytest.raises(InvalidArgument) as raised:
        decode_page_token(token, query="category=categories/coffee")

    assert raised.value.reason == "INVALID_PAGE_TOKEN"
    assert [v.field for v in raised.value.violations] == ["page_token"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forged(body: object) -> str:
    return _b64(json.dumps(body).encode())


def _real_query_hash() -> str:
    token = encode_page_token("x", query="q")
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    query_hash: str = body["q"]
    return query_hash


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "%%%%",
        "a",
        _b64(b"\xff\xfe\xfd"),
        _b64(b"not json"),
        _forged([1, 2, 3]),
        _forged("a string"),
        _forged({"a": "products/tea"}),
        _forged({"q": "0123456789abcdef"}),
        _forged({}),
        _forged(None),
    ],
)
def test_a_garbage_token_is_rejected(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        decode_page_token(token, query="q")

    assert raised.value.reason == "INVALID_PAGE_TOKEN"
    assert [v.field for v in raised.value.violations] == ["page_token"]


def test_a_forged_token_with_a_non_string_key_is_rejected() -> None:
    token = _forged({"a": 42, "q": _real_query_hash()})

    with pytest.raises(InvalidArgument) as raised:
        decode_page_token(token, query="q")

    assert raised.value.reason == "INVALID_PAGE_TOKEN"
