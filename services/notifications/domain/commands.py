"""Inputs of the notifications use cases: the handled events, already converted.

Each carries the id of the event it comes from, which makes the notification unique.
"""

from __future__ import annotations

from dataclasses import dataclass

from notifications.domain.model import Money


@dataclass(frozen=True)
class WelcomeUser:
    """From ``UserSignedUp``: record the user's address, and greet them."""

    event_id: str
    user_id: str
    email: str
    display_name: str


@dataclass(frozen=True)
class OrderLine:
    display_name: str
    quantity: int
    unit_price: Money
    line_total: Money


@dataclass(frozen=True)
class OrderSummary:
    """What a message needs of an order."""

    order_id: str
    user_id: str
    lines: tuple[OrderLine, ...]
    total: Money


@dataclass(frozen=True)
class NotifyOrderConfirmed:
    """From ``OrderConfirmed``."""

    event_id: str
    order: OrderSummary


@dataclass(frozen=True)
class NotifyOrderCancelled:
    """From ``OrderCancelled``; ``reason`` is the contract's ``CancellationReason`` without
    its prefix, such as ``OUT_OF_STOCK`` (empty if unknown)."""

    event_id: str
    order: OrderSummary
    reason: str


@dataclass(frozen=True)
class NotifyPaymentRefunded:
    """From ``PaymentRefunded``."""

    event_id: str
    payment_id: str
    order_id: str
    user_id: str
    #: This refund alone.
    amount: Money
    #: Every refund of the payment so far, this one included.
    refunded_total: Money
    #: True when the whole captured amount has now been refunded.
    fully_refunded: bool


NotifyCommand = WelcomeUser | NotifyOrderConfirmed | NotifyOrderCancelled | NotifyPaymentRefunded
