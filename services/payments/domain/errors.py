"""Payments' errors; each names its condition and carries a stable reason."""

from __future__ import annotations

from runtime.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)

DOMAIN = "payments.agora"


class PaymentNotFound(NotFound):
    reason = "PAYMENT_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"payment {name!r} does not exist", metadata={"payment": name})


class NotPaymentOwner(PermissionDenied):
    """The caller is a user other than the one who pays, and no admin.

    Also raised for a payment that does not exist: permission is checked before existence
    (AIP-211), so a user cannot probe which payments exist.
    """

    reason = "NOT_RESOURCE_OWNER"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"payment {name!r} is not one of yours: only the user who pays and admins may see it",
            metadata={"payment": name},
        )


class ActingForAnotherUser(PermissionDenied):
    """A user (no admin) asks for another user's payments."""

    reason = "NOT_RESOURCE_OWNER"

    def __init__(self, user: str) -> None:
        super().__init__(
            f"you may only list your own payments, not those of {user!r}",
            metadata={"user": user},
        )


class PaymentNotCapturable(FailedPrecondition):
    reason = "PAYMENT_NOT_CAPTURABLE"

    def __init__(self, name: str, state: str) -> None:
        super().__init__(
            f"payment {name!r} is {state}; only an AUTHORIZED payment can be captured",
            metadata={"payment": name, "state": f"PAYMENT_STATE_{state}"},
        )


class PaymentNotVoidable(FailedPrecondition):
    reason = "PAYMENT_NOT_VOIDABLE"

    def __init__(self, name: str, state: str) -> None:
        super().__init__(
            f"payment {name!r} is {state}; only an AUTHORIZED payment can be voided",
            metadata={"payment": name, "state": f"PAYMENT_STATE_{state}"},
        )


class PaymentNotRefundable(FailedPrecondition):
    reason = "PAYMENT_NOT_REFUNDABLE"

    def __init__(self, name: str, state: str) -> None:
        super().__init__(
            f"payment {name!r} is {state}; only a CAPTURED or PARTIALLY_REFUNDED payment "
            "can be refunded",
            metadata={"payment": name, "state": f"PAYMENT_STATE_{state}"},
        )


class PaymentNotRetryable(FailedPrecondition):
    """An authorization was retried on a payment that did not fail."""

    reason = "PAYMENT_NOT_RETRYABLE"

    def __init__(self, name: str, state: str) -> None:
        super().__init__(
            f"payment {name!r} is {state}; only a FAILED authorization can be retried",
            metadata={"payment": name, "state": f"PAYMENT_STATE_{state}"},
        )


class RefundExceedsCaptured(FailedPrecondition):
    reason = "REFUND_EXCEEDS_CAPTURED"

    def __init__(self, name: str, requested: str, refundable: str) -> None:
        super().__init__(
            f"cannot refund {requested} of payment {name!r}: only {refundable} is left to refund",
            metadata={"payment": name, "requested": requested, "refundable": refundable},
        )


class CurrencyMismatch(InvalidArgument):
    reason = "CURRENCY_MISMATCH"

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(
            f"amount is in {got} but the payment is in {expected}",
            violations=[
                FieldViolation("amount.currency_code", f"must be the payment's currency {expected}")
            ],
            metadata={"expected": expected, "currency_code": got},
        )


class InvalidPaymentToken(InvalidArgument):
    """The processor cannot use the payment token (for the simulation: a bad card number)."""

    reason = "INVALID_PAYMENT_TOKEN"

    def __init__(self, description: str) -> None:
        super().__init__(
            f"payment_token is not usable: {description}",
            violations=[FieldViolation("payment_token", description)],
        )


class PaymentDeclined(FailedPrecondition):
    """The processor refused the authorization; the declined attempt is kept."""

    reason = "PAYMENT_DECLINED"

    def __init__(self, name: str, reason: str | None = None) -> None:
        super().__init__(
            f"the card was declined ({reason or self.reason}); payment {name!r} is DECLINED",
            metadata={"payment": name},
            reason=reason,
        )


class ProcessorFailure(Unavailable):
    """The processor gave no answer; ``payment`` names the attempt kept as FAILED, if any."""

    def __init__(self, message: str, payment: str = "") -> None:
        super().__init__(
            message, metadata={"payment": payment} if payment else None, retry_after=1.0
        )


class ProcessorUnavailable(ProcessorFailure):
    reason = "PROCESSOR_UNAVAILABLE"

    def __init__(self, payment: str = "") -> None:
        super().__init__("the card processor cannot be reached; retry shortly", payment)


class ProcessorTimeout(ProcessorFailure):
    reason = "PROCESSOR_TIMEOUT"

    def __init__(self, payment: str = "") -> None:
        super().__init__("the card processor did not answer in time; retry shortly", payment)


class PaymentChanged(Aborted):
    """The payment changed between reading it and writing it back."""

    reason = "PAYMENT_CHANGED"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"payment {name!r} changed while this call ran; read it again and retry",
            metadata={"payment": name},
        )
