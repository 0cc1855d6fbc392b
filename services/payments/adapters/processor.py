"""The built-in card processor: a simulation that behaves like a real one, card by card.

It takes a card number as the payment token, checks it as a processor would (digits,
length, Luhn), and decides the outcome by number, so every path of the service can be
exercised end to end::

    4242 4242 4242 4242 (and any other valid number)  approved
    4000 0000 0000 0002                                declined, PAYMENT_DECLINED
    4000 0000 0000 9995                                declined, INSUFFICIENT_FUNDS
    4000 0000 0000 0069                                never answers (PROCESSOR_TIMEOUT)
    4000 0000 0000 0119                                unavailable (PROCESSOR_UNAVAILABLE)

Every call is bounded by the processor timeout from the service's settings. The card
number never leaves this module: only its last four digits are reported.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import TypeVar

from payments.domain.errors import InvalidPaymentToken, ProcessorTimeout, ProcessorUnavailable
from payments.domain.model import Authorization, DeclineReason, Money
from payments.domain.ports import CardProcessor

T = TypeVar("T")

MIN_CARD_DIGITS = 12
MAX_CARD_DIGITS = 19

DECLINED_CARD = "4000000000000002"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"
TIMEOUT_CARD = "4000000000000069"
UNAVAILABLE_CARD = "4000000000000119"


def card_number(token: str) -> str:
    """The digits of the card number in ``token`` (spaces and hyphens ignored).

    Raises:
        InvalidPaymentToken: not 12-19 digits, or the Luhn check fails. The message never
            repeats the number.
    """
    digits = token.replace(" ", "").replace("-", "")
    if digits and not (digits.isascii() and digits.isdigit()):
        raise InvalidPaymentToken("a card number has only digits, spaces and hyphens")
    if not MIN_CARD_DIGITS <= len(digits) <= MAX_CARD_DIGITS:
        raise InvalidPaymentToken(
            f"a card number has {MIN_CARD_DIGITS} to {MAX_CARD_DIGITS} digits"
        )
    if not passes_luhn(digits):
        raise InvalidPaymentToken("the card number fails its check digit (Luhn)")
    return digits


def passes_luhn(digits: str) -> bool:
    """True if ``digits`` (a string of decimal digits) ends with a valid Luhn check digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


class SimulatedCardProcessor(CardProcessor):
    """A processor in memory whose answers are chosen by test card numbers."""

    def __init__(self, timeout: float) -> None:
        #: Seconds a call may take before it fails with PROCESSOR_TIMEOUT.
        self.timeout = timeout

    async def authorize(self, payment_token: str, amount: Money) -> Authorization:
        number = card_number(payment_token)
        return await self._bounded(self._authorize(number))

    async def capture(self, reference: str, amount: Money) -> None:
        await self._bounded(self._settle())

    async def void(self, reference: str) -> None:
        await self._bounded(self._settle())

    async def refund(self, reference: str, amount: Money) -> None:
        await self._bounded(self._settle())

    async def _bounded(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except TimeoutError:
            raise ProcessorTimeout() from None

    async def _authorize(self, number: str) -> Authorization:
        last4 = number[-4:]
        if number == DECLINED_CARD:
            return Authorization(False, last4, decline_reason=DeclineReason.DECLINED)
        if number == INSUFFICIENT_FUNDS_CARD:
            return Authorization(False, last4, decline_reason=DeclineReason.INSUFFICIENT_FUNDS)
        if number == TIMEOUT_CARD:
            await asyncio.Event().wait()  # the answer never comes
        if number == UNAVAILABLE_CARD:
            raise ProcessorUnavailable()
        return Authorization(True, last4, reference=f"sim_{uuid.uuid4().hex}")

    async def _settle(self) -> None:
        # A simulated hold is always there to capture, release or refund: the card's
        # behaviour was decided at authorization. The round trip still yields to the loop.
        await asyncio.sleep(0)
