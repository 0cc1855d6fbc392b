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
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats
from google.protobuf.message import DecodeError, Message
from google.type import money_pb2
from nats.js.errors import NotFoundError

from agora.catalog.v1 import catalog_pb2
from agora.catalog.v1 import catalog_service_pb2 as catalog_pb
from agora.identity.v1 import identity_service_pb2 as identity_pb
from agora.identity.v1 import user_pb2
from agora.inventory.v1 import inventory_pb2
from agora.inventory.v1 import inventory_service_pb2 as inventory_pb
from agora.notifications.v1 import notification_pb2
from agora.notifications.v1 import notification_service_pb2 as notifications_pb
from agora.orders.v1 import events_pb2 as orders_events
from agora.orders.v1 import order_pb2
from agora.orders.v1 import order_service_pb2 as orders_pb
from agora.payments.v1 import payment_pb2
from agora.payments.v1 import payment_service_pb2 as payments_pb
from agora_sdk import (
    AgoraError,
    CatalogClient,
    ClientFactory,
    IdentityClient,
    InventoryClient,
    NotFound,
    NotificationsClient,
    OrdersClient,
    PaymentsClient,
)
from runtime.broker import stream_name
from runtime.outbox import EVENT_ID_HEADER, EVENT_TYPE_HEADER, TRACEPARENT_HEADER
from tests.support.certs import credentials, tls_env
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


#: The services of every shop, in start order; ``with_notifications`` adds the last two.
CHECKOUT_SERVICES = ("catalog", "inventory", "payments", "orders")
NOTIFICATION_SERVICES = ("identity", "notifications")


@dataclass
class Shop:
    data_dir: Path
    #: The NATS JetStream server every service publishes its events to.
    broker: NatsServer
    #: Each service's port and environment, kept so a restart finds the same ones.
    ports: dict[str, int]
    envs: dict[str, dict[str, str]]
    running: dict[str, ServiceProcess] = field(default_factory=dict)
    #: What the test presents to the services: None for plaintext, else the operator's
    #: certificate (a shop in mTLS mode).
    credentials: grpc.ChannelCredentials | None = None

    @property
    def catalog(self) -> ServiceProcess:
        return self.running["catalog"]

    @property
    def inventory(self) -> ServiceProcess:
        return self.running["inventory"]

    @property
    def payments(self) -> ServiceProcess:
        return self.running["payments"]

    @property
    def orders(self) -> ServiceProcess:
        return self.running["orders"]

    async def events(self, source: str) -> list[PublishedEvent]:
        """Every event in ``source``'s stream so far, in stream order."""
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

    async def order_event_violations(
        self, finals: Sequence[order_pb2.Order], within: float = 120.0
    ) -> tuple[list[str], int]:
        """Waits for orders' relay to publish every order's events, then checks them.

        Every event an order's history implies must be in the stream, once (one event id
        per order and type), in order. Returns the problems still there after ``within``
        seconds and how many events the stream holds.
        """
        expected = {order.name: expected_events(order) for order in finals}
        problems: list[str] = ["the orders stream was never read"]
        events: list[PublishedEvent] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while True:
                    events = await self.events("orders")
                    seen: dict[str, list[tuple[str, str]]] = {}
                    for event in events:
                        kinds = seen.setdefault(event.order_name(), [])
                        kind = (event.event_type.rsplit(".", 1)[-1], event.event_id)
                        if kind not in kinds:  # the same event id twice: a republish
                            kinds.append(kind)
                    problems = [
                        f"{name}: published {[k for k, _ in seen.get(name, [])]}, expected {want}"
                        for name, want in expected.items()
                        if [k for k, _ in seen.get(name, [])] != want
                    ]
                    if not problems:
                        break
                    await asyncio.sleep(0.5)
        return problems, len(events)

    def start(
        self, name: str, extra_env: Mapping[str, str] | None = None, *, wait: bool = True
    ) -> ServiceProcess:
        """Starts ``name`` (again) on its port and data directory; ``wait`` until it serves."""
        env = {**self.envs[name], **(extra_env or {})}
        process = start_service(
            name, self.data_dir / name, port=self.ports[name], env=env, credentials=self.credentials
        )
        self.running[name] = process
        if wait:
            process.wait_until_serving()
        return process

    def kill(self, name: str) -> None:
        """SIGKILLs ``name``: no drain, no cleanup, whatever it was doing is cut short."""
        stop_process(self.running[name].process, signal.SIGKILL)

    def start_orders(
        self, extra_env: Mapping[str, str] | None = None, *, wait: bool = True
    ) -> ServiceProcess:
        return self.start("orders", extra_env, wait=wait)

    def kill_orders(self) -> None:
        self.kill("orders")

    def processes(self) -> list[ServiceProcess]:
        return list(self.running.values())

    @contextlib.asynccontextmanager
    async def clients(self) -> AsyncIterator[ShopClients]:
        factory = ClientFactory(credentials=self.credentials)
        # A service this shop does not run answers UNAVAILABLE from port 1.
        address = {name: f"127.0.0.1:{port}" for name, port in self.ports.items()}
        for name in CHECKOUT_SERVICES + NOTIFICATION_SERVICES:
            address.setdefault(name, "127.0.0.1:1")
        try:
            yield ShopClients(
                CatalogClient(address["catalog"], factory=factory),
                InventoryClient(address["inventory"], factory=factory),
                PaymentsClient(address["payments"], factory=factory),
                OrdersClient(address["orders"], factory=factory),
                IdentityClient(address["identity"], factory=factory),
                NotificationsClient(address["notifications"], factory=factory),
            )
        finally:
            await factory.close()


@contextlib.contextmanager
def running_shop(
    data_dir: Path,
    *,
    orders_env: Mapping[str, str] | None = None,
    payments_env: Mapping[str, str] | None = None,
    with_notifications: bool = False,
    only: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    service_env: Mapping[str, Mapping[str, str]] | None = None,
    tls_dir: Path | None = None,
) -> Iterator[Shop]:
    """Starts the services (in parallel), waits until all serve, stops them (and NATS) after.

    The checkout's four run by default; ``with_notifications`` adds identity (whose
    sign-ups give notifications its users' addresses) and notifications, whose maildir is
    ``data_dir/notifications/mail``; ``only`` names the services instead. ``env`` goes to
    every service, ``service_env`` to the one it names (after ``orders_env`` and
    ``payments_env``). With ``tls_dir`` (certificates as ``make certs`` makes them) every
    service runs in mTLS mode, and the test's health checks and clients present the
    operator's certificate.
    """
    names = tuple(only) or (
        CHECKOUT_SERVICES + (NOTIFICATION_SERVICES if with_notifications else ())
    )
    ports = {name: free_port() for name in names}
    peers = {f"AGORA_{name.upper()}_ADDR": f"127.0.0.1:{port}" for name, port in ports.items()}
    broker = NatsServer(store_dir=data_dir / "nats" / "store")
    peers["NATS_URL"] = broker.url
    if tls_dir is not None:
        peers.update(tls_env(tls_dir))
    common = {**peers, **(env or {})}
    own: dict[str, Mapping[str, str]] = {
        "inventory": {"INVENTORY_SWEEP_INTERVAL_SECONDS": "0.2"},
        "payments": payments_env or {},
        "orders": {**FAST_ORDERS, **(orders_env or {})},
        "notifications": {
            "NOTIFICATIONS_POLL_SECONDS": "0.2",
            "NOTIFICATIONS_RETRY_SECONDS": "0.2",
        },
    }
    extra = service_env or {}
    envs = {name: {**common, **own.get(name, {}), **extra.get(name, {})} for name in names}
    shop = Shop(
        data_dir, broker, ports, envs, credentials=None if tls_dir is None else credentials(tls_dir)
    )
    try:
        broker.start()
        broker.wait_ready()
        for name in names:
            shop.start(name, wait=False)
        for process in shop.processes():
            process.wait_until_serving()
        yield shop
    finally:
        for process in shop.processes():
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
        """The order an orders event is about ("" for a message that is no orders event)."""
        kind = ORDER_EVENTS.get(self.event_type)
        if kind is None:
            return ""
        try:
            message = kind.FromString(self.data)
        except DecodeError:
            return ""  # a poison message a test published on purpose
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


def expected_events(order: order_pb2.Order) -> list[str]:
    """The events an order's history implies, in the order they must be published."""
    last = "OrderCompleted" if order.state == order_pb2.ORDER_STATE_COMPLETED else "OrderCancelled"
    return ["OrderPlaced", *(["OrderConfirmed"] if was_confirmed(order) else []), last]


def outcomes(orders: Sequence[order_pb2.Order]) -> dict[str, int]:
    """How many orders ended in each state (and cancellation reason), for a run's report."""
    counted = Counter(
        order_pb2.OrderState.Name(o.state)
        + (
            f"/{order_pb2.CancellationReason.Name(o.cancellation_reason)}"
            if o.cancellation_reason
            else ""
        )
        for o in orders
    )
    return dict(sorted(counted.items()))


def was_confirmed(order: order_pb2.Order) -> bool:
    """True if the checkout confirmed the order (so OrderConfirmed was published)."""
    return any(
        r.step == order_pb2.CHECKOUT_STEP_CONFIRM_ORDER
        and r.outcome == order_pb2.STEP_OUTCOME_SUCCEEDED
        for r in order.step_history
    )


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
    #: These two answer only in a shop that runs them.
    identity: IdentityClient
    notifications: NotificationsClient

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

    async def finals(self, names: Sequence[str], within: float = 120.0) -> list[order_pb2.Order]:
        """Every order of ``names``, once final; tolerates orders restarting meanwhile."""
        finals: list[order_pb2.Order] = []
        async with asyncio.timeout(within):
            for name in names:
                while True:
                    try:
                        order: order_pb2.Order | None = await self.get(name)
                    except AgoraError as error:
                        if error.code.name not in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                            raise
                        order = None
                    if order is not None and order.state in FINAL_STATES:
                        finals.append(order)
                        break
                    await asyncio.sleep(0.1)
        return finals

    async def sign_up(self, email: str, *, request_id: str | None = None) -> user_pb2.User:
        """Signs a user up (identity publishes UserSignedUp, notifications learns the address)."""
        return await self.identity.sign_up(
            identity_pb.SignUpRequest(
                email=email,
                password="correct horse battery staple",
                display_name=email.split("@", 1)[0].title(),
                request_id=request_id or str(uuid.uuid4()),
            ),
            timeout=CALL_TIMEOUT_S,
        )

    async def notifications_of(self, event_type: str = "") -> list[notification_pb2.Notification]:
        """Every notification so far (of one event type, if given), newest first."""
        pager = self.notifications.list_notifications(
            notifications_pb.ListNotificationsRequest(event_type=event_type, page_size=100),
            timeout=CALL_TIMEOUT_S,
        )
        return [notification async for notification in pager]

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
