"""Which events payments' use cases publish, over in-memory fakes.

The fake unit of work collects the events of committed transactions in the store's
``published`` list, as the outbox table would: what a rolled-back call emitted never
shows up there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from agora.payments.v1 import events_pb2
from payments.adapters.events import to_messages
from payments.domain import usecases
from payments.domain.commands import (
    AuthorizePayment,
    CapturePayment,
    RefundPayment,
    VoidPayment,
)
from payments.domain.errors import (
    PaymentDeclined,
    PaymentNotCapturable,
    PaymentNotRefundable,
    ProcessorTimeout,
    ProcessorUnavailable,
    RefundExceedsCaptured,
)
from payments.domain.model import (
    Money,
    Payment,
    PaymentEvent,
    PaymentEventType,
    PaymentState,
)
from payments.entrypoints.convert import money_to_proto, payment_to_proto
from runtime.idempotency import Idempotency
from tests.unit.payments.fakes import FakeCardProcessor, FakeStore, FakeUnitOfWork

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
CARD = "4242 4242 4242 4242"

AUTHORIZED = PaymentEventType.AUTHORIZED
CAPTURED = PaymentEventType.CAPTURED
VOIDED = PaymentEventType.VOIDED
REFUNDED = PaymentEventType.REFUNDED
DECLINED = PaymentEventType.DECLINED


def eur(units: int, nanos: int = 0) -> Money:
    return Money.of("EUR", units, nanos)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def processor() -> FakeCardProcessor:
    return FakeCardProcessor()


@pytest.fixture
def published(store: FakeStore) -> Callable[[], list[object]]:
    """Returns the events published since it was last called (or since the test began)."""
    outbox = FakeUnitOfWork(store).published
    seen = 0

    def since_last_call() -> list[object]:
        nonlocal seen
        events, seen = outbox[seen:], len(outbox)
        return events

    return since_last_call


def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


def once(request_id: str, fingerprint: str = "f") -> Idempotency:
    return Idempotency(request_id, fingerprint)


async def authorize(
    store: FakeStore, processor: FakeCardProcessor, request_id: str = "auth-1"
) -> Payment:
    command = AuthorizePayment("o1", "u1", eur(100), CARD, once(request_id))
    return await usecases.authorize_payment(uow(store), processor, command, NOON)


async def capture(
    store: FakeStore, processor: FakeCardProcessor, payment: Payment, request_id: str = "cap-1"
) -> Payment:
    command = CapturePayment(payment.id, once(request_id))
    return await usecases.capture_payment(uow(store), processor, command, LATER)


async def void(
    store: FakeStore, processor: FakeCardProcessor, payment: Payment, request_id: str = "void-1"
) -> Payment:
    command = VoidPayment(payment.id, once(request_id))
    return await usecases.void_payment(uow(store), processor, command, LATER)


async def refund(
    store: FakeStore,
    processor: FakeCardProcessor,
    payment: Payment,
    amount: Money | None,
    request_id: str,
) -> Payment:
    command = RefundPayment(payment.id, amount, once(request_id, str(amount)))
    return await usecases.refund_payment(uow(store), processor, command, LATER)


# --- authorize ------------------------------------------------------------------------------


async def test_an_approved_authorization_publishes_payment_authorized(
    store: FakeStore, processor: FakeCardProcessor, published: Callable[[], list[object]]
) -> None:
    payment = await authorize(store, processor)
    assert published() == [PaymentEvent(AUTHORIZED, payment)]
    assert payment.state is PaymentState.AUTHORIZED


async def test_a_replayed_authorization_publishes_nothing_new(
    store: FakeStore, processor: FakeCardProcessor, published: Callable[[], list[object]]
) -> None:
    await authorize(store, processor)
    published()
    await authorize(store, processor)
    assert published() == []


@pytest.mark.parametrize("outcome", ["decline", "insufficient_funds"])
async def test_a_decline_publishes_payment_declined_once(
    store: FakeStore, published: Callable[[], list[object]], outcome: str
) -> None:
    processor = FakeCardProcessor(outcome)
    with pytest.raises(PaymentDeclined):
        await authorize(store, processor)
    (declined,) = store.payments.values()
    assert declined.state is PaymentState.DECLINED
    assert published() == [PaymentEvent(DECLINED, declined)]
    with pytest.raises(PaymentDeclined):  # the replay reports it again but publishes nothing
        await authorize(store, processor)
    assert published() == []


@pytest.mark.parametrize("outcome", ["unavailable", "timeout"])
async def test_an_authorization_without_an_answer_publishes_nothing(
    store: FakeStore, published: Callable[[], list[object]], outcome: str
) -> None:
    processor = FakeCardProcessor(outcome)
    with pytest.raises((ProcessorUnavailable, ProcessorTimeout)):
        await authorize(store, processor)
    with pytest.raises((ProcessorUnavailable, ProcessorTimeout)):
        await authorize(store, processor)  # the retry fails again: still FAILED
    (failed,) = store.payments.values()
    assert failed.state is PaymentState.FAILED
    assert published() == []


async def test_a_retry_that_authorizes_a_failed_payment_publishes_payment_authorized(
    store: FakeStore, published: Callable[[], list[object]]
) -> None:
    processor = FakeCardProcessor("timeout")
    with pytest.raises(ProcessorTimeout):
        await authorize(store, processor)
    processor.outcome = "approve"
    retried = await authorize(store, processor)
    assert published() == [PaymentEvent(AUTHORIZED, retried)]


async def test_a_retry_that_is_declined_publishes_payment_declined(
    store: FakeStore, published: Callable[[], list[object]]
) -> None:
    processor = FakeCardProcessor("unavailable")
    with pytest.raises(ProcessorUnavailable):
        await authorize(store, processor)
    processor.outcome = "decline"
    with pytest.raises(PaymentDeclined):
        await authorize(store, processor)
    (declined,) = store.payments.values()
    assert published() == [PaymentEvent(DECLINED, declined)]


# --- capture and void -----------------------------------------------------------------------


async def test_a_capture_publishes_payment_captured_once(
    store: FakeStore, processor: FakeCardProcessor, published: Callable[[], list[object]]
) -> None:
    payment = await authorize(store, processor)
    published()
    captured = await capture(store, processor, payment)
    assert published() == [PaymentEvent(CAPTURED, captured)]
    assert await capture(store, processor, payment) == captured  # replay
    with pytest.raises(PaymentNotCapturable):
        await capture(store, processor, payment, "cap-again")
    assert published() == []


async def test_a_capture_the_processor_did_not_answer_publishes_nothing(
    store: FakeStore, processor: FakeCardProcessor, published: Callable[[], list[object]]
) -> None:
    payment = await authorize(store, processor)
    published()
    processor.failing = True
    with pytest.raises(ProcessorUnavailable):
        await capture(store, processor, payment)
    assert published() == []


async def test_a_void_publishes_payment_voided_once(
    store: FakeStore, processor: FakeCardProcessor, published: Callable[[], list[object]]
) -> None:
    payment = await authorize(store, processor)
    published()
    voided = await void(store, processor, payment)
    assert published() == [PaymentEvent(VOIDED, voided)]
    assert await void(store, processor, payment) == voided  # replay
    assert published() == []


async def test_a_void_the_processor_did_not_answer_publishes_nothing(
    store: FakeStore, processor: FakeCardProcessor, published: Callable[[], list[object]]
) -> None:
    payment = await authorize(store, processor)
    published()
    processor.failing = True
    with pytest.raises(ProcessorUnavailable):
        await void(store, processor, payment)
    assert published() == []


async def test_of_two_racing_writers_only_the_winner_publishes(
    store: FakeStore, published: Callable[[], list[object]]
) -> None:
    processor = FakeCardProcessor(delay=0.01)
    payment = await authorize(store, processor)
    published()
    results = await asyncio.gather(
        capture(store, processor, payment), void(store, processor, payment), return_exceptions=True
    )
    (winner,) = [r for r in results if isinstance(r, Payment)]
    kind = CAPTURED if winner.state is PaymentState.CAPTURED else VOIDED
    assert published() == [PaymentEvent(kind, winner)]


# --- refunds --------------------------------------------------------------------------------


async def test_every_refund_publishes_payment_refunded_with_its_own_amount(
    store: FakeStore, processor: FakeCardProcessor, published: Callable[[], list[object]]
) -> None:
    payment = await capture(store, processor, await authorize(store, processor))
    published()
    first = await refund(store, processor, payment, eur(30), "r1")
    second = await refund(store, processor, payment, eur(25, 500_000_000), "r2")
    rest = await refund(store, processor, payment, None, "r3")
    assert published() == [
        PaymentEvent(REFUNDED, first, eur(30)),
        PaymentEvent(REFUNDED, second, eur(25, 500_000_000)),
        PaymentEvent(REFUNDED, rest, eur(44, 500_000_000)),
    ]
    assert (first.state, second.state) == (PaymentState.PARTIALLY_REFUNDED,) * 2
    assert (rest.state, rest.refunded) == (PaymentState.REFUNDED, eur(100))


async def test_a_replayed_or_refused_refund_publishes_nothing(
    store: FakeStore, processor: FakeCardProcessor, published: Callable[[], list[object]]
) -> None:
    payment = await capture(store, processor, await authorize(store, processor))
    await refund(store, processor, payment, eur(30), "r1")
    published()
    await refund(store, processor, payment, eur(30), "r1")
    with pytest.raises(RefundExceedsCaptured):
        await refund(store, processor, payment, eur(71), "r2")
    processor.failing = True
    with pytest.raises(ProcessorUnavailable):
        await refund(store, processor, payment, eur(10), "r3")
    assert published() == []


async def test_refunding_an_uncaptured_payment_publishes_nothing(
    store: FakeStore, processor: FakeCardProcessor, published: Callable[[], list[object]]
) -> None:
    payment = await authorize(store, processor)
    published()
    with pytest.raises(PaymentNotRefundable):
        await refund(store, processor, payment, eur(1), "r1")
    assert published() == []


# --- the contract's messages ----------------------------------------------------------------


@pytest.mark.parametrize("kind", [AUTHORIZED, CAPTURED, VOIDED, DECLINED])
async def test_each_event_maps_to_the_contract_message_of_its_name(
    store: FakeStore, processor: FakeCardProcessor, kind: PaymentEventType
) -> None:
    payment = await authorize(store, processor)
    [(message, aggregate)] = to_messages(PaymentEvent(kind, payment))
    contract_message = getattr(events_pb2, kind.value)
    assert message == contract_message(payment=payment_to_proto(payment))
    assert aggregate == payment.name


async def test_a_refund_maps_to_payment_refunded_with_the_amount_of_this_refund(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    payment = await capture(store, processor, await authorize(store, processor))
    await refund(store, processor, payment, eur(40), "r1")
    refunded = await refund(store, processor, payment, eur(10), "r2")
    [(message, aggregate)] = to_messages(PaymentEvent(REFUNDED, refunded, eur(10)))
    assert message == events_pb2.PaymentRefunded(
        payment=payment_to_proto(refunded), amount=money_to_proto(eur(10))
    )
    assert isinstance(message, events_pb2.PaymentRefunded)
    assert message.payment.refunded_amount.units == 50  # the total; `amount` is this refund
    assert aggregate == payment.name


def test_anything_else_is_not_a_payments_event() -> None:
    with pytest.raises(TypeError):
        to_messages(object())
