"""Inputs of the payments use cases, already validated by the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass

from payments.domain.model import Money
from runtime.idempotency import Idempotency


@dataclass(frozen=True)
class AuthorizePayment:
    order_id: str
    user_id: str
    amount: Money
    #: Opaque to the domain: only the card processor reads it. Never stored or logged.
    payment_token: str
    idempotency: Idempotency

    def __repr__(self) -> str:
        # Keeps the token out of tracebacks and logs.
        return (
            f"AuthorizePayment(order_id={self.order_id!r}, user_id={self.user_id!r}, "
            f"amount={self.amount!s}, payment_token='***', idempotency={self.idempotency!r})"
        )


@dataclass(frozen=True)
class CapturePayment:
    payment_id: str
    idempotency: Idempotency


@dataclass(frozen=True)
class VoidPayment:
    payment_id: str
    idempotency: Idempotency


@dataclass(frozen=True)
class RefundPayment:
    payment_id: str
    #: None refunds everything not refunded yet.
    amount: Money | None
    idempotency: Idempotency
