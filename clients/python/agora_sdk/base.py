"""What every Agora client shares: channels, the bearer token, one call helper, paging.

A client is built inside a running event loop (gRPC asyncio channels belong to the loop
that made them) from a target ``host:port`` and, optionally, a shared
:class:`runtime.clients.ClientFactory`. Calls get the factory's behaviour: retries of
UNAVAILABLE on methods the contract marks idempotent, a default deadline capped by the
inbound call being served, and :mod:`runtime.errors` classes instead of ``grpc.RpcError``.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, Self, TypeVar

from agora_sdk.paging import AsyncPager
from runtime.clients import ClientFactory
from runtime.config import peer_address

if TYPE_CHECKING:
    import grpc
    from google.protobuf import descriptor

StubT = TypeVar("StubT")
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
ItemT = TypeVar("ItemT")


class PageRequest(Protocol):
    """A List request: AIP-158's ``page_token``."""

    page_token: str


class PageResponse(Protocol):
    """A List response: AIP-158's ``next_page_token``, empty after the last page."""

    @property
    def next_page_token(self) -> str: ...


PageRequestT = TypeVar("PageRequestT", bound=PageRequest)
PageResponseT = TypeVar("PageResponseT", bound=PageResponse)


class ServiceClient(ABC, Generic[StubT]):
    """Base of the per-service clients.

    Args:
        target: ``host:port`` of the service (DNS names resolve to every address, balanced
            round robin); default: where :func:`runtime.config.peer_address` says the
            service runs (``AGORA_<SERVICE>_ADDR``, else its default port on loopback).
        factory: a factory shared with other clients, so they share channels; the owner
            closes it. Without one the client makes its own and closes it in :meth:`close`:
            plaintext, or with ``AGORA_TLS=mtls`` mutual TLS with the operator's
            certificate (:func:`runtime.tls.default_channel_credentials`); pass a
            ``ClientFactory(credentials=...)`` to present another.
        token: an access token sent as ``authorization: Bearer <token>`` on every call.
    """

    #: Short service name, as :func:`runtime.config.peer_address` knows it.
    service: ClassVar[str]
    #: The contract's service descriptor; its idempotency levels drive retries.
    service_descriptor: ClassVar[descriptor.ServiceDescriptor]

    def __init__(
        self,
        target: str | None = None,
        *,
        factory: ClientFactory | None = None,
        token: str | None = None,
    ) -> None:
        self.target = target or peer_address(self.service)
        self._owns_factory = factory is None
        self._factory = factory or ClientFactory()
        self._metadata: tuple[tuple[str, str], ...] | None = (
            (("authorization", f"Bearer {token}"),) if token else None
        )
        self._stub = self._new_stub(self._factory.channel(self.service_descriptor, self.target))

    @abstractmethod
    def _new_stub(self, channel: grpc.aio.Channel) -> StubT:
        """The generated asyncio stub on ``channel``."""

    def with_token(self, token: str) -> Self:
        """A client of the same service on the same channels that sends ``token``.

        It does not own the channels: it works while this client (or its factory) is open.
        """
        return type(self)(self.target, factory=self._factory, token=token)

    async def close(self) -> None:
        """Closes the channels if this client made its factory; a shared factory stays open."""
        if self._owns_factory:
            await self._factory.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[RequestT, ResponseT],
        request: RequestT,
        timeout: float | None,
    ) -> ResponseT:
        """Calls ``method`` with the client's metadata; ``timeout`` None means the default.

        Raises:
            runtime.errors.AgoraError: the subclass matching the status, with its details.
        """
        return await method(request, timeout=timeout, metadata=self._metadata)

    def _list(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[PageRequestT, PageResponseT],
        request: PageRequestT,
        items: Callable[[PageResponseT], Sequence[ItemT]],
        timeout: float | None,
    ) -> AsyncPager[ItemT]:
        """A pager over ``method``'s items; ``timeout`` bounds each page's call."""
        first = copy.deepcopy(request)  # later changes to the caller's request do not leak in

        async def fetch_page(token: str) -> tuple[Sequence[ItemT], str]:
            page_request = copy.deepcopy(first)
            page_request.page_token = token
            response = await self._call(method, page_request, timeout)
            return items(response), response.next_page_token

        return AsyncPager(fetch_page, first.page_token)
