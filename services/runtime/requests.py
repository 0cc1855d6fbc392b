"""Entrypoint helpers for checking a request's shape before it becomes a domain command.

``field_behavior`` annotations document intent but enforce nothing, so each service's
``convert.py`` checks required fields, names and request ids itself. It collects every
problem in a :class:`Violations` and raises them together as one ``BadRequest``::

    violations = Violations()
    product_id = parse_name(request.name, "products", "name", violations)
    idempotency = read_idempotency(request, violations)
    violations.raise_if_any()
    return DeleteProduct(product_id, request.etag, idempotency)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable

from google.protobuf.message import Message

from runtime.errors import FieldViolation, InvalidArgument
from runtime.idempotency import Idempotency
from runtime.names import ID_PATTERN

#: The longest ``request_id`` accepted (a UUID needs 36 characters).
MAX_REQUEST_ID = 64

#: Changes a copy of a request before it is fingerprinted, to keep secrets out of the hash.
Redaction = Callable[[Message], None]


class Violations:
    """Collects field violations and raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field_path: str, description: str) -> None:
        self.items.append(FieldViolation(field_path, description))

    def extend(self, violations: Iterable[FieldViolation]) -> None:
        self.items.extend(violations)

    def raise_if_any(self, reason: str | None = None) -> None:
        """Raises every violation as one ``InvalidArgument`` (with ``reason``, if given)."""
        if self.items:
            raise InvalidArgument.for_fields(self.items, reason=reason)


def parse_name(
    name: str,
    collection: str,
    field_path: str,
    violations: Violations,
    pattern: re.Pattern[str] = ID_PATTERN,
    *,
    suffix: str = "",
    variable: str = "id",
) -> str:
    """The id in ``{collection}/{id}{suffix}``; records a violation and returns "" if malformed.

    ``pattern`` is what the id must match (by default the rule of :mod:`runtime.names`);
    ``variable`` names the id in the message, as in ``users/{user}``. For example
    ``parse_name("products/tea/stock", "products", "name", violations, suffix="/stock")``
    returns ``"tea"``.
    """
    prefix = f"{collection}/"
    if not name:
        violations.add(field_path, "is required")
        return ""
    found = name[len(prefix) : len(name) - len(suffix)]
    if not name.startswith(prefix) or not name.endswith(suffix) or not pattern.match(found):
        form = f"{collection}/{{{variable}}}{suffix}"
        violations.add(field_path, f"must have the form {form} with a valid id")
        return ""
    return found


def require_name(
    name: str,
    collection: str,
    field_path: str = "name",
    *,
    suffix: str = "",
    variable: str = "id",
) -> str:
    """Like :func:`parse_name` for a request with one name: raises InvalidArgument if bad."""
    violations = Violations()
    found = parse_name(name, collection, field_path, violations, suffix=suffix, variable=variable)
    violations.raise_if_any()
    return found


def read_idempotency(
    request: Message,
    violations: Violations,
    *,
    required: bool = False,
    redact: Redaction | None = None,
) -> Idempotency | None:
    """The request's ``request_id`` and fingerprint; None if it has none (or a bad one).

    A missing id is a violation only when ``required``; an over-long one always is.
    ``redact`` is passed on to :func:`fingerprint`.
    """
    request_id: str = getattr(request, "request_id")  # noqa: B009 - every mutating request has one
    if not request_id:
        if required:
            violations.add("request_id", "is required: a UUID that makes the call idempotent")
        return None
    if len(request_id) > MAX_REQUEST_ID:
        violations.add("request_id", f"must be at most {MAX_REQUEST_ID} characters (a UUID)")
        return None
    return Idempotency(request_id, fingerprint(request, redact))


def fingerprint(request: Message, redact: Redaction | None = None) -> str:
    """A hash of the request without its ``request_id``: what a replay must match.

    ``redact`` changes the copy that is hashed first, so that secrets never reach the stored
    fingerprint, for example ``fingerprint(request, without_fields("password"))``.
    """
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    if redact is not None:
        redact(copy)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def without_fields(*names: str) -> Redaction:
    """A :data:`Redaction` that clears the fields ``names``."""

    def redact(request: Message) -> None:
        for name in names:
            request.ClearField(name)

    return redact
