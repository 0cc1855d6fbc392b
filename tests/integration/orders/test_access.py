"""Who may place, read, list and cancel which orders, over a real socket.

Users act on their own orders only; admins and other Agora services act on everyone's.
Orders runs in-process with loopback trusted, as ``make run`` has it: a call with an
access token is the user the token names (tokens in identity's exact format, signed by a
key the service is handed instead of identity's), and a call without one is the local
operator, which counts as another Agora service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from agora.orders.v1 import order_pb2
from agora.orders.v1 import order_service_pb2 as pb
from identity.domain.model import ADMIN, CUSTOMER
from tests.integration.orders.test_servicer import CARD, Shop, open_shop
from tests.support.status import error_info
from tests.support.tokens import Metadata, Tokens

ADA, BOB = "users/ada", "users/bob"


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[Shop, Tokens]]:
    tokens = Tokens()
    async with open_shop(
        f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}", tmp_path, jwks=tokens.jwks
    ) as shop:
        yield shop, tokens


def callers(tokens: Tokens) -> dict[str, Metadata]:
    """The metadata of each kind of caller's calls; the service (the local operator) sends none."""
    return {
        "ada": tokens.of(ADA, CUSTOMER),
        "bob": tokens.of(BOB, CUSTOMER),
        "admin": tokens.of("users/root", CUSTOMER, ADMIN),
        "service": (),
    }


async def place(shop: Shop, metadata: Metadata, user: str = ADA) -> order_pb2.Order:
    request = pb.PlaceOrderRequest(
        user=user,
        line_items=[pb.LineItem(product="products/assam", quantity=1)],
        payment_token=CARD,
        request_id=str(uuid.uuid4()),
    )
    return (await shop.orders.PlaceOrder(request, metadata=metadata)).order


def refusal(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[object, ...]:
    info = error_info(caught.value)
    return caught.value.code(), info.reason, info.domain, dict(info.metadata)


def not_owner(**metadata: str) -> tuple[object, ...]:
    return grpc.StatusCode.PERMISSION_DENIED, "NOT_RESOURCE_OWNER", "orders.agora", metadata


async def test_a_user_places_orders_for_themselves_and_no_one_else(
    shop: tuple[Shop, Tokens],
) -> None:
    served, tokens = shop
    who = callers(tokens)
    assert (await place(served, who["ada"])).user == ADA
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await place(served, who["ada"], user=BOB)
    assert refusal(caught) == not_owner(user=BOB)
    # Admins and services place orders for any user.
    assert (await place(served, who["admin"], user=BOB)).user == BOB
    assert (await place(served, who["service"], user=BOB)).user == BOB


async def test_a_user_reads_their_own_orders_and_no_one_elses(shop: tuple[Shop, Tokens]) -> None:
    served, tokens = shop
    who = callers(tokens)
    order = await place(served, who["ada"])
    for caller in ("ada", "admin", "service"):
        got = await served.orders.GetOrder(
            pb.GetOrderRequest(name=order.name), metadata=who[caller]
        )
        assert got.order.name == order.name, caller
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.orders.GetOrder(pb.GetOrderRequest(name=order.name), metadata=who["bob"])
    assert refusal(caught) == not_owner(order=order.name)

    # Permission before existence (AIP-211): to a user, a missing order is just not theirs;
    # only callers who may see every order learn that it does not exist.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.orders.GetOrder(pb.GetOrderRequest(name="orders/nope"), metadata=who["bob"])
    assert refusal(caught) == not_owner(order="orders/nope")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.orders.GetOrder(pb.GetOrderRequest(name="orders/nope"), metadata=who["admin"])
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_user_lists_their_own_orders_and_no_one_elses(shop: tuple[Shop, Tokens]) -> None:
    served, tokens = shop
    who = callers(tokens)
    order = await place(served, who["ada"])

    async def listed(user: str, caller: str) -> list[str]:
        page = await served.orders.ListOrders(pb.ListOrdersRequest(user=user), metadata=who[caller])
        return [found.name for found in page.orders]

    assert await listed(ADA, "ada") == [order.name]
    assert await listed(BOB, "bob") == []
    assert await listed(ADA, "admin") == await listed(ADA, "service") == [order.name]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await listed(ADA, "bob")
    assert refusal(caught) == not_owner(user=ADA)
    # The user stays required: a customer too must name themselves.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await listed("", "ada")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_user_cancels_their_own_orders_and_no_one_elses(
    shop: tuple[Shop, Tokens],
) -> None:
    served, tokens = shop
    who = callers(tokens)
    first, second = await place(served, who["ada"]), await place(served, who["ada"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.orders.CancelOrder(pb.CancelOrderRequest(name=first.name), metadata=who["bob"])
    assert refusal(caught) == not_owner(order=first.name)
    untouched = await served.orders.GetOrder(pb.GetOrderRequest(name=first.name))
    assert untouched.order.cancellation_reason == order_pb2.CANCELLATION_REASON_UNSPECIFIED

    mine = await served.orders.CancelOrder(
        pb.CancelOrderRequest(name=first.name), metadata=who["ada"]
    )
    theirs = await served.orders.CancelOrder(
        pb.CancelOrderRequest(name=second.name), metadata=who["admin"]
    )
    for cancelled in (mine.order, theirs.order):
        assert cancelled.cancellation_reason == order_pb2.CANCELLATION_REASON_CUSTOMER_REQUESTED
