"""The thin gRPC adapter of orders: convert, call one use case, convert back.

No status codes here: domain and conversion errors are mapped by the runtime interceptor.
Every method tells its use case whose orders the caller may act for
(:func:`runtime.access.restricted_to`: the caller the runtime authenticated).
PlaceOrder and CancelOrder wake the checkout runner, so the saga starts (or turns to
undoing) at once rather than at its next poll.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import grpc

from agora.orders.v1 import order_service_pb2 as pb
from agora.orders.v1 import order_service_pb2_grpc
from orders.domain import usecases
from orders.domain.ports import ProductCatalog, UnitOfWork
from orders.entrypoints import convert
from runtime.access import restricted_to

Context = grpc.aio.ServicerContext[Any, Any]


class OrderServicer(order_service_pb2_grpc.OrderServiceServicer):
    """Serves ``agora.orders.v1.OrderService``."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        catalog: ProductCatalog,
        clock: Callable[[], datetime],
        reservation_ttl: timedelta,
        wake_checkout: Callable[[], None],
    ) -> None:
        self._uow = uow
        self._catalog = catalog
        self._clock = clock
        self._reservation_ttl = reservation_ttl
        self._wake_checkout = wake_checkout

    async def PlaceOrder(
        self, request: pb.PlaceOrderRequest, context: Context
    ) -> pb.PlaceOrderResponse:
        command = convert.place_order_command(request)
        order = await usecases.place_order(
            self._uow(),
            self._catalog,
            command,
            self._reservation_ttl,
            self._clock(),
            restricted_to=restricted_to(),
        )
        self._wake_checkout()
        return pb.PlaceOrderResponse(order=convert.order_to_proto(order))

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.GetOrderResponse:
        order_id = convert.parse_order_name(request.name)
        order = await usecases.get_order(self._uow(), order_id, restricted_to=restricted_to())
        return pb.GetOrderResponse(order=convert.order_to_proto(order))

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: Context
    ) -> pb.ListOrdersResponse:
        query = convert.order_query(request)
        page = await usecases.list_orders(self._uow(), query, restricted_to=restricted_to())
        return pb.ListOrdersResponse(
            orders=[convert.order_to_proto(order) for order in page.items],
            next_page_token=convert.next_page_token(page.next_after, query),
        )

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: Context
    ) -> pb.CancelOrderResponse:
        command = convert.cancel_order_command(request)
        order = await usecases.cancel_order(
            self._uow(), command, self._clock(), restricted_to=restricted_to()
        )
        self._wake_checkout()
        return pb.CancelOrderResponse(order=convert.order_to_proto(order))
