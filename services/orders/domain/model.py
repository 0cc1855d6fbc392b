"""Orders' domain model: the order, its lines and the checkout plan.

An :class:`Order` is immutable; every change returns a new one with ``revision`` + 1, so
the repository can save it with a compare-and-set. The checkout is planned here, as pure
functions of the order (:meth:`Order.next_action`); :mod:`orders.domain.checkout`
carries the plan out against the other services.

The checkout runs the forward steps in :data:`FORWARD_STEPS` order. Before a step that
calls another service starts, the order records it as ``in_flight``; after the call the
outcome is recorded and ``in_flight`` cleared. A crash in between leaves the step in
doubt, and because every call's request id is derived from the order and the step,
running it again is safe. When the order is cancelled, :meth:`Order.cancelled` lists
in ``undo`` every step that did (or may have) change another service, and the checkout
undoes them in that order before the order becomes CANCELLED.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from orders.domain.errors import CurrencyMismatch, OrderNotCancellable

NANOS_PER_UNIT = 1_000_000_000
#: The namespace of the request ids the checkout derives from an order and a step.
REQUEST_ID_NAMESPACE = uuid.UUID("6f1c1f0e-8a39-4d8e-9a35-5b0c9d1e2a47")


class OrderState(enum.Enum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    COMPLETED = "COMPLETED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in (OrderState.COMPLETED, OrderState.CANCELLED)


class CancellationReason(enum.Enum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CUSTOMER_REQUESTED = "CUSTOMER_REQUESTED"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
    CHECKOUT_ERROR = "CHECKOUT_ERROR"


class Step(enum.Enum):
    """The checkout steps, as the contract's ``CheckoutStep`` names them."""

    PRICE_PRODUCTS = "PRICE_PRODUCTS"
    RESERVE_STOCK = "RESERVE_STOCK"
    AUTHORIZE_PAYMENT = "AUTHORIZE_PAYMENT"
    CONFIRM_ORDER = "CONFIRM_ORDER"
    CAPTURE_PAYMENT = "CAPTURE_PAYMENT"
    COMMIT_RESERVATION = "COMMIT_RESERVATION"


class Outcome(enum.Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    COMPENSATED = "COMPENSATED"


#: The steps the checkout runs after PlaceOrder, in order.
FORWARD_STEPS = (
    Step.RESERVE_STOCK,
    Step.AUTHORIZE_PAYMENT,
    Step.CONFIRM_ORDER,
    Step.CAPTURE_PAYMENT,
    Step.COMMIT_RESERVATION,
)
#: The steps that change another service, so a cancellation has to undo them. Undoing
#: AUTHORIZE_PAYMENT settles the order's payments: an authorized one is voided, a
#: captured one refunded (recorded as CAPTURE_PAYMENT compensated).
UNDO_ORDER = (Step.AUTHORIZE_PAYMENT, Step.RESERVE_STOCK)
_UNDONE_BY = {
    Step.RESERVE_STOCK: Step.RESERVE_STOCK,
    Step.AUTHORIZE_PAYMENT: Step.AUTHORIZE_PAYMENT,
    Step.CAPTURE_PAYMENT: Step.AUTHORIZE_PAYMENT,
}


@dataclass(frozen=True)
class Money:
    """An amount in one currency as one integer of nanos (1e-9 units); never a float."""

    currency_code: str
    nanos: int

    @classmethod
    def of(cls, currency_code: str, units: int, nanos: int = 0) -> Money:
        return cls(currency_code, units * NANOS_PER_UNIT + nanos)

    @property
    def units(self) -> int:
        """Whole units, truncated toward zero, as ``google.type.Money`` has them."""
        whole = abs(self.nanos) // NANOS_PER_UNIT
        return whole if self.nanos >= 0 else -whole

    @property
    def fractional_nanos(self) -> int:
        return self.nanos - self.units * NANOS_PER_UNIT

    def times(self, quantity: int) -> Money:
        return Money(self.currency_code, self.nanos * quantity)

    def __str__(self) -> str:
        """``25.00 EUR``, ``12.345 EUR``: at least two decimals, no trailing zeros beyond."""
        sign = "-" if self.nanos < 0 else ""
        fraction = f"{abs(self.fractional_nanos):09d}".rstrip("0").ljust(2, "0")
        return f"{sign}{abs(self.units)}.{fraction} {self.currency_code}"


@dataclass(frozen=True)
class LineItem:
    """What the customer asked for: a product and a quantity."""

    product_id: str
    quantity: int


@dataclass(frozen=True)
class PricedProduct:
    """A product as the catalog sells it now."""

    product_id: str
    display_name: str
    price: Money


@dataclass(frozen=True)
class Line:
    product_id: str
    display_name: str
    quantity: int
    unit_price: Money

    @property
    def line_total(self) -> Money:
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True)
class StepRecord:
    step: Step
    outcome: Outcome
    finish_time: datetime
    #: The ErrorInfo reason of a failed step; empty otherwise.
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Action:
    """What the checkout does next: run ``step``, or undo it when ``undo`` is True."""

    step: Step
    undo: bool = False


@dataclass(frozen=True)
class Order:
    id: str
    user_id: str
    lines: tuple[Line, ...]
    total: Money
    state: OrderState
    create_time: datetime
    update_time: datetime
    #: Time to live asked for the stock reservation; kept so a replayed ReserveStock is
    #: the same request even if the setting changed since.
    reservation_ttl: timedelta
    #: While PENDING, the checkout must confirm the order before this time; it is the
    #: placement time plus the TTL, then the reservation's own expiry.
    checkout_deadline: datetime
    cancellation_reason: CancellationReason | None = None
    reservation_id: str = ""
    payment_id: str = ""
    history: tuple[StepRecord, ...] = ()
    #: The card token, kept only until the payment is authorized or the order cancelled.
    payment_token: str = field(default="", repr=False)
    #: The forward step whose call has started but whose outcome is not recorded yet.
    in_flight: Step | None = None
    #: Steps a cancellation still has to undo, in order.
    undo: tuple[Step, ...] = ()
    revision: int = 1
    #: The W3C trace context of the PlaceOrder call, carried by the checkout's events.
    traceparent: str = ""

    @classmethod
    def place(
        cls,
        order_id: str,
        user_id: str,
        items: Sequence[LineItem],
        products: Sequence[PricedProduct],
        payment_token: str,
        reservation_ttl: timedelta,
        now: datetime,
        traceparent: str = "",
    ) -> Order:
        """A new PENDING order, priced from ``products`` (the catalog's current prices).

        Raises:
            CurrencyMismatch: the products are not all priced in one currency.
        """
        by_id = {product.product_id: product for product in products}
        currencies = sorted({product.price.currency_code for product in products})
        if len(currencies) != 1:
            raise CurrencyMismatch(currencies)
        lines = tuple(
            Line(
                item.product_id,
                by_id[item.product_id].display_name,
                item.quantity,
                by_id[item.product_id].price,
            )
            for item in items
        )
        total = Money(currencies[0], sum(line.line_total.nanos for line in lines))
        described = ", ".join(f"{line.quantity} x products/{line.product_id}" for line in lines)
        return cls(
            id=order_id,
            user_id=user_id,
            lines=lines,
            total=total,
            state=OrderState.PENDING,
            create_time=now,
            update_time=now,
            reservation_ttl=reservation_ttl,
            checkout_deadline=now + reservation_ttl,
            history=(
                StepRecord(
                    Step.PRICE_PRODUCTS,
                    Outcome.SUCCEEDED,
                    now,
                    detail=f"priced {described} at {total} from the catalog",
                ),
            ),
            payment_token=payment_token,
            traceparent=traceparent,
        )

    @property
    def name(self) -> str:
        return f"orders/{self.id}"

    @property
    def etag(self) -> str:
        return hashlib.sha256(f"{self.id}/{self.revision}".encode()).hexdigest()[:16]

    def as_accepted(self) -> Order:
        """The order as PlaceOrder returned it, which a repeated PlaceOrder returns again."""
        return replace(
            self,
            state=OrderState.PENDING,
            update_time=self.create_time,
            cancellation_reason=None,
            reservation_id="",
            payment_id="",
            history=self.history[:1],
            in_flight=None,
            undo=(),
            revision=1,
        )

    def request_id(self, purpose: str) -> str:
        """The request id of this order's call for ``purpose``, the same on every retry."""
        return str(uuid.uuid5(REQUEST_ID_NAMESPACE, f"{self.name}/{purpose}"))

    # -- the plan ----------------------------------------------------------------------

    def succeeded_steps(self) -> set[Step]:
        return {r.step for r in self.history if r.outcome is Outcome.SUCCEEDED}

    def next_action(self) -> Action | None:
        """The checkout's next move, or None when the order is final."""
        if self.state.is_final:
            return None
        if self.state is OrderState.CANCELLING:
            return Action(self.undo[0], undo=True) if self.undo else None
        done = self.succeeded_steps()
        return next((Action(step) for step in FORWARD_STEPS if step not in done), None)

    def is_overdue(self, now: datetime) -> bool:
        """True if the order is still PENDING at its checkout deadline."""
        return self.state is OrderState.PENDING and now >= self.checkout_deadline

    # -- changes -----------------------------------------------------------------------

    def _changed(self, now: datetime, **changes: object) -> Order:
        return replace(self, update_time=now, revision=self.revision + 1, **changes)  # type: ignore[arg-type]

    def started(self, step: Step, now: datetime) -> Order:
        """Records that ``step``'s call is about to go out.

        A retry of a step already in flight changes nothing, so the etag and
        ``update_time`` only move when the order visibly does.
        """
        if self.in_flight is step:
            return self
        return self._changed(now, in_flight=step)

    def succeeded(
        self,
        step: Step,
        now: datetime,
        detail: str,
        *,
        reservation_id: str = "",
        payment_id: str = "",
        reservation_expiry: datetime | None = None,
    ) -> Order:
        """Records ``step``'s success and moves the order on.

        Also valid on a CANCELLING order (the customer cancelled while the call was out):
        the success is a fact the compensations need, but the state stays.
        """
        history = (*self.history, StepRecord(step, Outcome.SUCCEEDED, now, detail=detail))
        state = self.state
        token = self.payment_token
        deadline = self.checkout_deadline
        if step is Step.RESERVE_STOCK and reservation_expiry is not None:
            deadline = reservation_expiry
        if step is Step.AUTHORIZE_PAYMENT:
            token = ""
        if state is OrderState.PENDING and step is Step.CONFIRM_ORDER:
            state = OrderState.CONFIRMED
        if state is OrderState.CONFIRMED and step is Step.COMMIT_RESERVATION:
            state = OrderState.COMPLETED
        return self._changed(
            now,
            history=history,
            state=state,
            in_flight=None if self.in_flight is step else self.in_flight,
            reservation_id=reservation_id or self.reservation_id,
            payment_id=payment_id or self.payment_id,
            checkout_deadline=deadline,
            payment_token=token,
        )

    def failed(
        self,
        step: Step,
        now: datetime,
        reason: str,
        detail: str,
        cancellation: CancellationReason,
        *,
        in_doubt: bool = False,
    ) -> Order:
        """Records that ``step`` failed for good and starts cancelling the order.

        ``in_doubt`` means the step's last call never answered (the checkout gave up on
        it at the deadline), so it may have taken effect and is undone like a success.
        """
        failure = StepRecord(step, Outcome.FAILED, now, reason=reason, detail=detail)
        settled = self.in_flight is step and not in_doubt
        recorded = self._changed(
            now,
            history=(*self.history, failure),
            in_flight=None if settled else self.in_flight,
        )
        return recorded.cancelled(cancellation, now)

    def cancelled(self, reason: CancellationReason, now: datetime) -> Order:
        """Starts cancelling: lists what must be undone, or cancels at once if nothing.

        An order already cancelling or cancelled is returned unchanged.
        """
        if self.state in (OrderState.CANCELLING, OrderState.CANCELLED):
            return self
        touched = self.succeeded_steps() | ({self.in_flight} if self.in_flight else set())
        needs = {_UNDONE_BY[step] for step in touched if step in _UNDONE_BY}
        undo = tuple(step for step in UNDO_ORDER if step in needs)
        history = self.history
        if Step.CONFIRM_ORDER in touched:
            history = (
                *history,
                StepRecord(
                    Step.CONFIRM_ORDER,
                    Outcome.COMPENSATED,
                    now,
                    detail="the order is being cancelled",
                ),
            )
        return self._changed(
            now,
            state=OrderState.CANCELLING if undo else OrderState.CANCELLED,
            cancellation_reason=reason,
            history=history,
            undo=undo,
            in_flight=None,
            payment_token="",
        )

    def cancelled_by_customer(self, now: datetime) -> Order:
        """CancelOrder: only a PENDING order can be cancelled.

        Raises:
            OrderNotCancellable: the order is CONFIRMED or COMPLETED.
        """
        if self.state in (OrderState.CONFIRMED, OrderState.COMPLETED):
            raise OrderNotCancellable(self.name, self.state.value)
        return self.cancelled(CancellationReason.CUSTOMER_REQUESTED, now)

    def undone(self, step: Step, now: datetime, records: Sequence[tuple[Step, str]]) -> Order:
        """Records that the compensation of ``step`` finished.

        ``records`` are the (step, detail) pairs that were compensated; empty when it
        turned out nothing needed undoing (for example a step in doubt that never took).
        """
        undo = tuple(s for s in self.undo if s is not step)
        history = (
            *self.history,
            *(StepRecord(s, Outcome.COMPENSATED, now, detail=detail) for s, detail in records),
        )
        return self._changed(
            now,
            undo=undo,
            history=history,
            state=OrderState.CANCELLING if undo else OrderState.CANCELLED,
        )


class OrderEventType(enum.Enum):
    """The order's lifecycle events, as the contract's ``events.proto`` names them."""

    PLACED = "OrderPlaced"
    CONFIRMED = "OrderConfirmed"
    COMPLETED = "OrderCompleted"
    CANCELLED = "OrderCancelled"


_EVENT_OF_STATE = {
    OrderState.PENDING: OrderEventType.PLACED,
    OrderState.CONFIRMED: OrderEventType.CONFIRMED,
    OrderState.COMPLETED: OrderEventType.COMPLETED,
    OrderState.CANCELLED: OrderEventType.CANCELLED,
}


@dataclass(frozen=True)
class OrderEvent:
    """Something other services hear about: the order as it is once it happened."""

    type: OrderEventType
    order: Order


def events_between(before: Order | None, after: Order) -> list[OrderEvent]:
    """The events of moving an order from ``before`` (None: it is new) to ``after``.

    One per state entered: placed, confirmed, completed, and cancelled only once every
    step is undone (CANCELLING publishes nothing).
    """
    if before is not None and before.state is after.state:
        return []
    event = _EVENT_OF_STATE.get(after.state)
    return [] if event is None else [OrderEvent(event, after)]


@dataclass(frozen=True)
class OrderQuery:
    """ListOrders: one user's orders, newest first, optionally in one state."""

    user_id: str
    page_size: int
    state: OrderState | None = None
    #: (create_time, id) of the last order of the previous page.
    after: tuple[datetime, str] | None = None

    def fingerprint(self) -> str:
        return f"user={self.user_id}&state={self.state.value if self.state else ''}"


@dataclass(frozen=True)
class Page:
    items: Sequence[Order]
    next_after: tuple[datetime, str] | None
