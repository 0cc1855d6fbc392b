"""Payments' use cases: one async function each, over the ports in :mod:`ports`.

Each mutating use case runs in one unit of work: it checks the request log first (a
repeat of an earlier call answers with what that call produced), locks the payment,
asks the card processor, applies the state machine, writes, records the request id and
commits, all in one transaction. The payment stays locked while the processor is asked
(at most the processor timeout), so two calls on one payment take turns: a payment is
never captured twice and its refunds never add up to more than was captured. The
conditional update on ``revision`` guards the same rule again at the last moment.

What is kept when the processor fails: an authorization is stored in every outcome
(AUTHORIZED, DECLINED, or FAILED when the processor gave no answer), with its request id,
so a repeat replays a final outcome and retries a FAILED one on the same payment.
A capture, void or refund the processor did not answer changes nothing and records no
request id, so a repeat asks the processor again.

Every save emits its events (``events.proto``, see
:func:`~payments.domain.model.events_between`) in the transaction that makes it; a
replay, a FAILED attempt and a call that fails without saving emit nothing.

Users see only their own payments (those they pay). The use cases that read take
``restricted_to``: the id of the user the caller is, when it may see no one else's, or
None for a caller that sees every user's (an admin, another service). The entrypoint works
it out from the call's credentials; the rule itself is applied here. The methods that
change payments are for other services (and admins) only, as the contract declares.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from payments.domain.commands import (
    AuthorizePayment,
    CapturePayment,
    RefundPayment,
    VoidPayment,
)
from payments.domain.errors import (
    ActingForAnotherUser,
    NotPaymentOwner,
    PaymentChanged,
    PaymentDeclined,
    PaymentNotFound,
    ProcessorFailure,
    ProcessorTimeout,
    ProcessorUnavailable,
)
from payments.domain.model import (
    FailureReason,
    Page,
    Payment,
    PaymentQuery,
    PaymentState,
    events_between,
)
from payments.domain.ports import CardProcessor, UnitOfWork
from runtime import idempotency

T = TypeVar("T")


def new_id() -> str:
    """A server-assigned payment id that satisfies the id rules: a letter, then hex digits."""
    return f"p{uuid.uuid4().hex}"


async def authorize_payment(
    uow: UnitOfWork, processor: CardProcessor, command: AuthorizePayment, now: datetime
) -> Payment:
    """Authorizes a new payment, or replays / retries the one this request id made.

    Raises:
        PaymentDeclined: the processor declined (now or in the call being replayed).
        ProcessorUnavailable, ProcessorTimeout: no answer; the attempt is kept as FAILED.
    """
    async with uow.writing():
        recorded = await idempotency.replay(uow.requests, command.idempotency, "authorize_payment")
        if recorded is None:
            payment = Payment.attempt(
                new_id(), command.order_id, command.user_id, command.amount, now
            )
        else:
            payment = await _require(uow, _payment_id(recorded.resource), for_update=True)
            if payment.state is not PaymentState.FAILED:
                return _outcome(payment)
        try:
            authorization = await processor.authorize(command.payment_token, payment.amount)
        except ProcessorFailure as error:
            failed = payment.failed(_failure_reason(error), now)
            await _save(uow, payment, failed)
            if recorded is None:
                await idempotency.record(
                    uow.requests, command.idempotency, "authorize_payment", failed.name
                )
            await uow.commit()
            raise _with_payment(error, failed.name) from None
        if authorization.approved:
            result = payment.authorized(authorization, now)
        else:
            result = payment.declined(authorization, now)
        await _save(uow, payment, result)
        if recorded is None:
            await idempotency.record(
                uow.requests, command.idempotency, "authorize_payment", result.name
            )
        await uow.commit()
        return _outcome(result)


async def capture_payment(
    uow: UnitOfWork, processor: CardProcessor, command: CapturePayment, now: datetime
) -> Payment:
    """Captures the full authorized amount, once.

    Raises:
        PaymentNotFound, PaymentNotCapturable, ProcessorUnavailable, ProcessorTimeout.
    """
    async with uow.writing():
        if (
            await idempotency.replay(uow.requests, command.idempotency, "capture_payment")
            is not None
        ):
            return await _require(uow, command.payment_id)
        payment = await _require(uow, command.payment_id, for_update=True)
        payment.check_capturable()
        await _ask(processor.capture(payment.processor_reference, payment.amount), payment)
        captured = payment.captured_now(now)
        await _save(uow, payment, captured)
        await idempotency.record(
            uow.requests, command.idempotency, "capture_payment", captured.name
        )
        await uow.commit()
        return captured


async def void_payment(
    uow: UnitOfWork, processor: CardProcessor, command: VoidPayment, now: datetime
) -> Payment:
    """Releases an authorized hold.

    Raises:
        PaymentNotFound, PaymentNotVoidable, ProcessorUnavailable, ProcessorTimeout.
    """
    async with uow.writing():
        if await idempotency.replay(uow.requests, command.idempotency, "void_payment") is not None:
            return await _require(uow, command.payment_id)
        payment = await _require(uow, command.payment_id, for_update=True)
        payment.check_voidable()
        await _ask(processor.void(payment.processor_reference), payment)
        voided = payment.voided(now)
        await _save(uow, payment, voided)
        await idempotency.record(uow.requests, command.idempotency, "void_payment", voided.name)
        await uow.commit()
        return voided


async def refund_payment(
    uow: UnitOfWork, processor: CardProcessor, command: RefundPayment, now: datetime
) -> Payment:
    """Refunds part or all of what is left of a captured payment.

    Raises:
        PaymentNotFound, PaymentNotRefundable, CurrencyMismatch, RefundExceedsCaptured,
        ProcessorUnavailable, ProcessorTimeout.
    """
    async with uow.writing():
        if (
            await idempotency.replay(uow.requests, command.idempotency, "refund_payment")
            is not None
        ):
            return await _require(uow, command.payment_id)
        payment = await _require(uow, command.payment_id, for_update=True)
        amount = payment.refund_amount(command.amount)
        refunded = payment.refunded_now(amount, now)
        await _ask(processor.refund(payment.processor_reference, amount), payment)
        await _save(uow, payment, refunded)
        await idempotency.record(uow.requests, command.idempotency, "refund_payment", refunded.name)
        await uow.commit()
        return refunded


async def get_payment(uow: UnitOfWork, payment_id: str, *, restricted_to: str | None) -> Payment:
    """The payment, if the caller may see it.

    Raises:
        NotPaymentOwner: the caller is restricted to another user's payments, whether or
            not this one exists.
        PaymentNotFound: for a caller that may see every payment.
    """
    async with uow:
        payment = await uow.payments.get(payment_id)
    if restricted_to is not None and (payment is None or payment.user_id != restricted_to):
        raise NotPaymentOwner(f"payments/{payment_id}")
    if payment is None:
        raise PaymentNotFound(f"payments/{payment_id}")
    return payment


async def list_payments(uow: UnitOfWork, query: PaymentQuery, *, restricted_to: str | None) -> Page:
    """A page of payments; a restricted caller's query is limited to its own payments.

    Without a user filter, a restricted caller gets its own payments only (of the order
    the query names, if any: payments do not know who placed an order, only who pays).

    Raises:
        ActingForAnotherUser: the query names a user the caller may not act for.
    """
    if restricted_to is not None:
        if query.user_id is None:
            query = replace(query, user_id=restricted_to)
        elif query.user_id != restricted_to:
            raise ActingForAnotherUser(f"users/{query.user_id}")
    async with uow:
        return await uow.payments.query(query)


def _outcome(payment: Payment) -> Payment:
    """The payment an authorization returns; a declined one is reported as its error."""
    if payment.state is PaymentState.DECLINED:
        raise PaymentDeclined(payment.name, payment.failure_reason)
    return payment


def _failure_reason(error: ProcessorFailure) -> FailureReason:
    return (
        FailureReason.TIMEOUT if isinstance(error, ProcessorTimeout) else FailureReason.UNAVAILABLE
    )


def _with_payment(error: ProcessorFailure, name: str) -> ProcessorFailure:
    return (
        ProcessorTimeout(name)
        if isinstance(error, ProcessorTimeout)
        else ProcessorUnavailable(name)
    )


async def _ask(call: Awaitable[T], payment: Payment) -> T:
    """Awaits a processor call about ``payment``; a failure names the payment."""
    try:
        return await call
    except ProcessorFailure as error:
        raise _with_payment(error, payment.name) from None


async def _save(uow: UnitOfWork, before: Payment, after: Payment) -> None:
    """Stores ``after`` (new if ``before`` is an attempt) and emits what the change publishes."""
    if before.revision == 0:
        await uow.payments.add(after)
    elif not await uow.payments.update(after, expected_revision=before.revision):
        raise PaymentChanged(before.name)
    for event in events_between(before, after):
        uow.emit(event)


async def _require(uow: UnitOfWork, payment_id: str, *, for_update: bool = False) -> Payment:
    payment = await uow.payments.get(payment_id, for_update=for_update)
    if payment is None:
        raise PaymentNotFound(f"payments/{payment_id}")
    return payment


def _payment_id(name: str) -> str:
    return name.removeprefix("payments/")
