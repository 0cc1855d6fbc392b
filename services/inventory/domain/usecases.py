"""Inventory's use cases: one async function each, over the ports in :mod:`ports`.

Each mutating use case runs in one unit of work: it checks the request log first (a
repeat of an earlier call answers with the resource that call produced), applies the
rules, writes, records the request id and commits, all in one transaction.

Stock changes are conditional statements (see :class:`ports.StockRepository`) applied in
product order, so stock never goes negative and concurrent writers never deadlock.

Every change emits its events (``events.proto``) in the transaction that makes it: a
reservation entering a state (taken, committed, released, expired), and one
:class:`~inventory.domain.model.StockLevelChanged` per product whose quantities moved. A
replay, a no-op and a failed call emit nothing; an expiry recorded by a failing commit
is committed, and so published.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from inventory.domain.commands import (
    CommitReservation,
    ReleaseReservation,
    ReserveStock,
    SetStock,
)
from inventory.domain.errors import (
    EtagMismatch,
    InsufficientStock,
    OnHandBelowReserved,
    ReservationAlreadyExists,
    ReservationCommitted,
    ReservationExpired,
    ReservationNotFound,
    ReservationReleased,
    StockNotFound,
    UnknownProduct,
)
from inventory.domain.model import (
    Reservation,
    ReservationEvent,
    ReservationItem,
    ReservationState,
    Stock,
    StockLevelChanged,
)
from inventory.domain.ports import ProductCatalog, UnitOfWork
from runtime import idempotency
from runtime.errors import Aborted

ACTIVE = ReservationState.ACTIVE


def new_id(prefix: str) -> str:
    """A server-assigned id that satisfies the id rules: a letter, then hex digits."""
    return f"{prefix}{uuid.uuid4().hex}"


async def set_stock(
    uow: UnitOfWork, catalog: ProductCatalog, command: SetStock, now: datetime
) -> Stock:
    """Sets the units on hand of a product the catalog has, creating its stock on first use."""
    name = f"products/{command.product_id}/stock"
    if command.idempotency is not None:
        # A repeat answers without asking the catalog, which may be down by now.
        async with uow:
            if await idempotency.replay(uow.requests, command.idempotency, "set_stock") is not None:
                return await _require_stock(uow, command.product_id)
    # Asked before the transaction opens, so no lock is held during the remote call.
    if not await catalog.exists(command.product_id):
        raise UnknownProduct(f"products/{command.product_id}")
    async with uow.writing():
        if await idempotency.replay(uow.requests, command.idempotency, "set_stock") is not None:
            return await _require_stock(uow, command.product_id)
        # Locked, so the quantities before the change are exactly these.
        current = await uow.stocks.get(command.product_id, lock=True)
        if command.etag and (current is None or command.etag != current.etag):
            raise EtagMismatch(name, "" if current is None else current.etag)
        created = current is None and await uow.stocks.add(
            Stock(command.product_id, command.on_hand, 0, now)
        )
        if not created:
            # Existing stock, or stock another call created since we looked.
            current = current or await _require_stock(uow, command.product_id, lock=True)
            if command.on_hand < current.reserved:
                raise OnHandBelowReserved(name, command.on_hand, current.reserved)
            expected = current.revision if command.etag else None
            if not await uow.stocks.set_on_hand(command.product_id, command.on_hand, now, expected):
                latest = await _require_stock(uow, command.product_id)
                if command.etag and latest.revision != current.revision:
                    raise EtagMismatch(name, latest.etag)
                raise OnHandBelowReserved(name, command.on_hand, latest.reserved)
        await idempotency.record(uow.requests, command.idempotency, "set_stock", name)
        stock = await _require_stock(uow, command.product_id)
        # ``current`` is None here only if this call created the stock.
        for event in StockLevelChanged.between(current, stock):
            uow.emit(event)
        await uow.commit()
        return stock


async def get_stock(uow: UnitOfWork, product_id: str) -> Stock:
    async with uow:
        return await _require_stock(uow, product_id)


async def reserve_stock(uow: UnitOfWork, command: ReserveStock, now: datetime) -> Reservation:
    """Holds every item or nothing; an order holds at most one live reservation."""
    async with uow.writing():
        replay = await idempotency.replay(uow.requests, command.idempotency, "reserve_stock")
        if replay is not None:
            return await _require_reservation(uow, replay.resource.removeprefix("reservations/"))
        live = await uow.reservations.find_live(command.order_id)
        if live is not None:
            if not live.is_overdue(now):
                raise ReservationAlreadyExists(live.name, live.order)
            await _expire(uow, live, now)
        reservation = Reservation(
            id=new_id("r"),
            order_id=command.order_id,
            items=command.items,
            state=ACTIVE,
            create_time=now,
            expire_time=now + command.ttl,
            update_time=now,
        )
        await uow.reservations.add(reservation)
        uow.emit(ReservationEvent.entered(reservation))
        short = {
            item.product_id
            for item in reservation.items_by_product()
            if not await _reserve(uow, item, now)
        }
        if short:
            # Leaving the unit of work uncommitted undoes the items that did fit.
            raise InsufficientStock([i.product for i in command.items if i.product_id in short])
        await idempotency.record(
            uow.requests, command.idempotency, "reserve_stock", reservation.name
        )
        await uow.commit()
        return reservation


async def commit_reservation(
    uow: UnitOfWork, command: CommitReservation, now: datetime
) -> Reservation:
    """Takes an active reservation's units out of stock for good."""
    async with uow.writing():
        replay = await idempotency.replay(uow.requests, command.idempotency, "commit_reservation")
        if replay is not None:
            return await _require_reservation(uow, command.reservation_id)
        reservation = await _require_reservation(uow, command.reservation_id, lock=True)
        if reservation.state is ReservationState.RELEASED:
            raise ReservationReleased(reservation.name)
        if reservation.state is ReservationState.EXPIRED:
            raise ReservationExpired(reservation.name, reservation.expire_time)
        if reservation.is_overdue(now):
            # Recorded even though the call fails: the units go back to stock right away.
            expired = await _expire(uow, reservation, now)
            await uow.commit()
            raise ReservationExpired(expired.name, expired.expire_time)
        if reservation.state is ACTIVE:
            reservation = await _move(uow, reservation, ReservationState.COMMITTED, now)
            await _consume(uow, reservation, now)
        await idempotency.record(
            uow.requests, command.idempotency, "commit_reservation", reservation.name
        )
        await uow.commit()
        return reservation


async def release_reservation(
    uow: UnitOfWork, command: ReleaseReservation, now: datetime
) -> Reservation:
    """Makes an active reservation's units available again; harmless on a finished one."""
    async with uow.writing():
        replay = await idempotency.replay(uow.requests, command.idempotency, "release_reservation")
        if replay is not None:
            return await _require_reservation(uow, command.reservation_id)
        reservation = await _require_reservation(uow, command.reservation_id, lock=True)
        if reservation.state is ReservationState.COMMITTED:
            raise ReservationCommitted(reservation.name)
        if reservation.is_overdue(now):
            reservation = await _expire(uow, reservation, now)
        elif reservation.state is ACTIVE:
            reservation = await _move(uow, reservation, ReservationState.RELEASED, now)
            await _unreserve(uow, reservation, now)
        await idempotency.record(
            uow.requests, command.idempotency, "release_reservation", reservation.name
        )
        await uow.commit()
        return reservation


async def release_for_cancelled_order(
    uow: UnitOfWork, order_id: str, now: datetime
) -> Reservation | None:
    """Releases the reservation of a cancelled order, if it still holds one.

    The second line of defence behind the checkout's own release, run by the
    OrderCancelled consumer inside its transaction (the caller commits): harmless when
    the saga already released it, and it never touches a committed reservation. Returns
    the reservation it released or expired, else None.
    """
    live = await uow.reservations.find_live(order_id)
    if live is None or live.state is not ACTIVE:
        return None
    reservation = await _require_reservation(uow, live.id, lock=True)
    if reservation.state is not ACTIVE:
        return None
    if reservation.is_overdue(now):
        return await _expire(uow, reservation, now)
    released = await _move(uow, reservation, ReservationState.RELEASED, now)
    await _unreserve(uow, released, now)
    return released


async def get_reservation(uow: UnitOfWork, reservation_id: str) -> Reservation:
    async with uow:
        return await _require_reservation(uow, reservation_id)


async def expire_overdue_reservations(
    uow: Callable[[], UnitOfWork], now: datetime, limit: int
) -> int:
    """Expires up to ``limit`` overdue reservations, each in its own transaction.

    Safe with several sweepers at once: each one locks the reservation and moves it only
    if it is still active, so its units are returned exactly once. Returns how many this
    call expired.
    """
    async with uow() as reading:
        overdue = list(await reading.reservations.overdue(now, limit))
    expired = 0
    for reservation_id in overdue:
        async with uow().writing() as writing:
            reservation = await writing.reservations.get(reservation_id, lock=True)
            if reservation is None or not reservation.is_overdue(now):
                continue  # another sweeper, a commit or a release got there first
            await _expire(writing, reservation, now)
            await writing.commit()
            expired += 1
    return expired


async def _expire(uow: UnitOfWork, reservation: Reservation, now: datetime) -> Reservation:
    expired = await _move(uow, reservation, ReservationState.EXPIRED, now)
    await _unreserve(uow, expired, now)
    return expired


async def _reserve(uow: UnitOfWork, item: ReservationItem, now: datetime) -> bool:
    """Holds the item's units if they are available, emitting the stock's change."""
    after = await uow.stocks.reserve(item.product_id, item.quantity, now)
    if after is None:
        return False
    uow.emit(StockLevelChanged.by(after, reserved=item.quantity))
    return True


async def _unreserve(uow: UnitOfWork, reservation: Reservation, now: datetime) -> None:
    """Makes the reservation's units available again, emitting each stock's change."""
    for item in reservation.items_by_product():
        after = await uow.stocks.unreserve(item.product_id, item.quantity, now)
        uow.emit(StockLevelChanged.by(after, reserved=-item.quantity))


async def _consume(uow: UnitOfWork, reservation: Reservation, now: datetime) -> None:
    """Takes the reservation's units out of stock for good, emitting each stock's change."""
    for item in reservation.items_by_product():
        after = await uow.stocks.consume(item.product_id, item.quantity, now)
        uow.emit(StockLevelChanged.by(after, on_hand=-item.quantity, reserved=-item.quantity))


async def _move(
    uow: UnitOfWork, reservation: Reservation, state: ReservationState, now: datetime
) -> Reservation:
    """Moves the (locked) reservation to ``state``, emitting the event of entering it."""
    if not await uow.reservations.transition(reservation.id, reservation.state, state, now):
        # The reservation was read under a lock, so only a broken invariant lands here.
        raise _concurrent_change(reservation.name)
    moved = reservation.moved_to(state, now)
    uow.emit(ReservationEvent.entered(moved))
    return moved


def _concurrent_change(name: str) -> Aborted:
    return Aborted(
        f"{name!r} was changed by a concurrent call; retry",
        reason="CONCURRENT_UPDATE",
        metadata={"resource": name},
    )


async def _require_stock(uow: UnitOfWork, product_id: str, *, lock: bool = False) -> Stock:
    stock = await uow.stocks.get(product_id, lock=lock)
    if stock is None:
        raise StockNotFound(f"products/{product_id}/stock")
    return stock


async def _require_reservation(
    uow: UnitOfWork, reservation_id: str, *, lock: bool = False
) -> Reservation:
    reservation = await uow.reservations.get(reservation_id, lock=lock)
    if reservation is None:
        raise ReservationNotFound(f"reservations/{reservation_id}")
    return reservation
