"""The thin gRPC adapter of inventory: convert, call one use case, convert back.

No status codes here: domain and conversion errors are mapped by the runtime interceptor.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc

from agora.inventory.v1 import inventory_service_pb2 as pb
from agora.inventory.v1 import inventory_service_pb2_grpc
from inventory.domain import usecases
from inventory.domain.ports import ProductCatalog, UnitOfWork
from inventory.entrypoints import convert

Context = grpc.aio.ServicerContext[Any, Any]


class InventoryServicer(inventory_service_pb2_grpc.InventoryServiceServicer):
    """Serves ``agora.inventory.v1.InventoryService``."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        catalog: ProductCatalog,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow = uow
        self._catalog = catalog
        self._clock = clock

    async def SetStock(self, request: pb.SetStockRequest, context: Context) -> pb.SetStockResponse:
        command = convert.set_stock_command(request)
        stock = await usecases.set_stock(self._uow(), self._catalog, command, self._clock())
        return pb.SetStockResponse(stock=convert.stock_to_proto(stock))

    async def GetStock(self, request: pb.GetStockRequest, context: Context) -> pb.GetStockResponse:
        product_id = convert.parse_stock_name(request.name)
        stock = await usecases.get_stock(self._uow(), product_id)
        return pb.GetStockResponse(stock=convert.stock_to_proto(stock))

    async def ReserveStock(
        self, request: pb.ReserveStockRequest, context: Context
    ) -> pb.ReserveStockResponse:
        command = convert.reserve_stock_command(request)
        reservation = await usecases.reserve_stock(self._uow(), command, self._clock())
        return pb.ReserveStockResponse(reservation=convert.reservation_to_proto(reservation))

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: Context
    ) -> pb.CommitReservationResponse:
        command = convert.commit_reservation_command(request)
        reservation = await usecases.commit_reservation(self._uow(), command, self._clock())
        return pb.CommitReservationResponse(reservation=convert.reservation_to_proto(reservation))

    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: Context
    ) -> pb.ReleaseReservationResponse:
        command = convert.release_reservation_command(request)
        reservation = await usecases.release_reservation(self._uow(), command, self._clock())
        return pb.ReleaseReservationResponse(reservation=convert.reservation_to_proto(reservation))

    async def GetReservation(
        self, request: pb.GetReservationRequest, context: Context
    ) -> pb.GetReservationResponse:
        reservation_id = convert.parse_reservation_name(request.name)
        reservation = await usecases.get_reservation(self._uow(), reservation_id)
        return pb.GetReservationResponse(reservation=convert.reservation_to_proto(reservation))
