"""AIP-158 paging helpers: page size clamping and opaque page tokens tied to their query.

A token is the base64url of a small JSON object: the last key of the page and a hash of
the query it belongs to, so a token replayed with another filter is rejected::

    size = page_size(request.page_size)
    after = decode_page_token(request.page_token, query="category=books")
    token = encode_page_token(last_key, query="category=books")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime

from runtime.errors import FieldViolation, InvalidArgument
from runtime.names import ID_PATTERN

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(
    requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """0 means ``default``, values above ``maximum`` are clamped, negative values are invalid.

    Raises:
        InvalidArgument: reason ``INVALID_ARGUMENT``, as every contract documents for a
            negative ``page_size`` (their ``page_size >= 0`` rules answer the same way).
    """
    if requested < 0:
        raise InvalidArgument(
            "page_size must not be negative",
            violations=[FieldViolation("page_size", "must be >= 0")],
        )
    return default if requested == 0 else min(requested, maximum)


def encode_page_token(after: str, query: str) -> str:
    """Builds the opaque token for the page that starts after key ``after`` of ``query``."""
    body = json.dumps({"a": after, "q": _query_hash(query)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_page_token(token: str, query: str) -> str | None:
    """Returns the key after which the page starts, or None for the first page.

    Raises:
        InvalidArgument: reason ``INVALID_PAGE_TOKEN`` if the token is malformed or was
            issued for a different query.
    """
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, query_hash = body["a"], body["q"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise _invalid_token("page_token is not a token this service issued") from None
    if not isinstance(after, str) or query_hash != _query_hash(query):
        raise _invalid_token("page_token belongs to a different query; keep the same filter")
    return after


def _query_hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


#: Where a page starts in a list ordered by (create_time, id), newest first.
TimePosition = tuple[datetime, str]


def encode_time_position(after: TimePosition | None, query: str) -> str:
    """The token of the page after ``after`` in a (create_time, id) ordering; "" at the end."""
    if after is None:
        return ""
    create_time, resource_id = after
    return encode_page_token(f"{create_time.isoformat()}|{resource_id}", query)


def decode_time_position(token: str, query: str) -> TimePosition | None:
    """What :func:`encode_time_position` encoded; None for the first page.

    Raises:
        InvalidArgument: reason ``INVALID_PAGE_TOKEN``, as :func:`decode_page_token`.
    """
    after = decode_page_token(token, query)
    if after is None:
        return None
    create_time, _, resource_id = after.partition("|")
    try:
        position = datetime.fromisoformat(create_time)
    except ValueError:
        position = None
    if position is None or position.tzinfo is None or not ID_PATTERN.match(resource_id):
        raise _invalid_token("page_token is not a token this service issued")
    return position, resource_id


def _invalid_token(message: str) -> InvalidArgument:
    return InvalidArgument(
        message,
        violations=[FieldViolation("page_token", message)],
        reason="INVALID_PAGE_TOKEN",
    )
