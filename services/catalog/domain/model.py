"""Catalog's domain model: categories, products and money, with their validation rules."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from runtime.errors import FieldViolation

CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
MAX_DISPLAY_NAME = 200
MAX_DESCRIPTION = 10_000
NANOS_PER_UNIT = 1_000_000_000


@dataclass(frozen=True, order=True)
class Money:
    """An amount in one currency, as ``google.type.Money``: whole units plus nanos (1e-9 units)."""

    currency_code: str
    units: int
    nanos: int = 0

    def violations(self, field_path: str) -> list[FieldViolation]:
        """Everything wrong with this amount as a price, reported against ``field_path``."""
        problems = []
        if not CURRENCY_PATTERN.match(self.currency_code):
            problems.append(
                FieldViolation(
                    f"{field_path}.currency_code",
                    "must be a three-letter ISO 4217 code such as EUR",
                )
            )
        if not -NANOS_PER_UNIT < self.nanos < NANOS_PER_UNIT:
            problems.append(FieldViolation(f"{field_path}.nanos", "must be within +/-999,999,999"))
        elif self.units < 0 or self.nanos < 0:
            problems.append(FieldViolation(field_path, "must not be negative"))
        return problems

    @property
    def total_nanos(self) -> int:
        """The amount as one integer of nanos, for ordering and filtering."""
        return self.units * NANOS_PER_UNIT + self.nanos

    @classmethod
    def from_total_nanos(cls, currency_code: str, total: int) -> Money:
        units, nanos = divmod(total, NANOS_PER_UNIT)
        return cls(currency_code, units, nanos)


@dataclass(frozen=True)
class Category:
    """A group of products. ``id`` is the last segment of ``categories/{id}``."""

    id: str
    display_name: str
    create_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"categories/{self.id}"


@dataclass(frozen=True)
class Product:
    """A product for sale. ``revision`` counts changes and feeds the etag."""

    id: str
    display_name: str
    category_id: str
    price: Money
    description: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None
    revision: int = 1

    @property
    def name(self) -> str:
        return f"products/{self.id}"

    @property
    def etag(self) -> str:
        digest = hashlib.sha256(f"{self.id}/{self.revision}".encode()).hexdigest()
        return digest[:16]


@dataclass(frozen=True)
class ProductChanges:
    """New values for the mutable fields of a product; None means "leave as is"."""

    display_name: str | None = None
    description: str | None = None
    category_id: str | None = None
    price: Money | None = None

    def changed_fields(self) -> list[str]:
        """The fields given a new value, whether or not it differs from the current one."""
        return [
            name
            for name in ("display_name", "description", "category_id", "price")
            if getattr(self, name) is not None
        ]

    def differences(self, product: Product) -> list[str]:
        """The given fields whose new value differs from ``product``'s, in field order."""
        return [
            name for name in self.changed_fields() if getattr(self, name) != getattr(product, name)
        ]

    def apply(self, product: Product, now: datetime) -> Product:
        updates = {name: getattr(self, name) for name in self.changed_fields()}
        return replace(product, **updates, update_time=now, revision=product.revision + 1)


@dataclass(frozen=True)
class ProductQuery:
    """A page of products: optional category and inclusive price bounds, keyset-paged by id."""

    page_size: int
    category_id: str | None = None
    min_price: Money | None = None
    max_price: Money | None = None
    after_id: str | None = None

    @property
    def currency_code(self) -> str | None:
        bound = self.min_price or self.max_price
        return bound.currency_code if bound else None

    def fingerprint(self) -> str:
        """Identifies the filter (not the position), so page tokens stay with their query."""
        return "|".join(str(part) for part in (self.category_id, self.min_price, self.max_price))


@dataclass(frozen=True)
class Page:
    """One page of results; ``next_after`` is where the next page starts, None at the end."""

    items: list[Product] = field(default_factory=list)
    next_after: str | None = None


def validate_display_name(value: str, field_path: str) -> list[FieldViolation]:
    if not value.strip():
        return [FieldViolation(field_path, "is required")]
    if len(value) > MAX_DISPLAY_NAME:
        return [FieldViolation(field_path, f"must be at most {MAX_DISPLAY_NAME} characters")]
    return []


def validate_description(value: str, field_path: str) -> list[FieldViolation]:
    if len(value) > MAX_DESCRIPTION:
        return [FieldViolation(field_path, f"must be at most {MAX_DESCRIPTION} characters")]
    return []
