"""The thin gRPC adapter of the catalog: convert, call one use case, convert back.

No status codes here: domain and conversion errors are mapped by the runtime interceptor.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc

from agora.catalog.v1 import catalog_service_pb2 as pb
from agora.catalog.v1 import catalog_service_pb2_grpc
from catalog.domain import usecases
from catalog.domain.ports import UnitOfWork
from catalog.entrypoints import convert
from runtime import paging

Context = grpc.aio.ServicerContext[Any, Any]


class CatalogServicer(catalog_service_pb2_grpc.CatalogServiceServicer):
    """Serves ``agora.catalog.v1.CatalogService``."""

    def __init__(self, uow: Callable[[], UnitOfWork], clock: Callable[[], datetime]) -> None:
        self._uow = uow
        self._clock = clock

    async def CreateCategory(
        self, request: pb.CreateCategoryRequest, context: Context
    ) -> pb.CreateCategoryResponse:
        command = convert.create_category_command(request)
        category = await usecases.create_category(self._uow(), command, self._clock())
        return pb.CreateCategoryResponse(category=convert.category_to_proto(category))

    async def GetCategory(
        self, request: pb.GetCategoryRequest, context: Context
    ) -> pb.GetCategoryResponse:
        category_id = convert.parse_category_name(request.name)
        category = await usecases.get_category(self._uow(), category_id)
        return pb.GetCategoryResponse(category=convert.category_to_proto(category))

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: Context
    ) -> pb.ListCategoriesResponse:
        size = paging.page_size(request.page_size)
        after = paging.decode_page_token(request.page_token, query="categories")
        items, next_after = await usecases.list_categories(self._uow(), size, after)
        return pb.ListCategoriesResponse(
            categories=[convert.category_to_proto(c) for c in items],
            next_page_token=convert.next_page_token(next_after, "categories"),
        )

    async def CreateProduct(
        self, request: pb.CreateProductRequest, context: Context
    ) -> pb.CreateProductResponse:
        command = convert.create_product_command(request)
        product = await usecases.create_product(self._uow(), command, self._clock())
        return pb.CreateProductResponse(product=convert.product_to_proto(product))

    async def GetProduct(
        self, request: pb.GetProductRequest, context: Context
    ) -> pb.GetProductResponse:
        product_id = convert.parse_product_name(request.name)
        product = await usecases.get_product(self._uow(), product_id)
        return pb.GetProductResponse(product=convert.product_to_proto(product))

    async def BatchGetProducts(
        self, request: pb.BatchGetProductsRequest, context: Context
    ) -> pb.BatchGetProductsResponse:
        ids = convert.batch_get_ids(request)
        products = await usecases.batch_get_products(self._uow(), ids)
        return pb.BatchGetProductsResponse(products=[convert.product_to_proto(p) for p in products])

    async def ListProducts(
        self, request: pb.ListProductsRequest, context: Context
    ) -> pb.ListProductsResponse:
        query = convert.product_query(request)
        page = await usecases.list_products(self._uow(), query)
        return pb.ListProductsResponse(
            products=[convert.product_to_proto(p) for p in page.items],
            next_page_token=convert.next_page_token(page.next_after, query.fingerprint()),
        )

    async def UpdateProduct(
        self, request: pb.UpdateProductRequest, context: Context
    ) -> pb.UpdateProductResponse:
        command = convert.update_product_command(request)
        product = await usecases.update_product(self._uow(), command, self._clock())
        return pb.UpdateProductResponse(product=convert.product_to_proto(product))

    async def DeleteProduct(
        self, request: pb.DeleteProductRequest, context: Context
    ) -> pb.DeleteProductResponse:
        command = convert.delete_product_command(request)
        await usecases.delete_product(self._uow(), command)
        return pb.DeleteProductResponse()
