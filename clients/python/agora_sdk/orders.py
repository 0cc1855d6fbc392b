"""A client of orders: placing orders, following their checkout and cancelling them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agora.orders.v1 import order_pb2, order_service_pb2_grpc
from agora.orders.v1 import order_service_pb2 as pb
from agora_sdk.base import ServiceClient
from agora_sdk.paging import AsyncPager

if TYPE_CHECKING:
    import grpc

    from agora.orders.v1.order_service_pb2_grpc import OrderServiceAsyncStub


class OrdersClient(ServiceClient["OrderServiceAsyncStub"]):
    """Calls ``agora.orders.v1.OrderService``; see :class:`ServiceClient` for the arguments.

    Each method takes the RPC's request message and returns the ``Order`` of its
    response; ``list_orders`` returns an :class:`AsyncPager` over orders. ``place_order``
    returns the order as accepted (``ORDER_STATE_PENDING``) while its checkout runs in the
    background: poll ``get_order`` for the outcome. A declined card or missing stock shows
    up as a cancelled order, not as an error. Cancelling a confirmed or completed order
    raises ``FailedPrecondition`` (reason ``ORDER_NOT_CANCELLABLE``).
    """

    service = "orders"
    service_descriptor = pb.DESCRIPTOR.services_by_name["OrderService"]

    def _new_stub(self, channel: grpc.aio.Channel) -> OrderServiceAsyncStub:
        return order_service_pb2_grpc.OrderServiceStub(channel)

    async def place_order(
        self, request: pb.PlaceOrderRequest, *, timeout: float | None = None
    ) -> order_pb2.Order:
        return (await self._call(self._stub.PlaceOrder, request, timeout)).order

    async def get_order(
        self, request: pb.GetOrderRequest, *, timeout: float | None = None
    ) -> order_pb2.Order:
        return (await self._call(self._stub.GetOrder, request, timeout)).order

    def list_orders(
        self, request: pb.ListOrdersRequest, *, timeout: float | None = None
    ) -> AsyncPager[order_pb2.Order]:
        return self._list(self._stub.ListOrders, request, lambda r: r.orders, timeout)

    async def cancel_order(
        self, request: pb.CancelOrderRequest, *, timeout: float | None = None
    ) -> order_pb2.Order:
        return (await self._call(self._stub.CancelOrder, request, timeout)).order
