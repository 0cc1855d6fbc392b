"""PaymentService over a real socket: production interceptors, generated client, both databases.

The service runs with its real simulated card processor (with a short processor timeout),
so every test card's outcome is checked end to end; one fixture swaps in a fake processor
to make capture fail.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type import money_pb2

from agora.payments.v1 import payment_pb2, payment_service_pb2_grpc
from agora.payments.v1 import payment_service_pb2 as pb
from payments.bootstrap import build
from payments.config import PaymentsSettings
from payments.domain.ports import CardProcessor
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.status import error_info, field_violations, rich_status
from tests.unit.payments.fakes import FakeCardProcessor

if TYPE_CHECKING:
    from agora.payments.v1.payment_service_pb2_grpc import PaymentServiceAsyncStub

APPROVED = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
INSUFFICIENT_FUNDS = "4000 0000 0000 9995"
TIMES_OUT = "4000 0000 0000 0069"
UNAVAILABLE = "4000 0000 0000 0119"


async def serve(
    database_url: str, tmp_path: Path, processor: CardProcessor | None = None
) -> AsyncIterator[PaymentServiceAsyncStub]:
    settings = load_server_settings(
        "payments",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    service = await build(
        settings,
        payments_settings=PaymentsSettings(processor_timeout=0.2),
        processor=processor,
    )
    async with (
        running(service, settings) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield payment_service_pb2_grpc.PaymentServiceStub(channel)


@pytest.fixture
async def payments(database_url: str, tmp_path: Path) -> AsyncIterator[PaymentServiceAsyncStub]:
    """Payments served in-process with the simulated processor."""
    async for stub in serve(database_url, tmp_path):
        yield stub


@pytest.fixture
def fake_processor() -> FakeCardProcessor:
    return FakeCardProcessor()


@pytest.fixture
async def payments_with_fake(
    database_url: str, tmp_path: Path, fake_processor: FakeCardProcessor
) -> AsyncIterator[PaymentServiceAsyncStub]:
    """Payments served in-process with a processor the test controls."""
    async for stub in serve(database_url, tmp_path, fake_processor):
        yield stub


def eur(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units, nanos=nanos)


def new_id() -> str:
    return str(uuid.uuid4())


def authorize_request(
    card: str = APPROVED, request_id: str | None = None, order: str = "orders/o-1"
) -> pb.AuthorizePaymentRequest:
    return pb.AuthorizePaymentRequest(
        order=order,
        user="users/alice",
        amount=eur(100),
        payment_token=card,
        request_id=request_id or new_id(),
    )


async def authorized(
    stub: PaymentServiceAsyncStub, order: str = "orders/o-1"
) -> payment_pb2.Payment:
    response = await stub.AuthorizePayment(authorize_request(order=order))
    return response.payment


async def captured(stub: PaymentServiceAsyncStub) -> payment_pb2.Payment:
    payment = await authorized(stub)
    response = await stub.CapturePayment(
        pb.CapturePaymentRequest(name=payment.name, request_id=new_id())
    )
    return response.payment


async def refund(
    stub: PaymentServiceAsyncStub, name: str, amount: money_pb2.Money | None
) -> payment_pb2.Payment:
    request = pb.RefundPaymentRequest(name=name, request_id=new_id())
    if amount is not None:
        request.amount.CopyFrom(amount)
    return (await stub.RefundPayment(request)).payment


async def get(stub: PaymentServiceAsyncStub, name: str) -> payment_pb2.Payment:
    return (await stub.GetPayment(pb.GetPaymentRequest(name=name))).payment


def failure(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[grpc.StatusCode, str]:
    info = error_info(caught.value)
    assert info.domain == "payments.agora"
    return caught.value.code(), info.reason


# --- the test cards -------------------------------------------------------------------------


async def test_the_approval_card_authorizes_and_keeps_only_the_last4(
    payments: PaymentServiceAsyncStub,
) -> None:
    payment = await authorized(payments)
    assert payment.state == payment_pb2.PAYMENT_STATE_AUTHORIZED
    assert payment.name.startswith("payments/")
    assert (payment.order, payment.user) == ("orders/o-1", "users/alice")
    assert payment.amount == eur(100)
    assert payment.captured_amount == money_pb2.Money(currency_code="EUR")
    assert payment.card_last4 == "4242"
    assert payment.failure_reason == ""
    assert await get(payments, payment.name) == payment


@pytest.mark.parametrize(
    ("card", "code", "reason", "state"),
    [
        (
            DECLINED,
            grpc.StatusCode.FAILED_PRECONDITION,
            "PAYMENT_DECLINED",
            payment_pb2.PAYMENT_STATE_DECLINED,
        ),
        (
            INSUFFICIENT_FUNDS,
            grpc.StatusCode.FAILED_PRECONDITION,
            "INSUFFICIENT_FUNDS",
            payment_pb2.PAYMENT_STATE_DECLINED,
        ),
        (
            TIMES_OUT,
            grpc.StatusCode.UNAVAILABLE,
            "PROCESSOR_TIMEOUT",
            payment_pb2.PAYMENT_STATE_FAILED,
        ),
        (
            UNAVAILABLE,
            grpc.StatusCode.UNAVAILABLE,
            "PROCESSOR_UNAVAILABLE",
            payment_pb2.PAYMENT_STATE_FAILED,
        ),
    ],
)
async def test_each_failing_test_card_fails_with_its_reason_and_keeps_the_attempt(
    payments: PaymentServiceAsyncStub,
    card: str,
    code: grpc.StatusCode,
    reason: str,
    state: payment_pb2.PaymentState.ValueType,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payments.AuthorizePayment(authorize_request(card))
    assert failure(caught) == (code, reason)
    kept = await get(payments, error_info(caught.value).metadata["payment"])
    assert (kept.state, kept.failure_reason) == (state, reason)


async def test_unavailable_errors_carry_retry_info(payments: PaymentServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payments.AuthorizePayment(authorize_request(UNAVAILABLE))
    retry_infos = []
    for detail in rich_status(caught.value).details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            retry_infos.append(info)
    assert len(retry_infos) == 1


async def test_a_malformed_card_number_is_an_invalid_payment_token(
    payments: PaymentServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payments.AuthorizePayment(authorize_request("4242 4242 4242 4241"))
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAYMENT_TOKEN")
    assert field_violations(caught.value) == ["payment_token"]
    assert "4242424242424241" not in (caught.value.details() or "")
    listed = await payments.ListPayments(pb.ListPaymentsRequest())
    assert list(listed.payments) == []  # nothing is kept for a token the processor refused


async def test_a_declined_authorization_is_replayed_with_the_same_request_id(
    payments: PaymentServiceAsyncStub,
) -> None:
    request = authorize_request(DECLINED)
    outcomes = []
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await payments.AuthorizePayment(request)
        outcomes.append((*failure(caught), dict(error_info(caught.value).metadata)))
    assert outcomes[0] == outcomes[1]
    listed = await payments.ListPayments(pb.ListPaymentsRequest(order="orders/o-1"))
    assert len(listed.payments) == 1


async def test_an_approved_authorization_is_replayed_with_the_same_request_id(
    payments: PaymentServiceAsyncStub,
) -> None:
    request = authorize_request()
    first = await payments.AuthorizePayment(request)
    again = await payments.AuthorizePayment(request)
    assert again.payment == first.payment
    changed = pb.AuthorizePaymentRequest()
    changed.CopyFrom(request)
    changed.amount.units = 99
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payments.AuthorizePayment(changed)
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")


async def test_a_bad_amount_is_an_invalid_amount(payments: PaymentServiceAsyncStub) -> None:
    request = authorize_request()
    request.amount.CopyFrom(money_pb2.Money(currency_code="EUR", units=0))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payments.AuthorizePayment(request)
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_AMOUNT")
    assert field_violations(caught.value) == ["amount"]


# --- capture, void, refund ------------------------------------------------------------------


async def test_a_payment_is_captured_once_then_refunded_in_parts(
    payments: PaymentServiceAsyncStub,
) -> None:
    payment = await captured(payments)
    assert payment.state == payment_pb2.PAYMENT_STATE_CAPTURED
    assert payment.captured_amount == eur(100)
    assert payment.HasField("capture_time")

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await payments.CapturePayment(
            pb.CapturePaymentRequest(name=payment.name, request_id=new_id())
        )
    assert failure(again) == (grpc.StatusCode.FAILED_PRECONDITION, "PAYMENT_NOT_CAPTURABLE")
    assert error_info(again.value).metadata["state"] == payment_pb2.PaymentState.Name(
        payment_pb2.PAYMENT_STATE_CAPTURED
    )

    with pytest.raises(grpc.aio.AioRpcError) as void:
        await payments.VoidPayment(pb.VoidPaymentRequest(name=payment.name, request_id=new_id()))
    assert failure(void) == (grpc.StatusCode.FAILED_PRECONDITION, "PAYMENT_NOT_VOIDABLE")

    partly = await refund(payments, payment.name, eur(30, 500_000_000))
    assert partly.state == payment_pb2.PAYMENT_STATE_PARTIALLY_REFUNDED
    assert partly.refunded_amount == eur(30, 500_000_000)

    with pytest.raises(grpc.aio.AioRpcError) as too_much:
        await refund(payments, payment.name, eur(70))
    assert failure(too_much) == (grpc.StatusCode.FAILED_PRECONDITION, "REFUND_EXCEEDS_CAPTURED")
    metadata = error_info(too_much.value).metadata
    assert (metadata["requested"], metadata["refundable"]) == ("70.00 EUR", "69.50 EUR")

    with pytest.raises(grpc.aio.AioRpcError) as dollars:
        await refund(payments, payment.name, money_pb2.Money(currency_code="USD", units=1))
    assert failure(dollars) == (grpc.StatusCode.INVALID_ARGUMENT, "CURRENCY_MISMATCH")
    assert field_violations(dollars.value) == ["amount.currency_code"]

    rest = await refund(payments, payment.name, None)
    assert rest.state == payment_pb2.PAYMENT_STATE_REFUNDED
    assert rest.refunded_amount == eur(100)

    with pytest.raises(grpc.aio.AioRpcError) as done:
        await refund(payments, payment.name, eur(1))
    assert failure(done) == (grpc.StatusCode.FAILED_PRECONDITION, "PAYMENT_NOT_REFUNDABLE")
    assert error_info(done.value).metadata["state"] == payment_pb2.PaymentState.Name(
        payment_pb2.PAYMENT_STATE_REFUNDED
    )


async def test_a_repeated_capture_returns_the_payment_without_capturing_again(
    payments: PaymentServiceAsyncStub,
) -> None:
    payment = await authorized(payments)
    request = pb.CapturePaymentRequest(name=payment.name, request_id=new_id())
    first = await payments.CapturePayment(request)
    again = await payments.CapturePayment(request)
    assert again.payment == first.payment


async def test_a_voided_payment_cannot_be_captured_or_refunded(
    payments: PaymentServiceAsyncStub,
) -> None:
    payment = await authorized(payments)
    voided = await payments.VoidPayment(
        pb.VoidPaymentRequest(name=payment.name, request_id=new_id())
    )
    assert voided.payment.state == payment_pb2.PAYMENT_STATE_VOIDED
    with pytest.raises(grpc.aio.AioRpcError) as capture:
        await payments.CapturePayment(
            pb.CapturePaymentRequest(name=payment.name, request_id=new_id())
        )
    assert failure(capture) == (grpc.StatusCode.FAILED_PRECONDITION, "PAYMENT_NOT_CAPTURABLE")
    assert error_info(capture.value).metadata["state"] == payment_pb2.PaymentState.Name(
        payment_pb2.PAYMENT_STATE_VOIDED
    )
    with pytest.raises(grpc.aio.AioRpcError) as refunded:
        await refund(payments, payment.name, eur(1))
    assert failure(refunded) == (grpc.StatusCode.FAILED_PRECONDITION, "PAYMENT_NOT_REFUNDABLE")


async def test_an_authorized_payment_cannot_be_refunded(
    payments: PaymentServiceAsyncStub,
) -> None:
    payment = await authorized(payments)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await refund(payments, payment.name, eur(1))
    assert failure(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "PAYMENT_NOT_REFUNDABLE")
    assert error_info(caught.value).metadata["state"] == payment_pb2.PaymentState.Name(
        payment_pb2.PAYMENT_STATE_AUTHORIZED
    )


async def test_a_capture_the_processor_cannot_take_changes_nothing(
    payments_with_fake: PaymentServiceAsyncStub, fake_processor: FakeCardProcessor
) -> None:
    payment = await authorized(payments_with_fake)
    fake_processor.failing = True
    request = pb.CapturePaymentRequest(name=payment.name, request_id=new_id())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payments_with_fake.CapturePayment(request)
    assert failure(caught) == (grpc.StatusCode.UNAVAILABLE, "PROCESSOR_UNAVAILABLE")
    assert await get(payments_with_fake, payment.name) == payment

    fake_processor.failing = False
    retried = await payments_with_fake.CapturePayment(request)  # same request id: tried again
    assert retried.payment.state == payment_pb2.PAYMENT_STATE_CAPTURED
    assert fake_processor.calls["capture"] == 2


async def test_a_declined_authorization_is_not_sent_to_the_processor_twice(
    payments_with_fake: PaymentServiceAsyncStub, fake_processor: FakeCardProcessor
) -> None:
    fake_processor.outcome = "decline"
    request = authorize_request()
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await payments_with_fake.AuthorizePayment(request)
        assert failure(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "PAYMENT_DECLINED")
    assert fake_processor.calls["authorize"] == 1


# --- reading --------------------------------------------------------------------------------


async def test_get_reports_missing_and_malformed_names(
    payments: PaymentServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await get(payments, "payments/nope")
    assert failure(missing) == (grpc.StatusCode.NOT_FOUND, "PAYMENT_NOT_FOUND")
    assert error_info(missing.value).metadata["payment"] == "payments/nope"
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await get(payments, "orders/nope")
    assert failure(malformed) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert field_violations(malformed.value) == ["name"]


async def test_list_pages_newest_first_and_filters_by_order(
    payments: PaymentServiceAsyncStub,
) -> None:
    made = [await authorized(payments, order=f"orders/o-{i % 2}") for i in range(5)]
    first = await payments.ListPayments(pb.ListPaymentsRequest(page_size=3))
    assert len(first.payments) == 3
    rest = await payments.ListPayments(
        pb.ListPaymentsRequest(page_size=3, page_token=first.next_page_token)
    )
    assert rest.next_page_token == ""
    listed = [p.name for p in [*first.payments, *rest.payments]]
    assert sorted(listed) == sorted(p.name for p in made)
    times = [(p.create_time.ToNanoseconds(), p.name) for p in [*first.payments, *rest.payments]]
    assert times == sorted(times, reverse=True)

    only = await payments.ListPayments(pb.ListPaymentsRequest(order="orders/o-1"))
    assert sorted(p.name for p in only.payments) == sorted(
        p.name for p in made if p.order == "orders/o-1"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payments.ListPayments(
            pb.ListPaymentsRequest(order="orders/o-1", page_token=first.next_page_token)
        )
    assert failure(caught) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
