"""A client of payments: payment intents, from authorization to capture, void or refund."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agora.payments.v1 import payment_pb2, payment_service_pb2_grpc
from agora.payments.v1 import payment_service_pb2 as pb
from agora_sdk.base import ServiceClient
from agora_sdk.paging import AsyncPager

if TYPE_CHECKING:
    import grpc

    from agora.payments.v1.payment_service_pb2_grpc import PaymentServiceAsyncStub


class PaymentsClient(ServiceClient["PaymentServiceAsyncStub"]):
    """Calls ``agora.payments.v1.PaymentService``; see :class:`ServiceClient` for the arguments.

    Each method takes the RPC's request message and returns the ``Payment`` of its
    response; ``list_payments`` returns an :class:`AsyncPager` over payments. A declined
    authorization raises ``FailedPrecondition`` (reason ``PAYMENT_DECLINED``).
    """

    service = "payments"
    service_descriptor = pb.DESCRIPTOR.services_by_name["PaymentService"]

    def _new_stub(self, channel: grpc.aio.Channel) -> PaymentServiceAsyncStub:
        return payment_service_pb2_grpc.PaymentServiceStub(channel)

    async def authorize_payment(
        self, request: pb.AuthorizePaymentRequest, *, timeout: float | None = None
    ) -> payment_pb2.Payment:
        return (await self._call(self._stub.AuthorizePayment, request, timeout)).payment

    async def capture_payment(
        self, request: pb.CapturePaymentRequest, *, timeout: float | None = None
    ) -> payment_pb2.Payment:
        return (await self._call(self._stub.CapturePayment, request, timeout)).payment

    async def void_payment(
        self, request: pb.VoidPaymentRequest, *, timeout: float | None = None
    ) -> payment_pb2.Payment:
        return (await self._call(self._stub.VoidPayment, request, timeout)).payment

    async def refund_payment(
        self, request: pb.RefundPaymentRequest, *, timeout: float | None = None
    ) -> payment_pb2.Payment:
        return (await self._call(self._stub.RefundPayment, request, timeout)).payment

    async def get_payment(
        self, request: pb.GetPaymentRequest, *, timeout: float | None = None
    ) -> payment_pb2.Payment:
        return (await self._call(self._stub.GetPayment, request, timeout)).payment

    def list_payments(
        self, request: pb.ListPaymentsRequest, *, timeout: float | None = None
    ) -> AsyncPager[payment_pb2.Payment]:
        return self._list(self._stub.ListPayments, request, lambda r: r.payments, timeout)
