"""The thin gRPC adapter of payments: convert, call one use case, convert back.

No status codes here: domain and conversion errors are mapped by the runtime interceptor.
The methods that read tell their use case whose payments the caller may see
(:func:`runtime.access.restricted_to`: the caller the runtime authenticated); the others are
for services and admins only, which the runtime enforces from the contract.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc

from agora.payments.v1 import payment_service_pb2 as pb
from agora.payments.v1 import payment_service_pb2_grpc
from payments.domain import usecases
from payments.domain.ports import CardProcessor, UnitOfWork
from payments.entrypoints import convert
from runtime.access import restricted_to

Context = grpc.aio.ServicerContext[Any, Any]


class PaymentServicer(payment_service_pb2_grpc.PaymentServiceServicer):
    """Serves ``agora.payments.v1.PaymentService``."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        processor: CardProcessor,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow = uow
        self._processor = processor
        self._clock = clock

    async def AuthorizePayment(
        self, request: pb.AuthorizePaymentRequest, context: Context
    ) -> pb.AuthorizePaymentResponse:
        command = convert.authorize_payment_command(request)
        payment = await usecases.authorize_payment(
            self._uow(), self._processor, command, self._clock()
        )
        return pb.AuthorizePaymentResponse(payment=convert.payment_to_proto(payment))

    async def CapturePayment(
        self, request: pb.CapturePaymentRequest, context: Context
    ) -> pb.CapturePaymentResponse:
        command = convert.capture_payment_command(request)
        payment = await usecases.capture_payment(
            self._uow(), self._processor, command, self._clock()
        )
        return pb.CapturePaymentResponse(payment=convert.payment_to_proto(payment))

    async def VoidPayment(
        self, request: pb.VoidPaymentRequest, context: Context
    ) -> pb.VoidPaymentResponse:
        command = convert.void_payment_command(request)
        payment = await usecases.void_payment(self._uow(), self._processor, command, self._clock())
        return pb.VoidPaymentResponse(payment=convert.payment_to_proto(payment))

    async def RefundPayment(
        self, request: pb.RefundPaymentRequest, context: Context
    ) -> pb.RefundPaymentResponse:
        command = convert.refund_payment_command(request)
        payment = await usecases.refund_payment(
            self._uow(), self._processor, command, self._clock()
        )
        return pb.RefundPaymentResponse(payment=convert.payment_to_proto(payment))

    async def GetPayment(
        self, request: pb.GetPaymentRequest, context: Context
    ) -> pb.GetPaymentResponse:
        payment_id = convert.parse_payment_name(request.name)
        payment = await usecases.get_payment(self._uow(), payment_id, restricted_to=restricted_to())
        return pb.GetPaymentResponse(payment=convert.payment_to_proto(payment))

    async def ListPayments(
        self, request: pb.ListPaymentsRequest, context: Context
    ) -> pb.ListPaymentsResponse:
        query = convert.payment_query(request)
        page = await usecases.list_payments(self._uow(), query, restricted_to=restricted_to())
        return pb.ListPaymentsResponse(
            payments=[convert.payment_to_proto(p) for p in page.items],
            next_page_token=convert.next_page_token(page.next_after, query),
        )
