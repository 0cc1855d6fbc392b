"""The catalog, inventory and payments ports, implemented with the Python SDK's clients.

The clients share one :class:`runtime.clients.ClientFactory`, so every call gets the
runtime's behaviour: a deadline (``timeout`` here, capped by an inbound call's deadline),
retries of UNAVAILABLE only on methods the contract marks idempotent, and the peer's
error as a :mod:`runtime.errors` class with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, timedelta

from google.protobuf.duration_pb2 import Duration
from google.type import money_pb2

from agora.catalog.v1 import catalog_service_pb2 as catalog_pb
from agora.inventory.v1 import inventory_pb2
from agora.inventory.v1 import inventory_service_pb2 as inventory_pb
from agora.payments.v1 import payment_pb2
from agora.payments.v1 import payment_service_pb2 as payments_pb
from agora_sdk import CatalogClient, InventoryClient, PaymentsClient
from orders.domain.errors import CatalogUnavailable, ProductsNotFound
from orders.domain.model import LineItem, Money, PricedProduct
from orders.domain.ports import Inventory, Payments, PaymentSummary, ProductCatalog, Reservation
from runtime.clients import ClientFactory
from runtime.errors import AgoraError, NotFound

#: Seconds PlaceOrder waits for the catalog, retries included.
CATALOG_TIMEOUT = 3.0
#: Seconds one checkout call may take, retries included, before it counts as failed
#: (transiently: the checkout tries again). Longer than payments' processor timeout.
STEP_TIMEOUT = 10.0


class GrpcProductCatalog(ProductCatalog):
    """Prices products with one ``BatchGetProducts`` call."""

    def __init__(self, factory: ClientFactory, target: str, timeout: float = CATALOG_TIMEOUT):
        self._client = CatalogClient(target, factory=factory)
        self._timeout = timeout

    async def price(self, product_ids: Sequence[str]) -> Sequence[PricedProduct]:
        request = catalog_pb.BatchGetProductsRequest(
            names=[f"products/{product_id}" for product_id in product_ids]
        )
        try:
            products = await self._client.batch_get_products(request, timeout=self._timeout)
        except NotFound as error:
            missing = error.metadata.get("product", "")
            raise ProductsNotFound([name for name in missing.split(",") if name]) from error
        except AgoraError as error:
            # Down, too slow, shedding load or failing: the order cannot be priced now.
            raise CatalogUnavailable() from error
        return [
            PricedProduct(
                product.name.removeprefix("products/"),
                product.display_name,
                Money.of(product.price.currency_code, product.price.units, product.price.nanos),
            )
            for product in products
        ]


class GrpcInventory(Inventory):
    def __init__(self, factory: ClientFactory, target: str, timeout: float = STEP_TIMEOUT):
        self._client = InventoryClient(target, factory=factory)
        self._timeout = timeout

    async def reserve(
        self, order_id: str, items: Sequence[LineItem], ttl: timedelta, request_id: str
    ) -> Reservation:
        duration = Duration()
        duration.FromTimedelta(ttl)
        reservation = await self._client.reserve_stock(
            inventory_pb.ReserveStockRequest(
                order=f"orders/{order_id}",
                items=[
                    inventory_pb2.ReservationItem(
                        product=f"products/{item.product_id}", quantity=item.quantity
                    )
                    for item in items
                ],
                ttl=duration,
                request_id=request_id,
            ),
            timeout=self._timeout,
        )
        return Reservation(
            reservation.name.removeprefix("reservations/"),
            reservation.expire_time.ToDatetime(tzinfo=UTC),
        )

    async def commit(self, reservation_id: str, request_id: str) -> None:
        await self._client.commit_reservation(
            inventory_pb.CommitReservationRequest(
                name=f"reservations/{reservation_id}", request_id=request_id
            ),
            timeout=self._timeout,
        )

    async def release(self, reservation_id: str, request_id: str) -> None:
        await self._client.release_reservation(
            inventory_pb.ReleaseReservationRequest(
                name=f"reservations/{reservation_id}", request_id=request_id
            ),
            timeout=self._timeout,
        )


class GrpcPayments(Payments):
    def __init__(self, factory: ClientFactory, target: str, timeout: float = STEP_TIMEOUT):
        self._client = PaymentsClient(target, factory=factory)
        self._timeout = timeout

    async def authorize(
        self, order_id: str, user_id: str, amount: Money, payment_token: str, request_id: str
    ) -> str:
        payment = await self._client.authorize_payment(
            payments_pb.AuthorizePaymentRequest(
                order=f"orders/{order_id}",
                user=f"users/{user_id}",
                amount=money_pb2.Money(
                    currency_code=amount.currency_code,
                    units=amount.units,
                    nanos=amount.fractional_nanos,
                ),
                payment_token=payment_token,
                request_id=request_id,
            ),
            timeout=self._timeout,
        )
        return payment.name.removeprefix("payments/")

    async def capture(self, payment_id: str, request_id: str) -> None:
        await self._client.capture_payment(
            payments_pb.CapturePaymentRequest(name=f"payments/{payment_id}", request_id=request_id),
            timeout=self._timeout,
        )

    async def void(self, payment_id: str, request_id: str) -> None:
        await self._client.void_payment(
            payments_pb.VoidPaymentRequest(name=f"payments/{payment_id}", request_id=request_id),
            timeout=self._timeout,
        )

    async def refund(self, payment_id: str, request_id: str) -> None:
        # Without an amount, the refund is whatever is left of the captured amount.
        await self._client.refund_payment(
            payments_pb.RefundPaymentRequest(name=f"payments/{payment_id}", request_id=request_id),
            timeout=self._timeout,
        )

    async def of_order(self, order_id: str) -> Sequence[PaymentSummary]:
        pager = self._client.list_payments(
            payments_pb.ListPaymentsRequest(order=f"orders/{order_id}", page_size=100),
            timeout=self._timeout,
        )
        return [
            PaymentSummary(
                payment.name.removeprefix("payments/"),
                payment_pb2.PaymentState.Name(payment.state).removeprefix("PAYMENT_STATE_"),
            )
            async for payment in pager
        ]
