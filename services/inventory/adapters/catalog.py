"""The catalog port implemented with the generated catalog client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agora.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from inventory.domain.errors import CatalogUnavailable
from inventory.domain.ports import ProductCatalog
from runtime.clients import ClientFactory
from runtime.errors import AgoraError, NotFound

if TYPE_CHECKING:
    from agora.catalog.v1.catalog_service_pb2_grpc import CatalogServiceAsyncStub

CATALOG_SERVICE = catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"]
#: Seconds one existence check may take, retries included, before the catalog counts as down.
CHECK_TIMEOUT = 3.0


class GrpcProductCatalog(ProductCatalog):
    """Asks the catalog's ``GetProduct``, which the client factory retries on UNAVAILABLE."""

    def __init__(self, clients: ClientFactory, target: str, timeout: float = CHECK_TIMEOUT) -> None:
        self._stub: CatalogServiceAsyncStub = clients.stub(
            catalog_service_pb2_grpc.CatalogServiceStub, CATALOG_SERVICE, target
        )
        self._timeout = timeout

    async def exists(self, product_id: str) -> bool:
        name = f"products/{product_id}"
        try:
            await self._stub.GetProduct(
                catalog_service_pb2.GetProductRequest(name=name), timeout=self._timeout
            )
        except NotFound:
            return False
        except AgoraError as error:
            # Down, too slow, shedding load or failing: in every case we cannot tell.
            raise CatalogUnavailable(name) from error
        return True
