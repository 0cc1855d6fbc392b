"""Paging for List RPCs: an async iterator over items that follows page tokens.

Callers never see a token::

    async for product in catalog.list_products(ListProductsRequest(category="categories/tea")):
        print(product.name)

    async for page in catalog.list_products(ListProductsRequest(page_size=50)).pages():
        print(len(page))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")

#: Fetches the page at a token: its items and the next page's token ("" after the last page).
FetchPage = Callable[[str], Awaitable[tuple[Sequence[ItemT], str]]]


class AsyncPager(Generic[ItemT]):
    """The items of a List RPC across all its pages, fetched one page at a time.

    Nothing is fetched until iteration starts, and every iteration starts again from the
    request's own ``page_token`` (empty means the first page). An empty ``next_page_token``
    is the only end-of-list signal, so an empty page in the middle does not stop it.
    """

    def __init__(self, fetch_page: FetchPage[ItemT], page_token: str = "") -> None:
        self._fetch_page = fetch_page
        self._page_token = page_token

    async def pages(self) -> AsyncIterator[list[ItemT]]:
        """Yields the items of each page in turn, one call per page."""
        token = self._page_token
        while True:
            items, token = await self._fetch_page(token)
            yield list(items)
            if not token:
                return

    async def __aiter__(self) -> AsyncIterator[ItemT]:
        async for page in self.pages():
            for item in page:
                yield item
