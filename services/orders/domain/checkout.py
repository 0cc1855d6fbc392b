"""The checkout saga: carries out an order's plan (:meth:`Order.next_action`) step by step.

:meth:`Checkout.drive` loops until the order is final: load the order, ask it for its
next action, run it, store the outcome. The rules that make it safe to stop anywhere:

- Before a step calls another service, the order is saved with the step ``in_flight``;
  after the call, the outcome is saved. Every change is made under the order's row lock,
  on the order as it is *then* (the customer may have cancelled meanwhile), so nothing
  a step achieved is ever lost.
- Every call carries a request id derived from the order and the step
  (:meth:`Order.request_id`), so repeating a step after a crash or a transient failure
  returns what the first call did instead of doing it twice.
- A failure the contract calls transient (UNAVAILABLE, DEADLINE_EXCEEDED, ...) is
  retried with backoff and not recorded; any other failure of a forward step is recorded
  as FAILED and cancels the order. While the order is PENDING, retrying stops at its
  checkout deadline (the reservation's expiry) and the order is cancelled with
  RESERVATION_EXPIRED.
- Undoing is retried until it succeeds. A step in doubt is undone by what it might
  have done: payments are settled by listing the order's payments (void what is
  authorized, refund what is captured), and a reservation whose name was never learnt
  is found by replaying ReserveStock with the step's request id, then released.

``hook`` is called at named points around every call (``reserve_stock:before``,
``reserve_stock:after``, ``undo_reserve_stock:before``, ...); the fault tests use it
to stop the process at an exact step. It does nothing in normal operation.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import grpc

from orders.domain.errors import OrderChanged
from orders.domain.model import (
    Action,
    CancellationReason,
    LineItem,
    Order,
    OrderState,
    Step,
    events_between,
)
from orders.domain.ports import Inventory, Payments, UnitOfWork
from runtime import context
from runtime.errors import AgoraError, NotFound

log = logging.getLogger("agora.orders.checkout")

Hook = Callable[[str], Awaitable[None]]

#: Status codes after which the outcome of a call is unknown or may change on retry.
TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)

#: Every named point the hook is called at, in checkout order.
HOOK_POINTS = (
    "reserve_stock:before",
    "reserve_stock:after",
    "authorize_payment:before",
    "authorize_payment:after",
    "confirm_order:before",
    "capture_payment:before",
    "capture_payment:after",
    "commit_reservation:before",
    "commit_reservation:after",
    "undo_authorize_payment:before",
    "undo_authorize_payment:after",
    "undo_reserve_stock:before",
    "undo_reserve_stock:after",
)


async def no_hook(point: str) -> None:
    return None


def is_transient(error: AgoraError) -> bool:
    return error.code in TRANSIENT_CODES


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter between attempts of a step that failed transiently."""

    initial: float = 0.2
    maximum: float = 5.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.maximum, self.initial * 2 ** max(attempt - 1, 0))
        return random.uniform(ceiling / 2, ceiling)


class Retry(Exception):
    """A step failed transiently; the checkout waits and tries it again."""

    def __init__(self, step: Step, error: AgoraError) -> None:
        super().__init__(f"{step.value}: {error.reason}: {error.message}")
        self.step = step
        self.error = error


_FORWARD_FAILURE = {
    Step.RESERVE_STOCK: CancellationReason.CHECKOUT_ERROR,
    Step.AUTHORIZE_PAYMENT: CancellationReason.PAYMENT_FAILED,
    Step.CAPTURE_PAYMENT: CancellationReason.PAYMENT_FAILED,
    Step.COMMIT_RESERVATION: CancellationReason.CHECKOUT_ERROR,
}
_BY_REASON = {
    "INSUFFICIENT_STOCK": CancellationReason.OUT_OF_STOCK,
    "PAYMENT_DECLINED": CancellationReason.PAYMENT_DECLINED,
    "INSUFFICIENT_FUNDS": CancellationReason.PAYMENT_DECLINED,
    "RESERVATION_EXPIRED": CancellationReason.RESERVATION_EXPIRED,
}


def cancellation_for(step: Step, error: AgoraError) -> CancellationReason:
    """Why the order is cancelled when ``step`` failed for good with ``error``."""
    return _BY_REASON.get(error.reason, _FORWARD_FAILURE[step])


class Checkout:
    """Runs the checkout of one order at a time; see the module docstring."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        inventory: Inventory,
        payments: Payments,
        clock: Callable[[], datetime],
        *,
        retry: RetryPolicy | None = None,
        hook: Hook = no_hook,
    ) -> None:
        self._uow = uow
        self._inventory = inventory
        self._payments = payments
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._hook = hook

    async def drive(self, order_id: str) -> Order | None:
        """Runs the order's checkout until it is COMPLETED or CANCELLED; None if unknown."""
        attempt = 0
        last_error: AgoraError | None = None
        traced = False
        while True:
            order = await self._load(order_id)
            if order is None:
                return None
            if not traced:  # the checkout's calls and events continue PlaceOrder's trace
                context.use_traceparent(order.traceparent)
                traced = True
            now = self._clock()
            if order.is_overdue(now):
                await self._record(order_id, functools.partial(_expire, now=now, cause=last_error))
                continue
            action = order.next_action()
            if action is None:
                return order
            try:
                if action.undo:
                    await self._undo(order, action.step)
                else:
                    await self._forward(order, action.step)
                attempt, last_error = 0, None
            except Retry as retry:
                attempt += 1
                last_error = retry.error
                delay = self._retry.delay(attempt)
                if order.state is OrderState.PENDING:
                    delay = min(delay, max((order.checkout_deadline - now).total_seconds(), 0.0))
                log.warning(
                    "checkout step failed; retrying",
                    extra={
                        "order": order.name,
                        "step": retry.step.value,
                        "undo": action.undo,
                        "reason": retry.error.reason,
                        "attempt": attempt,
                        "delay_seconds": round(delay, 3),
                    },
                )
                await asyncio.sleep(delay)

    # -- forward steps -----------------------------------------------------------------

    async def _forward(self, order: Order, step: Step) -> None:
        if step is Step.CONFIRM_ORDER:
            await self._hook("confirm_order:before")
            now = self._clock()
            await self._record(
                order.id,
                lambda o: (
                    o.succeeded(step, now, "stock is reserved and payment authorized")
                    if _still_next(o, step, now)
                    else o
                ),
            )
            return
        started = await self._begin(order, step)
        if started is None:
            return  # the plan changed (a cancellation came in); plan again
        point = step.value.lower()
        await self._hook(f"{point}:before")
        try:
            change = await self._call(started, step)
        except AgoraError as error:
            if is_transient(error):
                raise Retry(step, error) from error
            await self._fail(order, step, error)
            return
        await self._hook(f"{point}:after")
        await self._record(order.id, change)
        log.info("checkout step succeeded", extra={"order": order.name, "step": step.value})

    async def _fail(self, order: Order, step: Step, error: AgoraError) -> None:
        now = self._clock()
        cancellation = cancellation_for(step, error)
        log.info(
            "checkout step failed",
            extra={"order": order.name, "step": step.value, "reason": error.reason},
        )
        await self._record(
            order.id, lambda o: o.failed(step, now, error.reason, error.message, cancellation)
        )

    async def _call(self, order: Order, step: Step) -> Callable[[Order], Order]:
        """Makes ``step``'s call; returns how to record its success on the order."""
        if step is Step.RESERVE_STOCK:
            reservation = await self._inventory.reserve(
                order.id, _items(order), order.reservation_ttl, order.request_id("reserve-stock")
            )
            now = self._clock()
            units = sum(line.quantity for line in order.lines)
            plural = "" if units == 1 else "s"
            return lambda o: o.succeeded(
                step,
                now,
                f"reserved {units} unit{plural} as reservations/{reservation.id}",
                reservation_id=reservation.id,
                reservation_expiry=reservation.expire_time,
            )
        if step is Step.AUTHORIZE_PAYMENT:
            payment_id = await self._payments.authorize(
                order.id,
                order.user_id,
                order.total,
                order.payment_token,
                order.request_id("authorize-payment"),
            )
            now = self._clock()
            detail = f"authorized {order.total} as payments/{payment_id}"
            return lambda o: o.succeeded(step, now, detail, payment_id=payment_id)
        if step is Step.CAPTURE_PAYMENT:
            await self._payments.capture(order.payment_id, order.request_id("capture-payment"))
            now = self._clock()
            return lambda o: o.succeeded(step, now, f"captured payments/{order.payment_id}")
        if step is Step.COMMIT_RESERVATION:
            await self._inventory.commit(
                order.reservation_id, order.request_id("commit-reservation")
            )
            now = self._clock()
            return lambda o: o.succeeded(
                step, now, f"committed reservations/{order.reservation_id}"
            )
        raise AssertionError(f"no call for {step}")

    async def _begin(self, order: Order, step: Step) -> Order | None:
        """Saves ``step`` as in flight if it is still the next one; None if it is not."""
        now = self._clock()
        saved = await self._record(
            order.id, lambda o: o.started(step, now) if _still_next(o, step, now) else o
        )
        return saved if saved.in_flight is step else None

    # -- compensations -----------------------------------------------------------------

    async def _undo(self, order: Order, step: Step) -> None:
        point = f"undo_{step.value.lower()}"
        await self._hook(f"{point}:before")
        try:
            if step is Step.AUTHORIZE_PAYMENT:
                records = await self._settle_payments(order)
            elif step is Step.RESERVE_STOCK:
                records = await self._release_stock(order)
            else:
                raise AssertionError(f"nothing undoes {step}")
        except AgoraError as error:
            raise Retry(step, error) from error
        await self._hook(f"{point}:after")
        now = self._clock()
        await self._record(
            order.id, lambda o: o.undone(step, now, records) if step in o.undo else o
        )
        log.info("checkout step undone", extra={"order": order.name, "step": step.value})

    async def _settle_payments(self, order: Order) -> list[tuple[Step, str]]:
        """Voids every authorized payment of the order and refunds every captured one."""
        records: list[tuple[Step, str]] = []
        for payment in await self._payments.of_order(order.id):
            if payment.state == "AUTHORIZED":
                await self._payments.void(payment.id, order.request_id(f"void/{payment.id}"))
                records.append((Step.AUTHORIZE_PAYMENT, f"voided payments/{payment.id}"))
            elif payment.state in ("CAPTURED", "PARTIALLY_REFUNDED"):
                await self._payments.refund(payment.id, order.request_id(f"refund/{payment.id}"))
                records.append((Step.CAPTURE_PAYMENT, f"refunded payments/{payment.id} in full"))
            # Settled by an earlier attempt whose answer was lost (or by a crash before it
            # was recorded): only this checkout voids or refunds an order's payments.
            elif payment.state == "VOIDED":
                records.append((Step.AUTHORIZE_PAYMENT, f"voided payments/{payment.id}"))
            elif payment.state == "REFUNDED":
                records.append((Step.CAPTURE_PAYMENT, f"refunded payments/{payment.id} in full"))
        return records

    async def _release_stock(self, order: Order) -> list[tuple[Step, str]]:
        """Releases the order's reservation, first finding it if the reserve was in doubt."""
        reservation_id = order.reservation_id
        if not reservation_id:
            try:
                replayed = await self._inventory.reserve(
                    order.id,
                    _items(order),
                    order.reservation_ttl,
                    order.request_id("reserve-stock"),
                )
            except AgoraError as error:
                if is_transient(error):
                    raise
                return []  # the reserve never took (out of stock, for instance)
            reservation_id = replayed.id
        try:
            await self._inventory.release(reservation_id, order.request_id("release-stock"))
        except NotFound:
            return []
        return [(Step.RESERVE_STOCK, f"released reservations/{reservation_id}")]

    # -- storage -----------------------------------------------------------------------

    async def _load(self, order_id: str) -> Order | None:
        async with self._uow() as uow:
            return await uow.orders.get(order_id)

    async def _record(self, order_id: str, change: Callable[[Order], Order]) -> Order:
        """Applies ``change`` to the order as stored now, under its row lock, and saves it."""
        async with self._uow().writing() as uow:
            current = await uow.orders.get(order_id, for_update=True)
            if current is None:
                raise AssertionError(f"order {order_id} vanished during its checkout")
            changed = change(current)
            if changed is current:
                return current
            if not await uow.orders.update(changed, current.revision):
                raise OrderChanged(current.name)
            for event in events_between(current, changed):
                uow.emit(event)
            await uow.commit()
            return changed


def _still_next(order: Order, step: Step, now: datetime) -> bool:
    return order.next_action() == Action(step) and not order.is_overdue(now)


def _expire(order: Order, *, now: datetime, cause: AgoraError | None) -> Order:
    """Cancels an order past its checkout deadline, recording the step it was stuck on."""
    if not order.is_overdue(now):
        return order
    log.info("checkout deadline passed", extra={"order": order.name})
    action = order.next_action()
    if action is None or action.undo:
        return order.cancelled(CancellationReason.RESERVATION_EXPIRED, now)
    reason = cause.reason if cause is not None else "DEADLINE_EXCEEDED"
    detail = "the checkout deadline passed before the step could finish"
    if cause is not None:
        detail += f"; last error: {cause.message}"
    return order.failed(
        action.step, now, reason, detail, CancellationReason.RESERVATION_EXPIRED, in_doubt=True
    )


def _items(order: Order) -> list[LineItem]:
    return [LineItem(line.product_id, line.quantity) for line in order.lines]
