"""Payments' model: money arithmetic, amount rules and the payment state machine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from payments.domain.errors import (
    CurrencyMismatch,
    PaymentNotCapturable,
    PaymentNotRefundable,
    PaymentNotRetryable,
    PaymentNotVoidable,
    RefundExceedsCaptured,
)
from payments.domain.model import (
    NEW,
    TRANSITIONS,
    Action,
    Authorization,
    DeclineReason,
    FailureReason,
    Money,
    Payment,
    PaymentState,
    amount_violations,
    next_state,
)

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
S = PaymentState
A = Action


def eur(units: int, nanos: int = 0) -> Money:
    return Money.of("EUR", units, nanos)


# --- money -----------------------------------------------------------------------------------


def test_money_adds_and_subtracts_exactly_in_nanos() -> None:
    total = eur(0, 100_000_000) + eur(0, 200_000_000)
    assert total == eur(0, 300_000_000)  # 0.1 + 0.2 is exactly 0.3 here
    assert eur(10) - eur(3, 990_000_000) == eur(6, 10_000_000)


def test_money_splits_back_into_units_and_nanos() -> None:
    amount = eur(12, 340_000_000)
    assert (amount.units, amount.fractional_nanos) == (12, 340_000_000)
    negative = Money("EUR", -1_500_000_000)
    assert (negative.units, negative.fractional_nanos) == (-1, -500_000_000)


def test_money_refuses_to_mix_currencies() -> None:
    with pytest.raises(CurrencyMismatch) as caught:
        _ = eur(1) + Money.of("USD", 1)
    assert caught.value.reason == "CURRENCY_MISMATCH"
    with pytest.raises(CurrencyMismatch):
        _ = eur(1) < Money.of("USD", 2)


def test_money_orders_within_a_currency() -> None:
    assert eur(1, 1) > eur(1)
    assert eur(1) <= eur(1)
    assert not eur(2) < eur(1, 999_999_999)


def test_money_prints_with_the_currency_minor_unit() -> None:
    assert str(eur(12, 300_000_000)) == "12.30 EUR"
    assert str(Money.of("JPY", 500)) == "500 JPY"
    assert str(Money.of("KWD", 1, 5_000_000)) == "1.005 KWD"


@pytest.mark.parametrize(
    ("currency", "units", "nanos", "fields"),
    [
        ("EUR", 10, 0, []),
        ("EUR", 0, 10_000_000, []),
        ("JPY", 500, 0, []),
        ("KWD", 1, 5_000_000, []),
        ("eur", 10, 0, ["amount.currency_code"]),
        ("", 10, 0, ["amount.currency_code"]),
        ("EUR", 0, 0, ["amount"]),
        ("EUR", -5, 0, ["amount"]),
        ("EUR", 1, -1, ["amount"]),
        ("EUR", 1, 1_000_000_000, ["amount.nanos"]),
        ("EUR", 1, 5_000_000, ["amount.nanos"]),  # half a cent
        ("JPY", 1, 500_000_000, ["amount.nanos"]),  # yen have no minor unit
    ],
)
def test_amount_rules(currency: str, units: int, nanos: int, fields: list[str]) -> None:
    assert [v.field for v in amount_violations(currency, units, nanos, "amount")] == fields


# --- the transition table -------------------------------------------------------------------

ALLOWED = {
    (NEW, A.APPROVE): S.AUTHORIZED,
    (NEW, A.DECLINE): S.DECLINED,
    (NEW, A.FAIL): S.FAILED,
    (S.FAILED, A.APPROVE): S.AUTHORIZED,
    (S.FAILED, A.DECLINE): S.DECLINED,
    (S.FAILED, A.FAIL): S.FAILED,
    (S.AUTHORIZED, A.CAPTURE): S.CAPTURED,
    (S.AUTHORIZED, A.VOID): S.VOIDED,
    (S.CAPTURED, A.REFUND_PART): S.PARTIALLY_REFUNDED,
    (S.CAPTURED, A.REFUND_REST): S.REFUNDED,
    (S.PARTIALLY_REFUNDED, A.REFUND_PART): S.PARTIALLY_REFUNDED,
    (S.PARTIALLY_REFUNDED, A.REFUND_REST): S.REFUNDED,
}
EVERY_STATE: list[PaymentState | None] = [NEW, *PaymentState]


@pytest.mark.parametrize("state", EVERY_STATE, ids=lambda s: s.value if s else "NEW")
@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_every_state_and_action_pair(state: PaymentState | None, action: Action) -> None:
    assert next_state(state, action) == ALLOWED.get((state, action))


def test_the_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(EVERY_STATE)


@pytest.mark.parametrize("final", [S.VOIDED, S.REFUNDED, S.DECLINED])
def test_final_states_lead_nowhere(final: PaymentState) -> None:
    assert all(next_state(final, action) is None for action in Action)


# --- the payment aggregate ------------------------------------------------------------------


def attempt(amount: Money | None = None) -> Payment:
    return Payment.attempt("p1", "o1", "u1", amount or eur(100), NOON)


def authorized() -> Payment:
    return attempt().authorized(Authorization(True, "4242", reference="r1"), NOON)


def captured() -> Payment:
    return authorized().captured_now(NOON)


def test_an_approved_attempt_is_authorized_with_the_card_last4() -> None:
    payment = authorized()
    assert payment.state is S.AUTHORIZED
    assert (payment.card_last4, payment.processor_reference) == ("4242", "r1")
    assert payment.revision == 1
    assert payment.captured == eur(0)


def test_a_declined_attempt_keeps_the_reason() -> None:
    payment = attempt().declined(
        Authorization(False, "9995", decline_reason=DeclineReason.INSUFFICIENT_FUNDS), NOON
    )
    assert (payment.state, payment.failure_reason) == (S.DECLINED, "INSUFFICIENT_FUNDS")


def test_a_failed_attempt_can_be_retried_and_forgets_the_failure() -> None:
    failed = attempt().failed(FailureReason.TIMEOUT, NOON)
    assert (failed.state, failed.failure_reason) == (S.FAILED, "PROCESSOR_TIMEOUT")
    retried = failed.authorized(Authorization(True, "4242", reference="r2"), NOON)
    assert (retried.state, retried.failure_reason, retried.revision) == (S.AUTHORIZED, "", 2)


def test_an_authorized_payment_cannot_be_authorized_again() -> None:
    with pytest.raises(PaymentNotRetryable):
        authorized().authorized(Authorization(True, "4242"), NOON)


def test_capture_takes_the_full_amount_once() -> None:
    payment = captured()
    assert (payment.state, payment.captured, payment.capture_time) == (S.CAPTURED, eur(100), NOON)
    with pytest.raises(PaymentNotCapturable) as caught:
        payment.check_capturable()
    assert caught.value.metadata == {"payment": "payments/p1", "state": "PAYMENT_STATE_CAPTURED"}
    with pytest.raises(PaymentNotCapturable):
        payment.captured_now(NOON)


def test_only_an_authorized_payment_can_be_voided() -> None:
    assert authorized().voided(NOON).state is S.VOIDED
    with pytest.raises(PaymentNotVoidable):
        captured().check_voidable()


def test_partial_refunds_add_up_to_a_full_refund() -> None:
    payment = captured()
    first = payment.refunded_now(payment.refund_amount(eur(30)), NOON)
    assert (first.state, first.refunded, first.refundable) == (
        S.PARTIALLY_REFUNDED,
        eur(30),
        eur(70),
    )
    second = first.refunded_now(first.refund_amount(eur(70)), NOON)
    assert (second.state, second.refunded) == (S.REFUNDED, eur(100))
    with pytest.raises(PaymentNotRefundable) as caught:
        second.refund_amount(eur(1))
    assert caught.value.metadata["state"] == "PAYMENT_STATE_REFUNDED"


def test_a_refund_without_amount_takes_what_is_left() -> None:
    first = captured().refunded_now(eur(40), NOON)
    assert first.refund_amount(None) == eur(60)


def test_a_refund_never_exceeds_what_was_captured() -> None:
    first = captured().refunded_now(eur(60), NOON)
    with pytest.raises(RefundExceedsCaptured) as caught:
        first.refund_amount(eur(40, 10_000_000))
    assert caught.value.metadata == {
        "payment": "payments/p1",
        "requested": "40.01 EUR",
        "refundable": "40.00 EUR",
    }
    with pytest.raises(RefundExceedsCaptured):
        first.refunded_now(eur(41), NOON)


def test_a_refund_must_be_in_the_payment_currency() -> None:
    with pytest.raises(CurrencyMismatch):
        captured().refund_amount(Money.of("USD", 1))


def test_an_uncaptured_payment_cannot_be_refunded() -> None:
    with pytest.raises(PaymentNotRefundable) as caught:
        authorized().refund_amount(eur(1))
    assert caught.value.metadata["state"] == "PAYMENT_STATE_AUTHORIZED"
