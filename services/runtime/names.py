"""Resource ids, the last segment of a resource name (AIP-122), the same in every service.

Plain Python, so domains use it too::

    violations = validate_id("green-tea", "product_id")   # [] when valid
"""

from __future__ import annotations

import re

from runtime.errors import FieldViolation

#: 1-63 lowercase letters, digits and hyphens, starting with a letter (``products/{id}``).
ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")


def validate_id(value: str, field_path: str) -> list[FieldViolation]:
    """The violation of ``field_path`` if ``value`` is not a valid resource id, else none."""
    if ID_PATTERN.match(value):
        return []
    return [
        FieldViolation(
            field_path,
            "must be 1-63 lowercase letters, digits and hyphens, starting with a letter",
        )
    ]
