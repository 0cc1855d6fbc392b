"""In-memory fakes every service's unit tests share: the request log and the unit of work.

A service's fakes keep a dataclass store of "committed" rows (one of them ``requests``) and
subclass :class:`FakeUnitOfWork` together with the service's port::

    @dataclass
    class FakeStore:
        products: dict[str, Product] = field(default_factory=dict)
        requests: dict[str, RecordedRequest] = field(default_factory=dict)

    class FakeUnitOfWork(fakes.FakeUnitOfWork[FakeStore], UnitOfWork):
        def _bind(self, working: FakeStore) -> None:
            self.products = FakeProductRepository(working)
"""

from __future__ import annotations

import abc
import copy
import dataclasses
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from runtime import unit_of_work
from runtime.idempotency import RecordedRequest, RequestLog


class FakeRequestLog(RequestLog):
    """The request log as a dict of recorded requests by id."""

    def __init__(self, requests: dict[str, RecordedRequest]) -> None:
        self._requests = requests

    async def find(self, request_id: str) -> RecordedRequest | None:
        return self._requests.get(request_id)

    async def add(self, request: RecordedRequest) -> None:
        self._requests[request.request_id] = request


class Store(Protocol):
    """A dataclass of committed rows that includes the request log."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    requests: dict[str, RecordedRequest]


S = TypeVar("S", bound=Store)


class FakeUnitOfWork(unit_of_work.UnitOfWork, Generic[S]):
    """Works on a copy of the store; commit publishes the copy, so rollback really discards."""

    def __init__(self, store: S) -> None:
        self._committed = store
        self.commits = 0

    @abc.abstractmethod
    def _bind(self, working: S) -> None:
        """Sets the service's fake repositories to ones that work on ``working``."""

    async def __aenter__(self) -> Self:
        self._working = copy.deepcopy(self._committed)
        self._bind(self._working)
        self.requests = FakeRequestLog(self._working.requests)
        return self

    async def commit(self) -> None:
        """Publishes the working copy; emitted events join ``published`` (the outbox)."""
        for field in dataclasses.fields(self._working):
            setattr(self._committed, field.name, getattr(self._working, field.name))
        self.published.extend(self.emitted)
        self.emitted.clear()
        self.commits += 1

    @property
    def published(self) -> list[object]:
        """Events of committed transactions, in commit order, shared by every unit of work
        on the same store (like the outbox table)."""
        store = self._committed
        if not hasattr(store, "_published"):
            object.__setattr__(store, "_published", [])
        published: list[object] = getattr(store, "_published")  # noqa: B009
        return published

    async def rollback(self) -> None:
        self.emitted.clear()
        self._working = copy.deepcopy(self._committed)
