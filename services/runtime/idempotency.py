"""AIP-155 request ids: a mutating call repeated with the same ``request_id`` does nothing new.

Use cases record each id in the same transaction as the write it caused, and look it up
before writing. The record remembers which resource the call produced, so a repeat can
answer with that resource, and a fingerprint of the request, so reusing an id for a
different request is refused rather than silently answered with the wrong result.

A use case brackets its write with :func:`replay` and :func:`record`::

    async with uow.writing():
        earlier = await idempotency.replay(uow.requests, command.idempotency, "create_product")
        if earlier is not None:
            return await uow.products.get(earlier.resource.removeprefix("products/"))
        await uow.products.add(product)
        await idempotency.record(uow.requests, command.idempotency, "create_product", product.name)
        await uow.commit()
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from runtime.errors import Aborted, FieldViolation, InvalidArgument


@dataclass(frozen=True)
class Idempotency:
    """The AIP-155 request id of a call and a fingerprint of the rest of the request.

    Commands carry it (None when the caller sent no request id); the entrypoint builds it.
    """

    request_id: str
    fingerprint: str


@dataclass(frozen=True)
class RecordedRequest:
    """A mutating call that already succeeded."""

    request_id: str
    #: The use case that handled it, such as ``create_product``.
    operation: str
    #: A hash of the request without its request id.
    fingerprint: str
    #: The name of the resource the call created or changed.
    resource: str


class RequestLog(abc.ABC):
    """The port through which use cases store and find recorded requests."""

    @abc.abstractmethod
    async def find(self, request_id: str) -> RecordedRequest | None:
        """Returns the earlier call with this id, if any.

        Also claims the id until the transaction ends: a concurrent call with the same id
        waits here, then finds this call's record and replays it.
        """

    @abc.abstractmethod
    async def add(self, request: RecordedRequest) -> None:
        """Records a call; it becomes visible when the surrounding transaction commits."""


def check_replay(
    recorded: RecordedRequest | None, operation: str, fingerprint: str
) -> RecordedRequest | None:
    """Returns ``recorded`` if it is a true repeat of this call, None if there is none.

    Raises:
        InvalidArgument: reason ``REQUEST_ID_REUSED`` if the id was used for another request.
    """
    if recorded is None:
        return None
    if recorded.operation != operation or recorded.fingerprint != fingerprint:
        raise InvalidArgument(
            "request_id was already used for a different request; use a new UUID per request",
            violations=[FieldViolation("request_id", "already used for a different request")],
            reason="REQUEST_ID_REUSED",
            metadata={"request_id": recorded.request_id, "operation": recorded.operation},
        )
    return recorded


async def replay(
    log: RequestLog, idempotency: Idempotency | None, operation: str
) -> RecordedRequest | None:
    """The earlier call this one repeats, or None if it is new (or carries no request id).

    Raises:
        InvalidArgument: reason ``REQUEST_ID_REUSED`` if the id was used for another request.
    """
    if idempotency is None:
        return None
    recorded = await log.find(idempotency.request_id)
    return check_replay(recorded, operation, idempotency.fingerprint)


async def record(
    log: RequestLog, idempotency: Idempotency | None, operation: str, resource: str
) -> None:
    """Records that this call produced ``resource``; does nothing without a request id."""
    if idempotency is not None:
        await log.add(
            RecordedRequest(idempotency.request_id, operation, idempotency.fingerprint, resource)
        )


class ConcurrentRequest(Aborted):
    """Two calls with the same request id ran at once; the loser may simply retry and replay."""

    reason = "CONCURRENT_REQUEST"

    def __init__(self, request_id: str) -> None:
        super().__init__(
            "another call with the same request_id is in progress; retry it",
            metadata={"request_id": request_id},
        )
