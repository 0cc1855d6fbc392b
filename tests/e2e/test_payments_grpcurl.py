"""Payments as a user meets it: a real process, driven only by grpcurl through reflection.

One payments process serves the module, with a short processor timeout so the card that
never answers fails quickly; every test uses its own order so tests stay independent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import Grpcurl, ServiceProcess, running_service

PAYMENTS = "agora.payments.v1.PaymentService"
AUTHORIZE = f"{PAYMENTS}/AuthorizePayment"
CAPTURE = f"{PAYMENTS}/CapturePayment"
REFUND = f"{PAYMENTS}/RefundPayment"
GET = f"{PAYMENTS}/GetPayment"
LIST = f"{PAYMENTS}/ListPayments"

# google.rpc.Code values, as grpcurl's -format-error prints them.
FAILED_PRECONDITION = 9
UNAVAILABLE = 14


@pytest.fixture(scope="module")
def payments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with running_service(
        "payments",
        tmp_path_factory.mktemp("payments"),
        env={"PAYMENTS_PROCESSOR_TIMEOUT_SECONDS": "0.3"},
    ) as service:
        yield service


@pytest.fixture
def grpcurl(grpcurl_binary: Path, payments: ServiceProcess) -> Grpcurl:
    return Grpcurl(grpcurl_binary, payments.address)


def authorize_request(card: str, order: str) -> dict[str, Any]:
    return {
        "order": order,
        "user": "users/alice",
        "amount": {"currency_code": "EUR", "units": 25, "nanos": 500_000_000},
        "payment_token": card,
        "request_id": str(uuid.uuid4()),
    }


def new_order() -> str:
    return f"orders/o-{uuid.uuid4().hex[:10]}"


def test_a_card_is_authorized_captured_and_partly_refunded(grpcurl: Grpcurl) -> None:
    order = new_order()
    payment = grpcurl.call(AUTHORIZE, authorize_request("4242 4242 4242 4242", order))["payment"]
    assert payment["state"] == "PAYMENT_STATE_AUTHORIZED"
    assert payment["cardLast4"] == "4242"

    capture = {"name": payment["name"], "request_id": str(uuid.uuid4())}
    captured = grpcurl.call(CAPTURE, capture)["payment"]
    assert captured["state"] == "PAYMENT_STATE_CAPTURED"
    assert captured["capturedAmount"] == payment["amount"]
    assert grpcurl.call(CAPTURE, capture)["payment"] == captured  # a retry changes nothing

    refund = {
        "name": payment["name"],
        "amount": {"currency_code": "EUR", "units": 5},
        "request_id": str(uuid.uuid4()),
    }
    refunded = grpcurl.call(REFUND, refund)["payment"]
    assert refunded["state"] == "PAYMENT_STATE_PARTIALLY_REFUNDED"
    assert (refunded["refundedAmount"]["units"], refunded["refundedAmount"].get("nanos", 0)) == (
        "5",
        0,
    )

    assert grpcurl.call(GET, {"name": payment["name"]})["payment"] == refunded
    listed = grpcurl.call(LIST, {"order": order})["payments"]
    assert [p["name"] for p in listed] == [payment["name"]]


def test_a_declined_card_fails_with_its_reason_and_the_attempt_is_kept(grpcurl: Grpcurl) -> None:
    order = new_order()
    request = authorize_request("4000 0000 0000 9995", order)
    status = grpcurl.call_error(AUTHORIZE, request)
    assert (status.code, status.reason) == (FAILED_PRECONDITION, "INSUFFICIENT_FUNDS")
    assert grpcurl.call_error(AUTHORIZE, request).detail("ErrorInfo") == status.detail("ErrorInfo")

    name = status.detail("ErrorInfo")["metadata"]["payment"]
    kept = grpcurl.call(GET, {"name": name})["payment"]
    assert (kept["state"], kept["failureReason"]) == (
        "PAYMENT_STATE_DECLINED",
        "INSUFFICIENT_FUNDS",
    )


def test_a_processor_that_never_answers_times_out(grpcurl: Grpcurl) -> None:
    status = grpcurl.call_error(AUTHORIZE, authorize_request("4000 0000 0000 0069", new_order()))
    assert (status.code, status.reason) == (UNAVAILABLE, "PROCESSOR_TIMEOUT")
    name = status.detail("ErrorInfo")["metadata"]["payment"]
    kept = grpcurl.call(GET, {"name": name})["payment"]
    assert (kept["state"], kept["failureReason"]) == ("PAYMENT_STATE_FAILED", "PROCESSOR_TIMEOUT")
