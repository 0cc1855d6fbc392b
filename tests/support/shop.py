"""The checkout path as real processes: catalog, inventory, payments and orders on loopback.

The end-to-end checkout tests and the fault runs share it::

    with running_shop(tmp_path) as shop:
        async with shop.clients() as clients:
            await clients.stock({"tea": 10})
            order = await clients.place("tea", 2)
            final = await clients.wait_final(order.name)
            assert await clients.invariant_violations(...) == []

:meth:`Shop.kill_orders` and :meth:`Shop.start_orders` SIGKILL and restart the orders
process on the same port and database, which is how the crash tests interrupt a checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nats
from google.protobuf.message import Message
from google.type import money_pb2
from nats.js.errors import NotFoundError

from agora.catalog.v1 import catalog_pb2
from agora.catalog.v1 import catalog_service_pb2 as catalog_pb
from agora.inventory.v1 import inventory_pb2
from agora.inventory.v1 import inventory_service_pb2 as inventory_pb
from agora.orders.v1 import events_pb2 as orders_events
from agora.orders.v1 import order_pb2
from agora.orders.v1 import order_service_pb2 as orders_pb
from agora.payments.v1 import payment_pb2
from agora.payments.v1 import payment_service_pb2 as payments_pb
from agora_sdk import (
    CatalogClient,
    ClientFactory,
    InventoryClient,
    NotFound,
    OrdersClient,
    PaymentsClient,
)
from runtime.broker import stream_name
from runtime.outbox import EVENT_ID_HEADER, EVENT_TYPE_HEADER, TRACEPARENT_HEADER
from tests.support.nats import NatsServer
from tests.support.processes import ServiceProcess, free_port, start_service, stop_process

#: Approved by the simulated processor; see payments' contract for the other test cards.
APPROVED_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
INSUFFICIENT_FUNDS_CARD = "4000 0000 0000 9995"
TIMEOUT_CARD = "4000 0000 0000 0069"
UNAVAILABLE_CARD = "4000 0000 0000 0119"

#: The products every shop sells, with their unit prices in EUR cents.
PRICES = {"tea": 450, "cup": 1200, "pot": 3500}
#: Bound on one call from a test.
CALL_TIMEOUT_S = 10.0
FINAL_STATES = (order_pb2.ORDER_STATE_COMPLETED, order_pb2.ORDER_STATE_CANCELLED)

#: Orders settings that make the checkout quick to observe in tests.
FAST_ORDERS = {
    "ORDERS_POLL_SECONDS": "0.2",
    "ORDERS_RETRY_MAX_SECONDS": "0.5",
    "ORDERS_LEASE_SECONDS": "5",
}


@dataclass
class Shop:
    data_dir: Path
    catalog: ServiceProcess
    inventory: ServiceProcess
    payments: ServiceProcess
    orders: ServiceProcess
    orders_port: int
    orders_env: dict[str, str] = field(default_factory=dict)
    #: The NATS JetStream server every service publishes its events to.
    broker: NatsServer | None = None

    async def events(self, source: str) -> list[PublishedEvent]:
        """Every event in ``source``'s stream so far, in stream order."""
        assert self.broker is not None
        client = await nats.connect(self.broker.url)
        try:
            jetstream = client.jetstream()
            try:
                info = await jetstream.stream_info(stream_name(source))
            except NotFoundError:
                return []
            count = info.state.messages
            found: list[PublishedEvent] = []
            for sequence in range(info.state.first_seq, info.state.first_seq + count):
                raw = await jetstream.get_msg(stream_name(source), sequence)
                headers = raw.headers or {}
                found.append(
                    PublishedEvent(
                        sequence,
                        headers.get(EVENT_ID_HEADER, ""),
                        headers.get(EVENT_TYPE_HEADER, raw.subject or ""),
                        headers.get(TRACEPARENT_HEADER, ""),
                        raw.data or b"",
                    )
                )
            return found
        finally:
            await client.close()

    def start_orders(
        self, extra_env: Mapping[str, str] | None = None, *, wait: bool = True
    ) -> ServiceProcess:
        """Starts orders (again) on its port and database; ``wait`` until it serves."""
        env = {**self.orders_env, **(extra_env or {})}
        self.orders = start_service(
            "orders", self.data_dir / "orders", port=self.orders_port, env=env
        )
        if wait:
            self.orders.wait_until_serving()
        return self.orders

    def kill_orders(self) -> None:
        """SIGKILLs orders: no drain, no cleanup, whatever it was doing is cut short."""
        stop_process(self.orders.process, signal.SIGKILL)

    def processes(self) -> list[ServiceProcess]:
        return [self.catalog, self.inventory, self.payments, self.orders]

    @contextlib.asynccontextmanager
    async def clients(self) -> AsyncIterator[ShopClients]:
        factory = ClientFactory()
        try:
            yield ShopClients(
                CatalogClient(self.catalog.address, factory=factory),
                InventoryClient(self.inventory.address, factory=factory),
                PaymentsClient(self.payments.address, factory=factory),
                OrdersClient(self.orders.address, factory=factory),
            )
        finally:
            await factory.close()


@contextlib.contextmanager
def running_shop(
    data_dir: Path,
    *,
    orders_env: Mapping[str, str] | None = None,
    payments_env: Mapping[str, str] | None = None,
) -> Iterator[Shop]:
    """Starts the four services (in parallel), waits until all serve, stops them after."""
    ports = {name: free_port() for name in ("catalog", "inventory", "payments", "orders")}
    peers = {f"AGORA_{name.upper()}_ADDR": f"127.0.0.1:{port}" for name, port in ports.items()}
    started: list[ServiceProcess] = []
    shop: Shop | None = None
    broker = NatsServer(store_dir=data_dir / "nats" / "store")
    try:
        broker.start()
        broker.wait_ready()
        peers["NATS_URL"] = broker.url
        catalog = start_service("catalog", data_dir / "catalog", port=ports["catalog"], env=peers)
        started.append(catalog)
        inventory = start_service(
            "inventory",
            data_dir / "inventory",
            port=ports["inventory"],
            env={**peers, "INVENTORY_SWEEP_INTERVAL_SECONDS": "0.2"},
        )
        started.append(inventory)
        payments = start_service(
            "payments",
            data_dir / "payments",
            port=ports["payments"],
            env={**peers, **(payments_env or {})},
        )
        started.append(payments)
        env = {**peers, **FAST_ORDERS, **(orders_env or {})}
        orders = start_service("orders", data_dir / "orders", port=ports["orders"], env=env)
        started.append(orders)
        for process in started:
            process.wait_until_serving()
        shop = Shop(data_dir, catalog, inventory, payments, orders, ports["orders"], env, broker)
        yield shop
    finally:
        if shop is not None:
            started.append(shop.orders)  # it may have been restarted
        for process in started:
            process.stop()
        broker.stop()


@dataclass(frozen=True)
class PublishedEvent:
    sequence: int
    event_id: str
    event_type: str
    traceparent: str
    data: bytes

    def order_name(self) -> str:
        """The order an orders event is about."""
        message = ORDER_EVENTS[self.event_type].FromString(self.data)
        return str(getattr(message, "order").name)  # noqa: B009 - every orders event has one


#: The orders events by type, to decode what the stream holds.
ORDER_EVENTS: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        orders_events.OrderPlaced,
        orders_events.OrderConfirmed,
        orders_events.OrderCompleted,
        orders_events.OrderCancelled,
    )
}


@dataclass
class Stock:
    on_hand: int
    reserved: int


@dataclass
class ShopClients:
    catalog: CatalogClient
    inventory: InventoryClient
    payments: PaymentsClient
    orders: OrdersClient

    async def stock(self, units: Mapping[str, int]) -> None:
        """Creates the products (if new) and sets their stock to ``units``."""
        with contextlib.suppress(Exception):
            await self.catalog.create_category(
                catalog_pb.CreateCategoryRequest(
                    category_id="tea", category=catalog_pb2.Category(display_name="Tea")
                ),
                timeout=CALL_TIMEOUT_S,
            )
        for product_id, on_hand in units.items():
            try:
                await self.catalog.get_product(
                    catalog_pb.GetProductRequest(name=f"products/{product_id}"),
                    timeout=CALL_TIMEOUT_S,
                )
            except NotFound:
                cents = PRICES[product_id]
                await self.catalog.create_product(
                    catalog_pb.CreateProductRequest(
                        product_id=product_id,
                        product=catalog_pb2.Product(
                            display_name=product_id.title(),
                            category="categories/tea",
                            price=money_pb2.Money(
                                currency_code="EUR",
                                units=cents // 100,
                                nanos=cents % 100 * 10_000_000,
                            ),
                        ),
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
            await self.inventory.set_stock(
                inventory_pb.SetStockRequest(name=f"products/{product_id}/stock", on_hand=on_hand),
                timeout=CALL_TIMEOUT_S,
            )

    async def stock_of(self, product_id: str) -> Stock:
        stock = await self.inventory.get_stock(
            inventory_pb.GetStockRequest(name=f"products/{product_id}/stock"),
            timeout=CALL_TIMEOUT_S,
        )
        return Stock(stock.on_hand, stock.reserved)

    async def place(
        self,
        items: Mapping[str, int],
        card: str = APPROVED_CARD,
        *,
        user: str = "users/alice",
        request_id: str | None = None,
    ) -> order_pb2.Order:
        return await self.orders.place_order(
            orders_pb.PlaceOrderRequest(
                user=user,
                line_items=[
                    orders_pb.LineItem(product=f"products/{product}", quantity=quantity)
                    for product, quantity in items.items()
                ],
                payment_token=card,
                request_id=request_id or str(uuid.uuid4()),
            ),
            timeout=CALL_TIMEOUT_S,
        )

    async def get(self, name: str) -> order_pb2.Order:
        return await self.orders.get_order(
            orders_pb.GetOrderRequest(name=name), timeout=CALL_TIMEOUT_S
        )

    async def wait_final(self, name: str, within: float = 60.0) -> order_pb2.Order:
        """Polls the order until it is COMPLETED or CANCELLED (fails after ``within`` seconds)."""
        async with asyncio.timeout(within):
            while True:
                order = await self.get(name)
                if order.state in FINAL_STATES:
                    return order
                await asyncio.sleep(0.1)

    async def wait_for(
        self, name: str, step: int, outcome: int, within: float = 30.0
    ) -> order_pb2.Order:
        """Polls the order until its history has ``step`` with ``outcome``."""
        async with asyncio.timeout(within):
            while True:
                order = await self.get(name)
                if any(r.step == step and r.outcome == outcome for r in order.step_history):
                    return order
                await asyncio.sleep(0.05)

    async def payments_of(self, order_name: str) -> list[payment_pb2.Payment]:
        pager = self.payments.list_payments(
            payments_pb.ListPaymentsRequest(order=order_name), timeout=CALL_TIMEOUT_S
        )
        return [payment async for payment in pager]

    async def wait_unreserved(self, products: Sequence[str], within: float = 30.0) -> None:
        """Waits until no unit of ``products`` is reserved (expired holds are swept)."""
        async with asyncio.timeout(within):
            while True:
                stocks = [await self.stock_of(product) for product in products]
                if all(stock.reserved == 0 for stock in stocks):
                    return
                await asyncio.sleep(0.1)

    async def invariant_violations(
        self, orders: Sequence[order_pb2.Order], initial: Mapping[str, int]
    ) -> list[str]:
        """Checks the checkout's promises over ``orders``, final, placed on ``initial`` stock.

        - every order ended COMPLETED or CANCELLED;
        - stock is conserved: what left ``on_hand`` is exactly what completed orders bought,
          and nothing stays reserved;
        - a completed order has exactly one payment, captured once for its total, and a
          committed reservation;
        - a cancelled order has no money taken: none of its payments is authorized or
          captured (a captured one must have been refunded in full);
        - every captured payment belongs to a completed order or is refunded.
        """
        problems: list[str] = []
        bought = dict.fromkeys(initial, 0)
        for order in orders:
            state = order_pb2.OrderState.Name(order.state)
            if order.state not in FINAL_STATES:
                problems.append(f"{order.name} ended {state}")
                continue
            payments = await self.payments_of(order.name)
            live = [
                payment_pb2.PaymentState.Name(p.state)
                for p in payments
                if p.state
                in (
                    payment_pb2.PAYMENT_STATE_AUTHORIZED,
                    payment_pb2.PAYMENT_STATE_CAPTURED,
                    payment_pb2.PAYMENT_STATE_PARTIALLY_REFUNDED,
                )
            ]
            if order.state == order_pb2.ORDER_STATE_COMPLETED:
                for line in order.lines:
                    bought[line.product.removeprefix("products/")] += line.quantity
                captured = [p for p in payments if p.state == payment_pb2.PAYMENT_STATE_CAPTURED]
                if len(captured) != 1 or len(live) != 1:
                    problems.append(f"{order.name} COMPLETED with payments in states {live}")
                elif _nanos(captured[0].captured_amount) != _nanos(order.total):
                    problems.append(
                        f"{order.name} captured {captured[0].captured_amount} "
                        f"for a total of {order.total}"
                    )
                reservation = await self.inventory.get_reservation(
                    inventory_pb.GetReservationRequest(name=order.reservation),
                    timeout=CALL_TIMEOUT_S,
                )
                if reservation.state != inventory_pb2.RESERVATION_STATE_COMMITTED:
                    problems.append(f"{order.name} COMPLETED with its reservation not committed")
            elif live:
                problems.append(f"{order.name} CANCELLED with payments in states {live}")
        await self.wait_unreserved(list(initial))
        for product, on_hand in initial.items():
            stock = await self.stock_of(product)
            if stock.on_hand != on_hand - bought[product]:
                problems.append(
                    f"products/{product}: on_hand {stock.on_hand}, expected "
                    f"{on_hand} - {bought[product]} bought"
                )
        return problems


def _nanos(money: money_pb2.Money) -> int:
    return money.units * 1_000_000_000 + money.nanos
