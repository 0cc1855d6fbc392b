"""A client of inventory: stock levels and the reservations held against them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agora.inventory.v1 import inventory_pb2, inventory_service_pb2_grpc
from agora.inventory.v1 import inventory_service_pb2 as pb
from agora_sdk.base import ServiceClient

if TYPE_CHECKING:
    import grpc

    from agora.inventory.v1.inventory_service_pb2_grpc import InventoryServiceAsyncStub


class InventoryClient(ServiceClient["InventoryServiceAsyncStub"]):
    """Calls ``agora.inventory.v1.InventoryService``; see :class:`ServiceClient` for the arguments.

    Each method takes the RPC's request message and returns the resource of its response:
    the ``Stock`` for stock levels, the ``Reservation`` for reservations.
    """

    service = "inventory"
    service_descriptor = pb.DESCRIPTOR.services_by_name["InventoryService"]

    def _new_stub(self, channel: grpc.aio.Channel) -> InventoryServiceAsyncStub:
        return inventory_service_pb2_grpc.InventoryServiceStub(channel)

    async def set_stock(
        self, request: pb.SetStockRequest, *, timeout: float | None = None
    ) -> inventory_pb2.Stock:
        return (await self._call(self._stub.SetStock, request, timeout)).stock

    async def get_stock(
        self, request: pb.GetStockRequest, *, timeout: float | None = None
    ) -> inventory_pb2.Stock:
        return (await self._call(self._stub.GetStock, request, timeout)).stock

    async def reserve_stock(
        self, request: pb.ReserveStockRequest, *, timeout: float | None = None
    ) -> inventory_pb2.Reservation:
        return (await self._call(self._stub.ReserveStock, request, timeout)).reservation

    async def commit_reservation(
        self, request: pb.CommitReservationRequest, *, timeout: float | None = None
    ) -> inventory_pb2.Reservation:
        return (await self._call(self._stub.CommitReservation, request, timeout)).reservation

    async def release_reservation(
        self, request: pb.ReleaseReservationRequest, *, timeout: float | None = None
    ) -> inventory_pb2.Reservation:
        return (await self._call(self._stub.ReleaseReservation, request, timeout)).reservation

    async def get_reservation(
        self, request: pb.GetReservationRequest, *, timeout: float | None = None
    ) -> inventory_pb2.Reservation:
        return (await self._call(self._stub.GetReservation, request, timeout)).reservation
