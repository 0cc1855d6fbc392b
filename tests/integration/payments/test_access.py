"""Who may see which payments, over a real socket.

Users see the payments they pay; admins and other Agora services see everyone's, and only
services (and admins, for refunds) change payments. Payments runs in-process with
loopback trusted, as ``make run`` has it: a call with an access token is the user the
token names (tokens in identity's exact format, signed by a key the service is handed
instead of identity's), and a call without one is the local operator, which counts as
another Agora service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.type import money_pb2

from agora.payments.v1 import payment_pb2, payment_service_pb2_grpc
from agora.payments.v1 import payment_service_pb2 as pb
from identity.domain.model import ADMIN, CUSTOMER
from payments.bootstrap import build
from runtime.config import load_server_settings
from runtime.server import running
from tests.support.status import error_info
from tests.support.tokens import Tokens

if TYPE_CHECKING:
    from agora.payments.v1.payment_service_pb2_grpc import PaymentServiceAsyncStub

ADA, BOB = "users/ada", "users/bob"
APPROVED = "4242 4242 4242 4242"


class Served:
    def __init__(self, stub: PaymentServiceAsyncStub, tokens: Tokens) -> None:
        self.stub = stub
        self.who = {
            "ada": tokens.of(ADA, CUSTOMER),
            "bob": tokens.of(BOB, CUSTOMER),
            "admin": tokens.of("users/root", CUSTOMER, ADMIN),
            "service": (),  # the local operator
        }

    async def pay(self, order: str, user: str) -> payment_pb2.Payment:
        """Authorizes a payment as orders does: a service call, without a token."""
        request = pb.AuthorizePaymentRequest(
            order=order,
            user=user,
            amount=money_pb2.Money(currency_code="EUR", units=5),
            payment_token=APPROVED,
            request_id=str(uuid.uuid4()),
        )
        return (await self.stub.AuthorizePayment(request)).payment

    async def listed(self, caller: str, *, order: str = "", user: str = "") -> list[str]:
        request = pb.ListPaymentsRequest(order=order, user=user)
        page = await self.stub.ListPayments(request, metadata=self.who[caller])
        return [payment.name for payment in page.payments]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    settings = load_server_settings(
        "payments",
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}",
            "AGORA_GRACE_SECONDS": "1",
        },
    )
    tokens = Tokens()
    service = await build(settings)
    service.jwks = tokens.jwks
    async with (
        running(service, settings) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield Served(payment_service_pb2_grpc.PaymentServiceStub(channel), tokens)


def refusal(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[object, ...]:
    info = error_info(caught.value)
    return caught.value.code(), info.reason, info.domain, dict(info.metadata)


def not_owner(**metadata: str) -> tuple[object, ...]:
    return grpc.StatusCode.PERMISSION_DENIED, "NOT_RESOURCE_OWNER", "payments.agora", metadata


async def test_a_user_gets_the_payments_they_pay_and_no_one_elses(served: Served) -> None:
    payment = await served.pay("orders/o1", ADA)
    for caller in ("ada", "admin", "service"):
        got = await served.stub.GetPayment(
            pb.GetPaymentRequest(name=payment.name), metadata=served.who[caller]
        )
        assert got.payment.name == payment.name, caller
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.GetPayment(
            pb.GetPaymentRequest(name=payment.name), metadata=served.who["bob"]
        )
    assert refusal(caught) == not_owner(payment=payment.name)
    # Permission before existence (AIP-211): to a user, a missing payment is not theirs.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.GetPayment(
            pb.GetPaymentRequest(name="payments/nope"), metadata=served.who["ada"]
        )
    assert refusal(caught) == not_owner(payment="payments/nope")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.GetPayment(
            pb.GetPaymentRequest(name="payments/nope"), metadata=served.who["admin"]
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_users_list_holds_only_their_payments(served: Served) -> None:
    ada = (await served.pay("orders/o1", ADA)).name
    bob = (await served.pay("orders/o2", BOB)).name
    assert await served.listed("ada") == [ada]
    assert await served.listed("ada", user=ADA) == [ada]
    assert await served.listed("bob") == [bob]
    # An order filter narrows the user's own payments: another user's order shows none.
    assert await served.listed("ada", order="orders/o2") == []
    assert await served.listed("bob", order="orders/o2") == [bob]
    for caller in ("admin", "service"):
        assert sorted(await served.listed(caller)) == sorted([ada, bob]), caller
        assert await served.listed(caller, user=BOB) == [bob], caller
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.listed("ada", user=BOB)
    assert refusal(caught) == not_owner(user=BOB)


async def test_users_change_no_payment_not_even_their_own(served: Served) -> None:
    payment = await served.pay("orders/o1", ADA)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.CapturePayment(
            pb.CapturePaymentRequest(name=payment.name, request_id=str(uuid.uuid4())),
            metadata=served.who["ada"],
        )
    info = error_info(caught.value)
    assert (caught.value.code(), info.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "INTERNAL_ONLY",
    )
