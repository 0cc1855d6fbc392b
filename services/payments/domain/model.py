"""Payments' domain model: money, the payment intent and its state machine.

The state machine is one table, :data:`TRANSITIONS`: which action moves a payment from
which state to which. Every change of a :class:`Payment` goes through
:func:`next_state`, so a transition that is not in the table cannot happen.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from payments.domain.errors import (
    CurrencyMismatch,
    PaymentNotCapturable,
    PaymentNotRefundable,
    PaymentNotRetryable,
    PaymentNotVoidable,
    RefundExceedsCaptured,
)
from runtime.errors import FieldViolation

#: Ids of other services' resources (orders, users): recorded as given, so only their shape
#: is checked.
FOREIGN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}\Z")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
NANOS_PER_UNIT = 1_000_000_000
#: ISO 4217 currencies whose minor unit is not the cent (two decimals): their decimals.
MINOR_UNIT_EXCEPTIONS = {
    **dict.fromkeys(
        ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"], 0
    ),
    **dict.fromkeys(["VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    "CLF": 4,
    "UYW": 4,
}


def minor_unit_decimals(currency_code: str) -> int:
    """How many decimals the currency's minor unit has (2 for EUR, 0 for JPY, 3 for KWD)."""
    return MINOR_UNIT_EXCEPTIONS.get(currency_code, 2)


@dataclass(frozen=True)
class Money:
    """An amount in one currency, held as one integer of nanos (1e-9 units); never a float.

    Arithmetic and comparison refuse to mix currencies (:class:`CurrencyMismatch`).
    """

    currency_code: str
    nanos: int

    @classmethod
    def of(cls, currency_code: str, units: int, nanos: int = 0) -> Money:
        """From ``google.type.Money`` parts; units and nanos must have the same sign."""
        return cls(currency_code, units * NANOS_PER_UNIT + nanos)

    @classmethod
    def zero(cls, currency_code: str) -> Money:
        return cls(currency_code, 0)

    @property
    def units(self) -> int:
        """Whole units, truncated toward zero, as ``google.type.Money`` has them."""
        whole = abs(self.nanos) // NANOS_PER_UNIT
        return whole if self.nanos >= 0 else -whole

    @property
    def fractional_nanos(self) -> int:
        """The nanos part of ``google.type.Money``: same sign as ``units``."""
        return self.nanos - self.units * NANOS_PER_UNIT

    @property
    def is_positive(self) -> bool:
        return self.nanos > 0

    def __add__(self, other: Money) -> Money:
        self._check_same_currency(other)
        return Money(self.currency_code, self.nanos + other.nanos)

    def __sub__(self, other: Money) -> Money:
        self._check_same_currency(other)
        return Money(self.currency_code, self.nanos - other.nanos)

    def __lt__(self, other: Money) -> bool:
        self._check_same_currency(other)
        return self.nanos < other.nanos

    def __le__(self, other: Money) -> bool:
        self._check_same_currency(other)
        return self.nanos <= other.nanos

    def __gt__(self, other: Money) -> bool:
        self._check_same_currency(other)
        return self.nanos > other.nanos

    def __ge__(self, other: Money) -> bool:
        self._check_same_currency(other)
        return self.nanos >= other.nanos

    def _check_same_currency(self, other: Money) -> None:
        if other.currency_code != self.currency_code:
            raise CurrencyMismatch(expected=self.currency_code, got=other.currency_code)

    def __str__(self) -> str:
        sign = "-" if self.nanos < 0 else ""
        whole, fraction = divmod(abs(self.nanos), NANOS_PER_UNIT)
        decimals = max(minor_unit_decimals(self.currency_code), 0)
        text = f"{fraction:09d}"[:decimals].ljust(decimals, "0")
        rest = f"{fraction:09d}"[decimals:].rstrip("0")
        digits = f"{whole}.{text}{rest}" if decimals or rest else f"{whole}"
        return f"{sign}{digits} {self.currency_code}"


def amount_violations(
    currency_code: str, units: int, nanos: int, field_path: str
) -> list[FieldViolation]:
    """Everything wrong with ``google.type.Money`` parts as an amount to charge or refund."""
    problems = []
    if not CURRENCY_PATTERN.match(currency_code):
        problems.append(
            FieldViolation(
                f"{field_path}.currency_code", "must be a three-letter ISO 4217 code such as EUR"
            )
        )
    if not -NANOS_PER_UNIT < nanos < NANOS_PER_UNIT:
        problems.append(FieldViolation(f"{field_path}.nanos", "must be within +/-999,999,999"))
    elif (units > 0 and nanos < 0) or (units < 0 and nanos > 0):
        problems.append(FieldViolation(field_path, "units and nanos must have the same sign"))
    elif units < 0 or nanos < 0 or (units == 0 and nanos == 0):
        problems.append(FieldViolation(field_path, "must be positive"))
    elif CURRENCY_PATTERN.match(currency_code):
        step = 10 ** (9 - min(minor_unit_decimals(currency_code), 9))
        if nanos % step:
            decimals = minor_unit_decimals(currency_code)
            problems.append(
                FieldViolation(
                    f"{field_path}.nanos",
                    f"must not be more precise than {currency_code}'s minor unit "
                    f"({decimals} decimals)",
                )
            )
    return problems


class PaymentState(enum.Enum):
    """Where a payment intent stands; see :data:`TRANSITIONS`."""

    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"


class Action(enum.Enum):
    """What can happen to a payment."""

    #: The processor approved the authorization.
    APPROVE = "APPROVE"
    #: The processor refused the authorization.
    DECLINE = "DECLINE"
    #: The processor could not be reached or did not answer in time.
    FAIL = "FAIL"
    CAPTURE = "CAPTURE"
    VOID = "VOID"
    #: A refund that leaves part of the captured amount unrefunded.
    REFUND_PART = "REFUND_PART"
    #: A refund that brings the refunded total up to the captured amount.
    REFUND_REST = "REFUND_REST"


#: The state of a payment that does not exist yet, for the first authorization attempt.
NEW = None

#: The whole state machine: ``TRANSITIONS[state][action]`` is the state after ``action``;
#: an action missing from a state's row is not allowed in that state.
TRANSITIONS: dict[PaymentState | None, dict[Action, PaymentState]] = {
    NEW: {
        Action.APPROVE: PaymentState.AUTHORIZED,
        Action.DECLINE: PaymentState.DECLINED,
        Action.FAIL: PaymentState.FAILED,
    },
    PaymentState.FAILED: {
        Action.APPROVE: PaymentState.AUTHORIZED,
        Action.DECLINE: PaymentState.DECLINED,
        Action.FAIL: PaymentState.FAILED,
    },
    PaymentState.AUTHORIZED: {
        Action.CAPTURE: PaymentState.CAPTURED,
        Action.VOID: PaymentState.VOIDED,
    },
    PaymentState.CAPTURED: {
        Action.REFUND_PART: PaymentState.PARTIALLY_REFUNDED,
        Action.REFUND_REST: PaymentState.REFUNDED,
    },
    PaymentState.PARTIALLY_REFUNDED: {
        Action.REFUND_PART: PaymentState.PARTIALLY_REFUNDED,
        Action.REFUND_REST: PaymentState.REFUNDED,
    },
    PaymentState.VOIDED: {},
    PaymentState.REFUNDED: {},
    PaymentState.DECLINED: {},
}


def next_state(state: PaymentState | None, action: Action) -> PaymentState | None:
    """The state ``action`` leads to from ``state``, or None if it is not allowed there."""
    return TRANSITIONS[state].get(action)


class DeclineReason(enum.Enum):
    """Why the processor refused an authorization; the value is the error reason."""

    DECLINED = "PAYMENT_DECLINED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"


class FailureReason(enum.Enum):
    """Why the processor gave no answer; the value is the error reason."""

    UNAVAILABLE = "PROCESSOR_UNAVAILABLE"
    TIMEOUT = "PROCESSOR_TIMEOUT"


@dataclass(frozen=True)
class Authorization:
    """The processor's answer to an authorization: approved, or declined and why."""

    approved: bool
    #: The last four digits of the card, as the processor reports them; "" if none.
    card_last4: str = ""
    #: The processor's id of the hold, used to capture, void or refund it.
    reference: str = ""
    decline_reason: DeclineReason | None = None


@dataclass(frozen=True)
class Payment:
    """A payment intent. ``revision`` counts changes, for conditional updates."""

    id: str
    order_id: str
    user_id: str
    amount: Money
    state: PaymentState
    create_time: datetime
    update_time: datetime
    #: Zero until captured, then ``amount``.
    captured: Money
    #: The total of every refund so far; never more than ``captured``.
    refunded: Money
    card_last4: str = ""
    #: An error reason (``PAYMENT_DECLINED``, ``PROCESSOR_TIMEOUT``...) in DECLINED and
    #: FAILED, "" otherwise.
    failure_reason: str = ""
    processor_reference: str = ""
    capture_time: datetime | None = None
    revision: int = 1

    @property
    def name(self) -> str:
        return f"payments/{self.id}"

    @property
    def refundable(self) -> Money:
        """What can still be refunded: captured minus refunded so far."""
        return self.captured - self.refunded

    @classmethod
    def attempt(
        cls, payment_id: str, order_id: str, user_id: str, amount: Money, now: datetime
    ) -> Payment:
        """A new payment before the processor answered; only :meth:`authorized`,
        :meth:`declined` or :meth:`failed` turn it into one that is stored."""
        return cls(
            id=payment_id,
            order_id=order_id,
            user_id=user_id,
            amount=amount,
            state=PaymentState.FAILED,
            create_time=now,
            update_time=now,
            captured=Money.zero(amount.currency_code),
            refunded=Money.zero(amount.currency_code),
            revision=0,
        )

    def _move(self, action: Action, now: datetime, **changes: Any) -> Payment:
        start = NEW if self.revision == 0 else self.state
        target = next_state(start, action)
        if target is None:
            raise self._refusal(action)
        return replace(self, state=target, update_time=now, revision=self.revision + 1, **changes)

    def _refusal(self, action: Action) -> Exception:
        state = self.state.value
        if action is Action.CAPTURE:
            return PaymentNotCapturable(self.name, state)
        if action is Action.VOID:
            return PaymentNotVoidable(self.name, state)
        if action in (Action.REFUND_PART, Action.REFUND_REST):
            return PaymentNotRefundable(self.name, state)
        return PaymentNotRetryable(self.name, state)

    def authorized(self, authorization: Authorization, now: datetime) -> Payment:
        return self._move(
            Action.APPROVE,
            now,
            card_last4=authorization.card_last4,
            processor_reference=authorization.reference,
            failure_reason="",
        )

    def declined(self, authorization: Authorization, now: datetime) -> Payment:
        assert authorization.decline_reason is not None
        return self._move(
            Action.DECLINE,
            now,
            card_last4=authorization.card_last4,
            failure_reason=authorization.decline_reason.value,
        )

    def failed(self, reason: FailureReason, now: datetime) -> Payment:
        return self._move(Action.FAIL, now, failure_reason=reason.value)

    def check_capturable(self) -> None:
        if next_state(self.state, Action.CAPTURE) is None:
            raise self._refusal(Action.CAPTURE)

    def captured_now(self, now: datetime) -> Payment:
        """The payment with its full amount captured."""
        return self._move(Action.CAPTURE, now, captured=self.amount, capture_time=now)

    def check_voidable(self) -> None:
        if next_state(self.state, Action.VOID) is None:
            raise self._refusal(Action.VOID)

    def voided(self, now: datetime) -> Payment:
        return self._move(Action.VOID, now)

    def refund_amount(self, requested: Money | None) -> Money:
        """The amount a refund of ``requested`` (None: everything left) takes, checked.

        Raises:
            PaymentNotRefundable: the payment is not captured (or is fully refunded).
            CurrencyMismatch: ``requested`` is in another currency.
            RefundExceedsCaptured: ``requested`` is more than what is left to refund.
        """
        if next_state(self.state, Action.REFUND_PART) is None:
            raise self._refusal(Action.REFUND_PART)
        if requested is None:
            return self.refundable
        if requested.currency_code != self.amount.currency_code:
            raise CurrencyMismatch(expected=self.amount.currency_code, got=requested.currency_code)
        if requested > self.refundable:
            raise RefundExceedsCaptured(self.name, str(requested), str(self.refundable))
        return requested

    def refunded_now(self, amount: Money, now: datetime) -> Payment:
        """The payment after a refund of ``amount``, which :meth:`refund_amount` checked."""
        total = self.refunded + amount
        if total > self.captured:
            raise RefundExceedsCaptured(self.name, str(amount), str(self.refundable))
        action = Action.REFUND_REST if total == self.captured else Action.REFUND_PART
        return self._move(action, now, refunded=total)


class PaymentEventType(enum.Enum):
    """What other services hear about a payment, as the contract's ``events.proto`` names it."""

    AUTHORIZED = "PaymentAuthorized"
    CAPTURED = "PaymentCaptured"
    VOIDED = "PaymentVoided"
    REFUNDED = "PaymentRefunded"
    DECLINED = "PaymentDeclined"


#: The event of entering each state; FAILED (no answer from the processor) has none, and
#: the refund states publish REFUNDED once per refund (see :func:`events_between`).
_EVENT_OF_STATE = {
    PaymentState.AUTHORIZED: PaymentEventType.AUTHORIZED,
    PaymentState.CAPTURED: PaymentEventType.CAPTURED,
    PaymentState.VOIDED: PaymentEventType.VOIDED,
    PaymentState.DECLINED: PaymentEventType.DECLINED,
}


@dataclass(frozen=True)
class PaymentEvent:
    """Something other services hear about: the payment as it is once it happened."""

    type: PaymentEventType
    payment: Payment
    #: The amount of this refund alone; set on REFUNDED events only.
    refund: Money | None = None


def events_between(before: Payment, after: Payment) -> list[PaymentEvent]:
    """The events of saving ``after`` over ``before`` (an :meth:`Payment.attempt` if new).

    One per state entered: authorized (also when a retry authorizes a FAILED payment),
    captured, voided, declined; one per refund, with its amount. A FAILED attempt, and a
    save that changed no state and refunded nothing, publish nothing.
    """
    if after.refunded != before.refunded:
        return [PaymentEvent(PaymentEventType.REFUNDED, after, after.refunded - before.refunded)]
    if before.revision != 0 and before.state is after.state:
        return []
    event = _EVENT_OF_STATE.get(after.state)
    return [] if event is None else [PaymentEvent(event, after)]


@dataclass(frozen=True)
class PaymentQuery:
    """A page of payments, newest first, optionally of one order and/or one user."""

    page_size: int
    order_id: str | None = None
    user_id: str | None = None
    #: Where the page starts: after this (create_time, id), in newest-first order.
    after: tuple[datetime, str] | None = None

    def fingerprint(self) -> str:
        """Identifies the filter (not the position), so page tokens stay with their query."""
        return f"order={self.order_id or ''}|user={self.user_id or ''}"


@dataclass(frozen=True)
class Page:
    """One page of payments; ``next_after`` is where the next page starts, None at the end."""

    items: list[Payment] = field(default_factory=list)
    next_after: tuple[datetime, str] | None = None
