"""Payments' use cases over in-memory fakes: outcomes, replays, processor failures, limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest

from payments.domain import usecases
from payments.domain.commands import (
    AuthorizePayment,
    CapturePayment,
    RefundPayment,
    VoidPayment,
)
from payments.domain.errors import (
    ActingForAnotherUser,
    CurrencyMismatch,
    NotPaymentOwner,
    PaymentDeclined,
    PaymentNotCapturable,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentNotVoidable,
    ProcessorTimeout,
    ProcessorUnavailable,
    RefundExceedsCaptured,
)
from payments.domain.model import Money, Payment, PaymentQuery, PaymentState
from runtime.errors import InvalidArgument, PermissionDenied
from runtime.idempotency import Idempotency
from tests.unit.payments.fakes import FakeCardProcessor, FakeStore, FakeUnitOfWork

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
CARD = "4242 4242 4242 4242"


def eur(units: int, nanos: int = 0) -> Money:
    return Money.of("EUR", units, nanos)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def processor() -> FakeCardProcessor:
    return FakeCardProcessor()


def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


def once(request_id: str, fingerprint: str = "f") -> Idempotency:
    return Idempotency(request_id, fingerprint)


def authorize_command(request_id: str = "auth-1", amount: Money | None = None) -> AuthorizePayment:
    return AuthorizePayment("o1", "u1", amount or eur(100), CARD, once(request_id))


async def authorize(
    store: FakeStore, processor: FakeCardProcessor, request_id: str = "auth-1"
) -> Payment:
    return await usecases.authorize_payment(
        uow(store), processor, authorize_command(request_id), NOON
    )


async def capture(store: FakeStore, processor: FakeCardProcessor, payment: Payment) -> Payment:
    return await usecases.capture_payment(
        uow(store), processor, CapturePayment(payment.id, once(f"cap-{payment.id}")), LATER
    )


async def refund(
    store: FakeStore,
    processor: FakeCardProcessor,
    payment: Payment,
    amount: Money | None,
    request_id: str,
) -> Payment:
    return await usecases.refund_payment(
        uow(store),
        processor,
        RefundPayment(payment.id, amount, once(request_id, str(amount))),
        LATER,
    )


# --- authorize ------------------------------------------------------------------------------


async def test_an_approved_authorization_is_stored(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    payment = await authorize(store, processor)
    assert payment.state is PaymentState.AUTHORIZED
    assert store.payments[payment.id] == payment
    assert store.requests["auth-1"].resource == payment.name


async def test_a_repeated_authorization_replays_without_asking_the_processor(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    first = await authorize(store, processor)
    again = await authorize(store, processor)
    assert again == first
    assert processor.calls["authorize"] == 1
    assert len(store.payments) == 1


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [("decline", "PAYMENT_DECLINED"), ("insufficient_funds", "INSUFFICIENT_FUNDS")],
)
async def test_a_decline_is_kept_and_replayed_as_the_same_error(
    store: FakeStore, outcome: str, reason: str
) -> None:
    processor = FakeCardProcessor(outcome)
    with pytest.raises(PaymentDeclined) as first:
        await authorize(store, processor)
    assert first.value.reason == reason
    (payment,) = store.payments.values()
    assert (payment.state, payment.failure_reason) == (PaymentState.DECLINED, reason)
    assert first.value.metadata == {"payment": payment.name}

    processor.outcome = "approve"  # even if the card would pass now, a decline is final
    with pytest.raises(PaymentDeclined) as again:
        await authorize(store, processor)
    assert (again.value.reason, again.value.metadata) == (reason, first.value.metadata)
    assert processor.calls["authorize"] == 1


@pytest.mark.parametrize(
    ("outcome", "error", "reason"),
    [
        ("unavailable", ProcessorUnavailable, "PROCESSOR_UNAVAILABLE"),
        ("timeout", ProcessorTimeout, "PROCESSOR_TIMEOUT"),
    ],
)
async def test_no_answer_keeps_a_failed_attempt_that_a_retry_tries_again(
    store: FakeStore, outcome: str, error: type[Exception], reason: str
) -> None:
    processor = FakeCardProcessor(outcome)
    with pytest.raises(error) as caught:
        await authorize(store, processor)
    (failed,) = store.payments.values()
    assert (failed.state, failed.failure_reason) == (PaymentState.FAILED, reason)
    assert caught.value.metadata == {"payment": failed.name}  # type: ignore[attr-defined]

    processor.outcome = "approve"
    retried = await authorize(store, processor)
    assert processor.calls["authorize"] == 2
    assert retried.id == failed.id
    assert (retried.state, retried.failure_reason) == (PaymentState.AUTHORIZED, "")
    assert len(store.payments) == 1


async def test_a_request_id_reused_for_another_request_is_refused(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    await authorize(store, processor)
    other = AuthorizePayment("o2", "u1", eur(5), CARD, once("auth-1", "other"))
    with pytest.raises(InvalidArgument) as caught:
        await usecases.authorize_payment(uow(store), processor, other, NOON)
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert processor.calls["authorize"] == 1


# --- capture and void -----------------------------------------------------------------------


async def test_capture_charges_the_full_amount_once(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    payment = await authorize(store, processor)
    captured = await capture(store, processor, payment)
    assert (captured.state, captured.captured, captured.capture_time) == (
        PaymentState.CAPTURED,
        eur(100),
        LATER,
    )
    assert await capture(store, processor, payment) == captured  # same request id: replay
    with pytest.raises(PaymentNotCapturable) as caught:
        await usecases.capture_payment(
            uow(store), processor, CapturePayment(payment.id, once("cap-again")), LATER
        )
    assert caught.value.metadata["state"] == "PAYMENT_STATE_CAPTURED"
    assert processor.calls["capture"] == 1


async def test_a_capture_the_processor_did_not_answer_changes_nothing(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    payment = await authorize(store, processor)
    processor.failing = True
    with pytest.raises(ProcessorUnavailable) as caught:
        await capture(store, processor, payment)
    assert caught.value.metadata == {"payment": payment.name}
    assert store.payments[payment.id] == payment
    assert f"cap-{payment.id}" not in store.requests  # a retry asks the processor again

    processor.failing = False
    assert (await capture(store, processor, payment)).state is PaymentState.CAPTURED
    assert processor.calls["capture"] == 2


async def test_void_releases_an_authorized_payment_only(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    payment = await authorize(store, processor)
    voided = await usecases.void_payment(
        uow(store), processor, VoidPayment(payment.id, once("void-1")), LATER
    )
    assert voided.state is PaymentState.VOIDED
    with pytest.raises(PaymentNotCapturable):
        await capture(store, processor, payment)
    captured = await capture(store, processor, await authorize(store, processor, "auth-2"))
    with pytest.raises(PaymentNotVoidable) as caught:
        await usecases.void_payment(
            uow(store), processor, VoidPayment(captured.id, once("void-2")), LATER
        )
    assert caught.value.metadata["state"] == "PAYMENT_STATE_CAPTURED"


async def test_a_missing_payment_is_not_found(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    with pytest.raises(PaymentNotFound) as caught:
        await usecases.capture_payment(
            uow(store), processor, CapturePayment("nope", once("c")), LATER
        )
    assert caught.value.metadata == {"payment": "payments/nope"}
    with pytest.raises(PaymentNotFound):
        await usecases.get_payment(uow(store), "nope", restricted_to=None)


# --- refunds --------------------------------------------------------------------------------


async def test_partial_refunds_up_to_the_captured_amount(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    payment = await capture(store, processor, await authorize(store, processor))
    first = await refund(store, processor, payment, eur(30), "r1")
    assert (first.state, first.refunded) == (PaymentState.PARTIALLY_REFUNDED, eur(30))
    assert await refund(store, processor, payment, eur(30), "r1") == first  # replay
    with pytest.raises(RefundExceedsCaptured) as caught:
        await refund(store, processor, payment, eur(70, 10_000_000), "r2")
    assert caught.value.metadata["refundable"] == "70.00 EUR"
    rest = await refund(store, processor, payment, None, "r3")
    assert (rest.state, rest.refunded) == (PaymentState.REFUNDED, eur(100))
    assert processor.refunds == [eur(30), eur(70)]
    with pytest.raises(PaymentNotRefundable):
        await refund(store, processor, payment, eur(1), "r4")


async def test_a_refund_in_another_currency_is_refused(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    payment = await capture(store, processor, await authorize(store, processor))
    with pytest.raises(CurrencyMismatch):
        await refund(store, processor, payment, Money.of("USD", 1), "r1")
    assert processor.calls["refund"] == 0


async def test_an_authorized_payment_cannot_be_refunded(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    payment = await authorize(store, processor)
    with pytest.raises(PaymentNotRefundable):
        await refund(store, processor, payment, eur(1), "r1")


async def test_a_refund_the_processor_did_not_answer_refunds_nothing(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    payment = await capture(store, processor, await authorize(store, processor))
    processor.failing = True
    with pytest.raises(ProcessorUnavailable):
        await refund(store, processor, payment, eur(10), "r1")
    assert store.payments[payment.id].refunded == eur(0)
    assert "r1" not in store.requests


# --- concurrency and listing ----------------------------------------------------------------


async def test_concurrent_writers_that_lose_the_revision_race_are_aborted(
    store: FakeStore,
) -> None:
    # The fakes take no locks, so both calls read revision 1; the conditional update lets
    # only one of them write.
    processor = FakeCardProcessor(delay=0.01)
    payment = await authorize(store, processor)
    results = await asyncio.gather(
        usecases.capture_payment(
            uow(store), processor, CapturePayment(payment.id, once("a")), LATER
        ),
        usecases.void_payment(uow(store), processor, VoidPayment(payment.id, once("b")), LATER),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1
    assert getattr(errors[0], "reason", None) == "PAYMENT_CHANGED"


async def test_list_is_newest_first_and_filters(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    for index, order in enumerate(["o1", "o2", "o1"]):
        await usecases.authorize_payment(
            uow(store),
            processor,
            AuthorizePayment(order, "u1", eur(1), CARD, once(f"a{index}")),
            NOON.replace(minute=index),
        )
    page = await usecases.list_payments(
        uow(store), PaymentQuery(10, order_id="o1"), restricted_to=None
    )
    assert [p.create_time.minute for p in page.items] == [2, 0]
    first = await usecases.list_payments(uow(store), PaymentQuery(2), restricted_to=None)
    assert [p.create_time.minute for p in first.items] == [2, 1]
    assert first.next_after is not None
    rest = await usecases.list_payments(
        uow(store), PaymentQuery(2, after=first.next_after), restricted_to=None
    )
    assert [p.create_time.minute for p in rest.items] == [0]
    assert rest.next_after is None


# --- who may see which payment --------------------------------------------------------------
#
# ``restricted_to`` is the user a caller is, when it may see no one else's payments (a
# customer); None is an admin or another service, who see every user's (the tests above).


def refusal(caught: pytest.ExceptionInfo[PermissionDenied]) -> tuple[object, ...]:
    return (caught.value.code, caught.value.reason, caught.value.metadata)


def not_owner(**metadata: str) -> tuple[object, ...]:
    return (grpc.StatusCode.PERMISSION_DENIED, "NOT_RESOURCE_OWNER", metadata)


async def pay(store: FakeStore, processor: FakeCardProcessor, order: str, user: str) -> Payment:
    return await usecases.authorize_payment(
        uow(store), processor, AuthorizePayment(order, user, eur(1), CARD, once(order)), NOON
    )


async def test_a_user_sees_the_payments_they_pay_and_no_one_elses(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    ada = await pay(store, processor, "o1", "ada")
    assert await usecases.get_payment(uow(store), ada.id, restricted_to="ada") == ada
    with pytest.raises(NotPaymentOwner) as caught:
        await usecases.get_payment(uow(store), ada.id, restricted_to="bob")
    assert refusal(caught) == not_owner(payment=ada.name)
    # Permission before existence (AIP-211): a missing payment is no different to a user.
    with pytest.raises(NotPaymentOwner) as caught:
        await usecases.get_payment(uow(store), "nope", restricted_to="ada")
    assert refusal(caught) == not_owner(payment="payments/nope")


async def test_a_users_list_holds_only_their_payments_unless_they_name_another_user(
    store: FakeStore, processor: FakeCardProcessor
) -> None:
    ada = await pay(store, processor, "o1", "ada")
    bob = await pay(store, processor, "o2", "bob")

    async def listed(query: PaymentQuery, restricted_to: str | None) -> list[str]:
        page = await usecases.list_payments(uow(store), query, restricted_to=restricted_to)
        return [payment.id for payment in page.items]

    assert await listed(PaymentQuery(10), "ada") == [ada.id]
    assert await listed(PaymentQuery(10, user_id="ada"), "ada") == [ada.id]
    # Another user's order holds none of this user's payments.
    assert await listed(PaymentQuery(10, order_id="o2"), "ada") == []
    assert await listed(PaymentQuery(10, order_id="o2"), "bob") == [bob.id]
    assert sorted(await listed(PaymentQuery(10), None)) == sorted([ada.id, bob.id])
    with pytest.raises(ActingForAnotherUser) as caught:
        await listed(PaymentQuery(10, user_id="bob"), "ada")
    assert refusal(caught) == not_owner(user="users/bob")
