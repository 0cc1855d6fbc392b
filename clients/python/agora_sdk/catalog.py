"""A client of the catalog: categories and products with their prices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agora.catalog.v1 import catalog_pb2, catalog_service_pb2_grpc
from agora.catalog.v1 import catalog_service_pb2 as pb
from agora_sdk.base import ServiceClient
from agora_sdk.paging import AsyncPager

if TYPE_CHECKING:
    import grpc

    from agora.catalog.v1.catalog_service_pb2_grpc import CatalogServiceAsyncStub


class CatalogClient(ServiceClient["CatalogServiceAsyncStub"]):
    """Calls ``agora.catalog.v1.CatalogService``; see :class:`ServiceClient` for the arguments.

    Each method takes the RPC's request message and returns the resource of its response
    (``get_product`` returns the ``Product``); ``delete_product`` returns None and List
    methods return an :class:`AsyncPager` over the items of every page. ``timeout`` is in
    seconds (None: the factory's default, capped by the inbound call being served).
    """

    service = "catalog"
    service_descriptor = pb.DESCRIPTOR.services_by_name["CatalogService"]

    def _new_stub(self, channel: grpc.aio.Channel) -> CatalogServiceAsyncStub:
        return catalog_service_pb2_grpc.CatalogServiceStub(channel)

    async def create_category(
        self, request: pb.CreateCategoryRequest, *, timeout: float | None = None
    ) -> catalog_pb2.Category:
        return (await self._call(self._stub.CreateCategory, request, timeout)).category

    async def get_category(
        self, request: pb.GetCategoryRequest, *, timeout: float | None = None
    ) -> catalog_pb2.Category:
        return (await self._call(self._stub.GetCategory, request, timeout)).category

    def list_categories(
        self, request: pb.ListCategoriesRequest, *, timeout: float | None = None
    ) -> AsyncPager[catalog_pb2.Category]:
        return self._list(self._stub.ListCategories, request, lambda r: r.categories, timeout)

    async def create_product(
        self, request: pb.CreateProductRequest, *, timeout: float | None = None
    ) -> catalog_pb2.Product:
        return (await self._call(self._stub.CreateProduct, request, timeout)).product

    async def get_product(
        self, request: pb.GetProductRequest, *, timeout: float | None = None
    ) -> catalog_pb2.Product:
        return (await self._call(self._stub.GetProduct, request, timeout)).product

    async def batch_get_products(
        self, request: pb.BatchGetProductsRequest, *, timeout: float | None = None
    ) -> list[catalog_pb2.Product]:
        """Returns the products in the order requested (all or nothing)."""
        return list((await self._call(self._stub.BatchGetProducts, request, timeout)).products)

    def list_products(
        self, request: pb.ListProductsRequest, *, timeout: float | None = None
    ) -> AsyncPager[catalog_pb2.Product]:
        return self._list(self._stub.ListProducts, request, lambda r: r.products, timeout)

    async def update_product(
        self, request: pb.UpdateProductRequest, *, timeout: float | None = None
    ) -> catalog_pb2.Product:
        return (await self._call(self._stub.UpdateProduct, request, timeout)).product

    async def delete_product(
        self, request: pb.DeleteProductRequest, *, timeout: float | None = None
    ) -> None:
        await self._call(self._stub.DeleteProduct, request, timeout)
