"""Inputs of the orders use cases, already validated by the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass

from orders.domain.model import LineItem
from runtime.idempotency import Idempotency


@dataclass(frozen=True)
class PlaceOrder:
    user_id: str
    items: tuple[LineItem, ...]
    #: Opaque to orders: passed unchanged to payments. Never logged.
    payment_token: str
    idempotency: Idempotency

    def __repr__(self) -> str:
        return (
            f"PlaceOrder(user_id={self.user_id!r}, items={self.items!r}, "
            f"payment_token='***', idempotency={self.idempotency!r})"
        )


@dataclass(frozen=True)
class CancelOrder:
    order_id: str
    etag: str
    idempotency: Idempotency | None
