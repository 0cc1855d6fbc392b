"""The Python SDK against real services served in-process on loopback, each on SQLite.

Every test goes through ``agora_sdk`` only: its clients, its pager and its error classes.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from google.type import money_pb2

import agora_sdk
from agora.catalog.v1 import catalog_pb2
from agora.catalog.v1 import catalog_service_pb2 as catalog_pb
from agora.identity.v1 import identity_service_pb2 as identity_pb
from agora.inventory.v1 import inventory_pb2
from agora.inventory.v1 import inventory_service_pb2 as inventory_pb
from agora.payments.v1 import payment_pb2
from agora.payments.v1 import payment_service_pb2 as payments_pb
from catalog.bootstrap import build as build_catalog
from identity.adapters.passwords import Argon2Cost, Argon2PasswordHasher
from identity.bootstrap import build as build_identity
from identity.config import IdentitySettings
from inventory.bootstrap import build as build_inventory
from inventory.config import InventorySettings
from payments.bootstrap import build as build_payments
from payments.config import PaymentsSettings
from runtime.config import ServerSettings, load_server_settings
from runtime.server import Service, running

PASSWORD = "correct horse battery"
#: Cheap argon2id: the same algorithm and format, a fraction of the time.
CHEAP = Argon2Cost(time_cost=1, memory_kib=8 * 1024, parallelism=1)
APPROVED_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
SILENT_CARD = "4000 0000 0000 0069"  # the processor never answers
#: How long payments waits for the silent card's processor, far beyond the client's timeout.
PROCESSOR_TIMEOUT = 3.0
CLIENT_TIMEOUT = 0.3
TEAS = ["assam", "ceylon", "darjeeling", "earl-grey", "genmaicha", "hojicha", "lapsang"]


@contextlib.asynccontextmanager
async def serving(
    name: str,
    data_dir: Path,
    build: Callable[[ServerSettings], Awaitable[Service]],
    **environ: str,
) -> AsyncIterator[str]:
    """Serves what ``build`` makes on a free port and a fresh SQLite file; yields the address.

    ``environ`` adds settings (``AGORA_AUTH_TRUST_LOOPBACK="false"``: every rule applies).
    """
    settings = load_server_settings(
        name,
        environ={
            "AGORA_PORT": "0",
            "AGORA_DATA_DIR": str(data_dir),
            "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / name}.db",
            "AGORA_GRACE_SECONDS": "1",
            **environ,
        },
    )
    async with running(await build(settings), settings) as port:
        yield f"127.0.0.1:{port}"


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[agora_sdk.CatalogClient]:
    async with (
        serving("catalog", tmp_path, build_catalog) as target,
        agora_sdk.CatalogClient(target) as client,
    ):
        yield client


@pytest.fixture
async def identity_target(tmp_path: Path) -> AsyncIterator[str]:
    hasher = Argon2PasswordHasher(CHEAP, workers=2)

    async def build(settings: ServerSettings) -> Service:
        return await build_identity(settings, identity=IdentitySettings(), hasher=hasher)

    try:
        async with serving(
            "identity", tmp_path, build, AGORA_AUTH_TRUST_LOOPBACK="false"
        ) as target:
            yield target
    finally:
        await hasher.close()


@pytest.fixture
async def payments(tmp_path: Path) -> AsyncIterator[agora_sdk.PaymentsClient]:
    async def build(settings: ServerSettings) -> Service:
        own = PaymentsSettings(processor_timeout=PROCESSOR_TIMEOUT)
        return await build_payments(settings, payments_settings=own)

    async with (
        serving("payments", tmp_path, build) as target,
        agora_sdk.PaymentsClient(target) as client,
    ):
        yield client


def eur(units: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units)


async def stock_the_tea_shelf(catalog: agora_sdk.CatalogClient) -> None:
    await catalog.create_category(
        catalog_pb.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Tea"), category_id="tea"
        )
    )
    await catalog.create_category(
        catalog_pb.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Coffee"), category_id="coffee"
        )
    )
    await catalog.create_product(
        catalog_pb.CreateProductRequest(
            product=catalog_pb2.Product(
                display_name="Arabica", category="categories/coffee", price=eur(9)
            ),
            product_id="arabica",
        )
    )
    for units, tea in enumerate(TEAS, start=3):
        product = await catalog.create_product(
            catalog_pb.CreateProductRequest(
                product=catalog_pb2.Product(
                    display_name=tea.title(), category="categories/tea", price=eur(units)
                ),
                product_id=tea,
            )
        )
        assert isinstance(product, catalog_pb2.Product)
        assert product.name == f"products/{tea}"


async def test_the_pager_follows_page_tokens_through_every_page(
    catalog: agora_sdk.CatalogClient,
) -> None:
    await stock_the_tea_shelf(catalog)
    request = catalog_pb.ListProductsRequest(category="categories/tea", page_size=3)
    teas = catalog.list_products(request)

    assert [p.name async for p in teas] == [f"products/{tea}" for tea in TEAS]
    assert [[p.name for p in page] async for page in teas.pages()] == [
        ["products/assam", "products/ceylon", "products/darjeeling"],
        ["products/earl-grey", "products/genmaicha", "products/hojicha"],
        ["products/lapsang"],
    ]
    assert request.page_token == "", "the caller's request is left as it was"
    everything = catalog.list_products(catalog_pb.ListProductsRequest(page_size=2))
    assert len([p async for p in everything]) == len(TEAS) + 1
    got = await catalog.get_product(catalog_pb.GetProductRequest(name="products/hojicha"))
    assert (got.display_name, got.price) == ("Hojicha", eur(8))


async def test_a_missing_product_raises_not_found_with_the_servers_reason(
    catalog: agora_sdk.CatalogClient,
) -> None:
    with pytest.raises(agora_sdk.NotFound) as caught:
        await catalog.get_product(catalog_pb.GetProductRequest(name="products/matcha"))
    assert (caught.value.reason, caught.value.domain) == ("PRODUCT_NOT_FOUND", "catalog.agora")
    assert caught.value.metadata["product"] == "products/matcha"


async def test_a_malformed_request_lists_the_offending_fields(
    catalog: agora_sdk.CatalogClient,
) -> None:
    with pytest.raises(agora_sdk.InvalidArgument) as caught:
        await catalog.create_product(catalog_pb.CreateProductRequest(product_id="sencha"))
    assert caught.value.violations, "a BadRequest names each bad field"


async def test_the_bearer_token_reaches_the_server(identity_target: str) -> None:
    async with agora_sdk.IdentityClient(identity_target) as identity:
        user = await identity.sign_up(
            identity_pb.SignUpRequest(
                email="ada@example.com",
                password=PASSWORD,
                display_name="Ada Lovelace",
                request_id=str(uuid.uuid4()),
            )
        )
        session = await identity.login(
            identity_pb.LoginRequest(email="ada@example.com", password=PASSWORD)
        )
        assert session.user == user.name

        myself = await identity.with_token(session.access_token).get_user(
            identity_pb.GetUserRequest(name=user.name)
        )
        assert (myself.name, myself.display_name) == (user.name, "Ada Lovelace")

        with pytest.raises(agora_sdk.Unauthenticated):
            await identity.get_user(identity_pb.GetUserRequest(name=user.name))
        with pytest.raises(agora_sdk.Unauthenticated):
            await identity.with_token("not-a-token").get_user(
                identity_pb.GetUserRequest(name=user.name)
            )


async def test_stock_is_reserved_and_released_through_the_inventory_client(
    tmp_path: Path,
) -> None:
    factory = agora_sdk.ClientFactory()
    try:
        async with serving("catalog", tmp_path, build_catalog) as catalog_target:
            await stock_the_tea_shelf(agora_sdk.CatalogClient(catalog_target, factory=factory))

            async def build(settings: ServerSettings) -> Service:
                options = InventorySettings(
                    sweep_interval=1.0, sweep_batch=100, catalog_address=catalog_target
                )
                return await build_inventory(settings, options=options)

            async with serving("inventory", tmp_path, build) as target:
                inventory = agora_sdk.InventoryClient(target, factory=factory)
                stock = await inventory.set_stock(
                    inventory_pb.SetStockRequest(name="products/assam/stock", on_hand=10)
                )
                assert (stock.name, stock.on_hand) == ("products/assam/stock", 10)
                reservation = await inventory.reserve_stock(
                    inventory_pb.ReserveStockRequest(
                        order="orders/o-1",
                        items=[inventory_pb2.ReservationItem(product="products/assam", quantity=4)],
                        request_id=str(uuid.uuid4()),
                    )
                )
                assert reservation.state == inventory_pb2.RESERVATION_STATE_ACTIVE
                got = await inventory.get_stock(
                    inventory_pb.GetStockRequest(name="products/assam/stock")
                )
                assert (got.on_hand, got.reserved) == (10, 4)
                released = await inventory.release_reservation(
                    inventory_pb.ReleaseReservationRequest(
                        name=reservation.name, request_id=str(uuid.uuid4())
                    )
                )
                assert released.state == inventory_pb2.RESERVATION_STATE_RELEASED
                with pytest.raises(agora_sdk.FailedPrecondition):
                    await inventory.reserve_stock(
                        inventory_pb.ReserveStockRequest(
                            order="orders/o-2",
                            items=[
                                inventory_pb2.ReservationItem(product="products/assam", quantity=11)
                            ],
                        )
                    )
    finally:
        await factory.close()


def authorize(card: str) -> payments_pb.AuthorizePaymentRequest:
    return payments_pb.AuthorizePaymentRequest(
        order="orders/o-1",
        user="users/ada",
        amount=eur(42),
        payment_token=card,
        request_id=str(uuid.uuid4()),
    )


async def test_an_approved_payment_is_authorized_and_listed(
    payments: agora_sdk.PaymentsClient,
) -> None:
    payment = await payments.authorize_payment(authorize(APPROVED_CARD))
    assert payment.state == payment_pb2.PAYMENT_STATE_AUTHORIZED
    listed = payments.list_payments(payments_pb.ListPaymentsRequest(order="orders/o-1"))
    assert [p.name async for p in listed] == [payment.name]


async def test_a_declined_card_raises_failed_precondition(
    payments: agora_sdk.PaymentsClient,
) -> None:
    with pytest.raises(agora_sdk.FailedPrecondition) as caught:
        await payments.authorize_payment(authorize(DECLINED_CARD))
    assert (caught.value.reason, caught.value.domain) == ("PAYMENT_DECLINED", "payments.agora")


async def test_the_client_timeout_ends_a_call_the_server_is_still_working_on(
    payments: agora_sdk.PaymentsClient,
) -> None:
    started = time.monotonic()
    with pytest.raises(agora_sdk.DeadlineExceeded):
        await payments.authorize_payment(authorize(SILENT_CARD), timeout=CLIENT_TIMEOUT)
    elapsed = time.monotonic() - started
    assert CLIENT_TIMEOUT <= elapsed < PROCESSOR_TIMEOUT / 2


async def test_clients_on_a_shared_factory_leave_its_channels_open(tmp_path: Path) -> None:
    factory = agora_sdk.ClientFactory()
    try:
        async with serving("catalog", tmp_path, build_catalog) as target:
            async with agora_sdk.CatalogClient(target, factory=factory) as first:
                await stock_the_tea_shelf(first)
            second = agora_sdk.CatalogClient(target, factory=factory)
            category = await second.get_category(
                catalog_pb.GetCategoryRequest(name="categories/tea")
            )
            assert category.display_name == "Tea"
            assert [
                c.name
                async for c in second.list_categories(catalog_pb.ListCategoriesRequest(page_size=1))
            ] == [
                "categories/coffee",
                "categories/tea",
            ]
    finally:
        await factory.close()


async def test_a_client_closes_the_channels_it_made(tmp_path: Path) -> None:
    async with serving("catalog", tmp_path, build_catalog) as target:
        async with agora_sdk.CatalogClient(target) as catalog:
            await stock_the_tea_shelf(catalog)
        with pytest.raises(grpc.aio.UsageError):
            await catalog.get_category(catalog_pb.GetCategoryRequest(name="categories/tea"))
