"""The simulated card processor: card number checks and the outcome of each test card."""

from __future__ import annotations

import pytest

from payments.adapters.processor import SimulatedCardProcessor, card_number, passes_luhn
from payments.domain.errors import InvalidPaymentToken, ProcessorTimeout, ProcessorUnavailable
from payments.domain.model import DeclineReason, Money

TEN_EUROS = Money.of("EUR", 10)


@pytest.fixture
def processor() -> SimulatedCardProcessor:
    return SimulatedCardProcessor(timeout=0.05)


@pytest.mark.parametrize(
    "token", ["4242 4242 4242 4242", "4242-4242-4242-4242", "4242424242424242", "378282246310005"]
)
def test_valid_card_numbers_are_read_without_separators(token: str) -> None:
    digits = card_number(token)
    assert digits.isdigit()
    assert passes_luhn(digits)


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("4242 4242 4242 4241", "Luhn"),
        ("4242x4242x4242x4242", "only digits"),
        ("\uff14\uff12" * 8, "only digits"),  # full-width digits are not ASCII
        ("42424242424", "12 to 19 digits"),
        ("4" * 20, "12 to 19 digits"),
        ("", "12 to 19 digits"),
    ],
)
def test_malformed_card_numbers_are_refused_without_echoing_them(token: str, problem: str) -> None:
    with pytest.raises(InvalidPaymentToken) as caught:
        card_number(token)
    assert problem in caught.value.message
    assert caught.value.reason == "INVALID_PAYMENT_TOKEN"
    assert [v.field for v in caught.value.violations] == ["payment_token"]
    compact = token.replace(" ", "")
    assert not compact or compact not in caught.value.message


async def test_the_approval_card_is_approved_with_only_its_last4(
    processor: SimulatedCardProcessor,
) -> None:
    answer = await processor.authorize("4242 4242 4242 4242", TEN_EUROS)
    assert answer.approved
    assert answer.card_last4 == "4242"
    assert answer.reference
    assert "4242424242424242" not in repr(answer)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("4000 0000 0000 0002", DeclineReason.DECLINED),
        ("4000 0000 0000 9995", DeclineReason.INSUFFICIENT_FUNDS),
    ],
)
async def test_decline_cards_are_declined(
    processor: SimulatedCardProcessor, token: str, reason: DeclineReason
) -> None:
    answer = await processor.authorize(token, TEN_EUROS)
    assert not answer.approved
    assert answer.decline_reason is reason
    assert answer.card_last4 == token[-4:]


async def test_the_timeout_card_fails_after_the_processor_timeout(
    processor: SimulatedCardProcessor,
) -> None:
    with pytest.raises(ProcessorTimeout):
        await processor.authorize("4000 0000 0000 0069", TEN_EUROS)


async def test_the_unavailable_card_reports_the_processor_unavailable(
    processor: SimulatedCardProcessor,
) -> None:
    with pytest.raises(ProcessorUnavailable):
        await processor.authorize("4000 0000 0000 0119", TEN_EUROS)


async def test_an_approved_hold_can_be_captured_voided_and_refunded(
    processor: SimulatedCardProcessor,
) -> None:
    answer = await processor.authorize("4242 4242 4242 4242", TEN_EUROS)
    await processor.capture(answer.reference, TEN_EUROS)
    await processor.refund(answer.reference, Money.of("EUR", 1))
    await processor.void(answer.reference)
