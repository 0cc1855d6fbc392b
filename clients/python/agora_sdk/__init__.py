"""Agora's Python client SDK: one asyncio client per service, errors as exceptions.

With the services running (``make run``), this prints the tea on sale and survives a
missing product::

    import asyncio

    import agora_sdk
    from agora.catalog.v1.catalog_service_pb2 import GetProductRequest, ListProductsRequest


    async def main() -> None:
        async with agora_sdk.CatalogClient() as catalog:  # AGORA_CATALOG_ADDR or loopback
            async for product in catalog.list_products(
                ListProductsRequest(category="categories/tea")
            ):
                print(product.name, product.price.units, product.price.currency_code)
            try:
                await catalog.get_product(GetProductRequest(name="products/no-such-tea"))
            except agora_sdk.NotFound as error:
                print(error.reason, error.metadata)  # PRODUCT_NOT_FOUND {'product': ...}


    asyncio.run(main())

Build clients inside a running event loop. Each takes a target ``host:port`` (default:
the service's ``AGORA_<SERVICE>_ADDR``, else its default port on loopback), an optional
shared :class:`ClientFactory` (clients built on one factory share its channels, and
whoever made the factory closes it) and an optional ``token`` sent as
``authorization: Bearer <token>`` on every call.

Every method takes the RPC's generated request message and an optional ``timeout`` in
seconds, and returns the resource of the response (``get_product`` returns a
``Product``); Delete methods return None; List methods return an :class:`AsyncPager`
over items (``.pages()`` gives one list per page); the few RPCs that answer with more
than one resource (``login``, ``refresh_token``, ``get_jwks``) return the response.
Failures raise the :class:`AgoraError` subclass matching the status code, with the
server's ``reason``, ``domain``, ``metadata`` (and ``violations`` for
:class:`InvalidArgument`); a ``grpc.RpcError`` never reaches the caller.
"""

from agora_sdk.base import ServiceClient
from agora_sdk.catalog import CatalogClient
from agora_sdk.identity import IdentityClient
from agora_sdk.inventory import InventoryClient
from agora_sdk.notifications import NotificationsClient
from agora_sdk.orders import OrdersClient
from agora_sdk.paging import AsyncPager
from agora_sdk.payments import PaymentsClient
from runtime.clients import ClientFactory
from runtime.errors import (
    Aborted,
    AgoraError,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unknown,
)

__all__ = [
    "Aborted",
    "AgoraError",
    "AlreadyExists",
    "AsyncPager",
    "CatalogClient",
    "ClientFactory",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "IdentityClient",
    "Internal",
    "InvalidArgument",
    "InventoryClient",
    "NotFound",
    "NotificationsClient",
    "OrdersClient",
    "PaymentsClient",
    "PermissionDenied",
    "ResourceExhausted",
    "ServiceClient",
    "Unauthenticated",
    "Unavailable",
    "Unknown",
]
