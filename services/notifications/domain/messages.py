"""What each notification says: a subject line and a plain-text body per event type."""

from __future__ import annotations

from dataclasses import dataclass

from notifications.domain.commands import (
    NotifyOrderCancelled,
    NotifyOrderConfirmed,
    NotifyPaymentRefunded,
    OrderSummary,
    WelcomeUser,
)

SIGNATURE = "\n-- \nAgora, the shop\n"

#: A cancellation reason in words, by the contract's ``CancellationReason`` suffix.
CANCELLATION_REASONS = {
    "OUT_OF_STOCK": "some of the items were out of stock",
    "PAYMENT_DECLINED": "the payment was declined",
    "PAYMENT_FAILED": "the payment could not be completed",
    "CUSTOMER_REQUESTED": "you asked us to cancel it",
    "RESERVATION_EXPIRED": "the checkout could not be finished in time",
    "CHECKOUT_ERROR": "an unexpected error stopped the checkout",
}
UNKNOWN_REASON = "of a problem during checkout"


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def greeting(name: str) -> str:
    return f"Hello {name},\n\n" if name else "Hello,\n\n"


def welcome(command: WelcomeUser) -> Message:
    return Message(
        subject="Welcome to Agora",
        body=greeting(command.display_name)
        + f"your account {command.email} is ready. Happy shopping!\n"
        + SIGNATURE,
    )


def order_confirmed(command: NotifyOrderConfirmed, name: str) -> Message:
    order = command.order
    return Message(
        subject=f"Your order {order.order_id} is confirmed",
        body=greeting(name)
        + f"we have confirmed your order orders/{order.order_id}:\n\n"
        + _lines(order)
        + "\nWe will let you know if anything changes.\n"
        + SIGNATURE,
    )


def order_cancelled(command: NotifyOrderCancelled, name: str) -> Message:
    order = command.order
    because = CANCELLATION_REASONS.get(command.reason)
    why = f"because {because}" if because else f"because {UNKNOWN_REASON}"
    return Message(
        subject=f"Your order {order.order_id} was cancelled",
        body=greeting(name)
        + f"your order orders/{order.order_id} was cancelled {why}.\n"
        + "Any amount held or charged on your card for it is released or refunded.\n\n"
        + _lines(order)
        + SIGNATURE,
    )


def payment_refunded(command: NotifyPaymentRefunded, name: str) -> Message:
    order = f" for order orders/{command.order_id}" if command.order_id else ""
    if command.fully_refunded:
        extent = f"The payment is now fully refunded ({command.refunded_total} in all)."
    else:
        extent = f"Refunds of this payment so far: {command.refunded_total}."
    return Message(
        subject=f"You have been refunded {command.amount}",
        body=greeting(name)
        + f"we have refunded {command.amount} of your payment payments/{command.payment_id}"
        + f"{order}.\n{extent}\n"
        + "It may take a few days to appear on your statement.\n"
        + SIGNATURE,
    )


def _lines(order: OrderSummary) -> str:
    rows = [
        f"  {line.quantity} x {line.display_name} at {line.unit_price}: {line.line_total}\n"
        for line in order.lines
    ]
    return "".join(rows) + f"  Total: {order.total}\n"
