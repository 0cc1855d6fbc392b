"""Orders' use cases: one async function each, over the ports in :mod:`ports`.

PlaceOrder prices the order from the catalog *outside* any transaction (a network call
must not hold the database), then stores the order and its request id in one. The
checkout itself is not a use case here: :mod:`orders.domain.checkout` runs it in the
background, and CancelOrder only records the customer's wish, which the checkout acts on.

Users see and change only their own orders. Every use case a caller reaches takes
``restricted_to``: the id of the user the caller is, when it may act for no one else,
or None for a caller that acts for every user (an admin, another service). The entrypoint
works it out from the call's credentials; the rule itself is applied here.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from orders.domain.commands import CancelOrder, PlaceOrder
from orders.domain.errors import (
    ActingForAnotherUser,
    EtagMismatch,
    NotOrderOwner,
    OrderChanged,
    OrderNotFound,
)
from orders.domain.model import Order, OrderQuery, Page, events_between
from orders.domain.ports import ProductCatalog, UnitOfWork
from runtime import context, idempotency
from runtime.outbox import new_traceparent


def new_id() -> str:
    """A server-assigned order id that satisfies the id rules: a letter, then hex digits."""
    return f"o{uuid.uuid4().hex}"


async def place_order(
    uow: UnitOfWork,
    catalog: ProductCatalog,
    command: PlaceOrder,
    reservation_ttl: timedelta,
    now: datetime,
    *,
    restricted_to: str | None,
) -> Order:
    """Prices and stores a new PENDING order; a repeat returns the order as first accepted.

    Raises:
        ActingForAnotherUser: the order is for a user the caller may not act for.
        ProductsNotFound, CurrencyMismatch, CatalogUnavailable: nothing is stored.
    """
    _check_acting_for(command.user_id, restricted_to)
    async with uow:
        earlier = await _earlier_order(uow, command)
    if earlier is not None:
        return earlier
    products = await catalog.price([item.product_id for item in command.items])
    # The order's trace: the caller's, or one started here. OrderPlaced and every event
    # of the checkout carry it.
    trace = context.traceparent() or new_traceparent()
    context.use_traceparent(trace)
    order = Order.place(
        new_id(),
        command.user_id,
        command.items,
        products,
        command.payment_token,
        reservation_ttl,
        now,
        trace,
    )
    async with uow.writing():
        # A concurrent call with the same id may have stored its order meanwhile.
        earlier = await _earlier_order(uow, command)
        if earlier is not None:
            return earlier
        await uow.orders.add(order)
        for event in events_between(None, order):
            uow.emit(event)
        await idempotency.record(uow.requests, command.idempotency, "place_order", order.name)
        await uow.commit()
    return order


async def _earlier_order(uow: UnitOfWork, command: PlaceOrder) -> Order | None:
    recorded = await idempotency.replay(uow.requests, command.idempotency, "place_order")
    if recorded is None:
        return None
    order = await _require(uow, recorded.resource.removeprefix("orders/"))
    return order.as_accepted()


async def get_order(uow: UnitOfWork, order_id: str, *, restricted_to: str | None) -> Order:
    """The order, if the caller may see it.

    Raises:
        NotOrderOwner: the caller is restricted to another user's orders, whether or not
            this one exists.
        OrderNotFound: for a caller that may see every order.
    """
    async with uow:
        return _visible(await uow.orders.get(order_id), order_id, restricted_to)


async def list_orders(uow: UnitOfWork, query: OrderQuery, *, restricted_to: str | None) -> Page:
    """A page of one user's orders.

    Raises:
        ActingForAnotherUser: the query names a user the caller may not act for.
    """
    _check_acting_for(query.user_id, restricted_to)
    async with uow:
        return await uow.orders.query(query)


async def cancel_order(
    uow: UnitOfWork, command: CancelOrder, now: datetime, *, restricted_to: str | None
) -> Order:
    """Marks a PENDING order CANCELLING (or CANCELLED if nothing needs undoing).

    The order is locked while it changes, so the checkout's next write sees the
    cancellation and turns to undoing its steps.

    Raises:
        NotOrderOwner: as :func:`get_order`, before anything else is checked.
        OrderNotFound, OrderNotCancellable, EtagMismatch.
    """
    async with uow.writing():
        found = await uow.orders.get(command.order_id, for_update=True)
        order = _visible(found, command.order_id, restricted_to)
        recorded = await idempotency.replay(uow.requests, command.idempotency, "cancel_order")
        if recorded is not None:
            return order
        if command.etag and command.etag != order.etag:
            raise EtagMismatch(order.name, order.etag)
        cancelled = order.cancelled_by_customer(now)
        if cancelled is not order:
            if not await uow.orders.update(cancelled, order.revision):
                raise OrderChanged(order.name)
            for event in events_between(order, cancelled):
                uow.emit(event)
        await idempotency.record(uow.requests, command.idempotency, "cancel_order", order.name)
        await uow.commit()
        return cancelled


def _check_acting_for(user_id: str, restricted_to: str | None) -> None:
    if restricted_to is not None and user_id != restricted_to:
        raise ActingForAnotherUser(f"users/{user_id}")


def _visible(order: Order | None, order_id: str, restricted_to: str | None) -> Order:
    """The order, if the caller may see it; permission is checked before existence."""
    if restricted_to is not None and (order is None or order.user_id != restricted_to):
        raise NotOrderOwner(f"orders/{order_id}")
    if order is None:
        raise OrderNotFound(f"orders/{order_id}")
    return order


async def _require(uow: UnitOfWork, order_id: str) -> Order:
    order = await uow.orders.get(order_id)
    if order is None:
        raise OrderNotFound(f"orders/{order_id}")
    return order
