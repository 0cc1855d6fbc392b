"""A scripted catalog served in process through the runtime, for tests of the runtime itself.

GetProduct does whatever the test says; every other method fails with ``NOT_SERVED``::

    service = scripted_catalog(_echo)
    async with running(service, settings) as port:
        ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import grpc

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2, catalog_service_pb2_grpc
from runtime import errors
from runtime.server import Cleanup, Service

#: Full proto name of the scripted service.
CATALOG = "agora.catalog.v1.CatalogService"
DOMAIN = "catalog.agora"

Context = grpc.aio.ServicerContext[Any, Any]
GetProduct = Callable[
    [catalog_service_pb2.GetProductRequest, Context],
    Awaitable[catalog_service_pb2.GetProductResponse],
]


class ProductNotFound(errors.NotFound):
    reason = "PRODUCT_NOT_FOUND"


async def _not_used_here(self: object, request: object, context: object) -> NoReturn:
    raise errors.Unknown("not served by this test", reason="NOT_SERVED")


class ScriptedCatalog(catalog_service_pb2_grpc.CatalogServiceServicer):
    """A catalog whose GetProduct is whatever the test says; the other methods fail."""

    def __init__(self, get_product: GetProduct) -> None:
        self._get_product = get_product

    async def GetProduct(
        self, request: catalog_service_pb2.GetProductRequest, context: Context
    ) -> catalog_service_pb2.GetProductResponse:
        return await self._get_product(request, context)

    CreateCategory = _not_used_here
    GetCategory = _not_used_here
    ListCategories = _not_used_here
    CreateProduct = _not_used_here
    BatchGetProducts = _not_used_here
    ListProducts = _not_used_here
    UpdateProduct = _not_used_here
    DeleteProduct = _not_used_here


def product(name: str, display_name: str = "Assam") -> catalog_service_pb2.GetProductResponse:
    """A GetProduct answer for ``name``."""
    return catalog_service_pb2.GetProductResponse(
        product=catalog_pb2.Product(name=name, display_name=display_name)
    )


async def echo(
    request: catalog_service_pb2.GetProductRequest, _context: Context
) -> catalog_service_pb2.GetProductResponse:
    """Answers GetProduct with a product of the requested name."""
    return product(request.name)


async def always_ready() -> bool:
    return True


def scripted_catalog(
    get_product: GetProduct = echo,
    *,
    readiness: Callable[[], Awaitable[bool]] = always_ready,
    cleanups: Sequence[Cleanup] = (),
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
) -> Service:
    """The runtime :class:`Service` of a :class:`ScriptedCatalog`, ready for ``running``."""
    servicer = ScriptedCatalog(get_product)
    return Service(
        name="catalog",
        domain=DOMAIN,
        service_names=[CATALOG],
        register=lambda server: catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(
            servicer, server
        ),
        readiness=readiness,
        cleanups=list(cleanups),
        interceptors=interceptors,
    )
