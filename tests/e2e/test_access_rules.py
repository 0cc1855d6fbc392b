"""Who may do what, across real processes, with real access tokens from identity.

The whole shop runs as ``make run`` has it: every service on loopback, each trusting
loopback calls without a token as the local operator, which is how the services call each
other (and how the test stocks the shop and follows checkouts). Customers are real users:
they sign up and log in through identity, and every call they make carries their access
token, which each service verifies against the keys identity publishes. So the rules shown
here are the ones a customer calling from anywhere meets: the contracts' access rules,
enforced by the runtime (``MISSING_ROLE``, ``INTERNAL_ONLY``, ``UNAUTHENTICATED``), and
each service's ownership rule (``NOT_RESOURCE_OWNER``). An admin is made the way an
operator makes one, with ``python -m identity grant-role`` against identity's database.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from agora.identity.v1 import identity_service_pb2 as identity_pb
from agora.inventory.v1 import inventory_pb2
from agora.inventory.v1 import inventory_service_pb2 as inventory_pb
from agora.notifications.v1 import notification_pb2
from agora.notifications.v1 import notification_service_pb2 as notifications_pb
from agora.orders.v1 import order_pb2
from agora.orders.v1 import order_service_pb2 as orders_pb
from agora.payments.v1 import payment_service_pb2 as payments_pb
from agora_sdk import (
    IdentityClient,
    NotificationsClient,
    OrdersClient,
    PaymentsClient,
    PermissionDenied,
    Unauthenticated,
)
from identity.adapters.tokens import JwtTokenSigner
from identity.domain.model import ADMIN, CUSTOMER, AccessToken
from tests.support.processes import REPO, clean_environment
from tests.support.shop import APPROVED_CARD, CALL_TIMEOUT_S, Shop, ShopClients, running_shop

#: The password :meth:`ShopClients.sign_up` gives every user.
PASSWORD = "correct horse battery staple"
#: Bound on the operator command and on waiting for a checkout's notifications.
WAIT_S = 60.0


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(tmp_path_factory.mktemp("access"), with_notifications=True) as shop:
        yield shop


@pytest.fixture
async def clients(shop: Shop) -> AsyncIterator[ShopClients]:
    async with shop.clients() as clients:
        await clients.stock({"tea": 100})
        yield clients


@dataclass
class Customer:
    """A user signed up and logged in through identity, with clients that carry their token."""

    name: str
    token: str
    orders: OrdersClient
    payments: PaymentsClient
    notifications: NotificationsClient
    identity: IdentityClient

    async def place(self, user: str | None = None) -> order_pb2.Order:
        """Places an order of one tea, for this customer unless ``user`` names another."""
        return await self.orders.place_order(
            orders_pb.PlaceOrderRequest(
                user=user or self.name,
                line_items=[orders_pb.LineItem(product="products/tea", quantity=1)],
                payment_token=APPROVED_CARD,
                request_id=str(uuid.uuid4()),
            ),
            timeout=CALL_TIMEOUT_S,
        )

    async def get_order(self, name: str) -> order_pb2.Order:
        request = orders_pb.GetOrderRequest(name=name)
        return await self.orders.get_order(request, timeout=CALL_TIMEOUT_S)

    async def orders_of(self, user: str) -> list[str]:
        pager = self.orders.list_orders(
            orders_pb.ListOrdersRequest(user=user), timeout=CALL_TIMEOUT_S
        )
        return [order.name async for order in pager]

    async def payments_seen(self, *, order: str = "", user: str = "") -> list[str]:
        pager = self.payments.list_payments(
            payments_pb.ListPaymentsRequest(order=order, user=user), timeout=CALL_TIMEOUT_S
        )
        return [payment.name async for payment in pager]

    async def notifications_seen(self, recipient: str = "") -> list[notification_pb2.Notification]:
        pager = self.notifications.list_notifications(
            notifications_pb.ListNotificationsRequest(recipient=recipient), timeout=CALL_TIMEOUT_S
        )
        return [notification async for notification in pager]


def unique_email(who: str) -> str:
    return f"{who}-{uuid.uuid4().hex[:8]}@example.com"


async def customer(clients: ShopClients, email: str, *, signed_up: bool = False) -> Customer:
    """Signs ``email`` up (unless already done) and logs in."""
    if not signed_up:
        await clients.sign_up(email)
    session = await clients.identity.login(
        identity_pb.LoginRequest(email=email, password=PASSWORD), timeout=CALL_TIMEOUT_S
    )
    token = session.access_token
    return Customer(
        session.user,
        token,
        clients.orders.with_token(token),
        clients.payments.with_token(token),
        clients.notifications.with_token(token),
        clients.identity.with_token(token),
    )


async def admin(shop: Shop, clients: ShopClients) -> Customer:
    """A user made admin by the operator, logged in after the grant."""
    email = unique_email("root")
    await clients.sign_up(email)
    granted = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "identity", "grant-role", email, ADMIN],
        cwd=REPO,
        # The identity process's database: its data directory in the shop.
        env=clean_environment({"AGORA_DATA_DIR": str(shop.data_dir / "identity")}),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert granted.returncode == 0, granted.stderr
    return await customer(clients, email, signed_up=True)


def not_owner(caught: pytest.ExceptionInfo[PermissionDenied], domain: str) -> dict[str, str]:
    """The metadata of a ``NOT_RESOURCE_OWNER`` refusal by ``domain``."""
    assert (caught.value.reason, caught.value.domain) == ("NOT_RESOURCE_OWNER", domain)
    return caught.value.metadata


async def test_customers_place_read_and_list_only_their_own_orders(
    shop: Shop, clients: ShopClients
) -> None:
    ada = await customer(clients, unique_email("ada"))
    bob = await customer(clients, unique_email("bob"))

    order = await ada.place()
    assert order.user == ada.name
    assert (await ada.get_order(order.name)).name == order.name
    with pytest.raises(PermissionDenied) as caught:
        await ada.place(user=bob.name)
    assert not_owner(caught, "orders.agora") == {"user": bob.name}

    with pytest.raises(PermissionDenied) as caught:
        await bob.get_order(order.name)
    assert not_owner(caught, "orders.agora") == {"order": order.name}
    assert await bob.orders_of(bob.name) == []
    with pytest.raises(PermissionDenied) as caught:
        await bob.orders_of(ada.name)
    assert not_owner(caught, "orders.agora") == {"user": ada.name}
    with pytest.raises(PermissionDenied) as caught:
        await bob.orders.cancel_order(
            orders_pb.CancelOrderRequest(name=order.name), timeout=CALL_TIMEOUT_S
        )
    assert not_owner(caught, "orders.agora") == {"order": order.name}

    root = await admin(shop, clients)
    assert (await root.get_order(order.name)).user == ada.name
    assert await root.orders_of(ada.name) == [order.name]


async def test_the_contracts_access_rules_hold_for_customers(clients: ShopClients) -> None:
    ada = await customer(clients, unique_email("ada"))
    inventory = clients.inventory.with_token(ada.token)
    with pytest.raises(PermissionDenied) as caught:
        await inventory.set_stock(
            inventory_pb.SetStockRequest(name="products/tea/stock", on_hand=1_000),
            timeout=CALL_TIMEOUT_S,
        )
    assert (caught.value.reason, caught.value.domain) == ("MISSING_ROLE", "inventory.agora")
    with pytest.raises(PermissionDenied) as caught:
        await inventory.reserve_stock(
            inventory_pb.ReserveStockRequest(
                order="orders/o1",
                items=[inventory_pb2.ReservationItem(product="products/tea", quantity=1)],
                request_id=str(uuid.uuid4()),
            ),
            timeout=CALL_TIMEOUT_S,
        )
    assert (caught.value.reason, caught.value.domain) == ("INTERNAL_ONLY", "inventory.agora")
    assert (await clients.stock_of("tea")).reserved == 0

    # A token that is not one of identity's is refused, not taken for the local operator.
    order = await ada.place()
    signer = JwtTokenSigner()
    now = datetime.now(UTC)
    forged = signer.sign(
        AccessToken(
            ada.name.removeprefix("users/"), (CUSTOMER, ADMIN), now, now + timedelta(minutes=5)
        ),
        signer.new_key(now),
    )
    for token, reason in [("garbage", "ACCESS_TOKEN_INVALID"), (forged, "ACCESS_TOKEN_INVALID")]:
        with pytest.raises(Unauthenticated) as refused:
            await clients.orders.with_token(token).get_order(
                orders_pb.GetOrderRequest(name=order.name), timeout=CALL_TIMEOUT_S
            )
        assert (refused.value.reason, refused.value.domain) == (reason, "orders.agora")


async def test_customers_see_only_their_own_payments_notifications_and_user(
    shop: Shop, clients: ShopClients
) -> None:
    ada = await customer(clients, unique_email("ada"))
    bob = await customer(clients, unique_email("bob"))
    completed = await clients.wait_final((await ada.place()).name)
    assert completed.state == order_pb2.ORDER_STATE_COMPLETED

    # Payments: Ada's own, found with or without naming her order; none of them for Bob.
    assert await ada.payments_seen() == [completed.payment]
    assert await ada.payments_seen(order=completed.name) == [completed.payment]
    assert await bob.payments_seen() == []
    assert await bob.payments_seen(order=completed.name) == []
    with pytest.raises(PermissionDenied) as caught:
        await bob.payments.get_payment(
            payments_pb.GetPaymentRequest(name=completed.payment), timeout=CALL_TIMEOUT_S
        )
    assert not_owner(caught, "payments.agora") == {"payment": completed.payment}
    with pytest.raises(PermissionDenied) as caught:
        await bob.payments_seen(user=ada.name)
    assert not_owner(caught, "payments.agora") == {"user": ada.name}

    # Notifications: Ada's welcome and confirmation reach her list, not Bob's.
    async with asyncio.timeout(WAIT_S):
        while True:
            mine = await ada.notifications_seen()
            if len(mine) >= 2:
                break
            await asyncio.sleep(0.1)
    assert {notification.recipient for notification in mine} == {ada.name}
    theirs = await bob.notifications_seen()
    assert {notification.recipient for notification in theirs} <= {bob.name}
    with pytest.raises(PermissionDenied) as caught:
        await bob.notifications.get_notification(
            notifications_pb.GetNotificationRequest(name=mine[0].name), timeout=CALL_TIMEOUT_S
        )
    assert not_owner(caught, "notifications.agora") == {"notification": mine[0].name}
    with pytest.raises(PermissionDenied) as caught:
        await bob.notifications_seen(recipient=ada.name)
    assert not_owner(caught, "notifications.agora") == {"recipient": ada.name}

    # Identity: each reads themselves; an admin reads anyone.
    request = identity_pb.GetUserRequest(name=ada.name)
    assert (await ada.identity.get_user(request, timeout=CALL_TIMEOUT_S)).name == ada.name
    with pytest.raises(PermissionDenied) as caught:
        await bob.identity.get_user(request, timeout=CALL_TIMEOUT_S)
    assert not_owner(caught, "identity.agora") == {"user": ada.name}
    root = await admin(shop, clients)
    assert (await root.identity.get_user(request, timeout=CALL_TIMEOUT_S)).name == ada.name
    assert completed.payment in await root.payments_seen(user=ada.name)
