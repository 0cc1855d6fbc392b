"""The contract's ``buf.validate`` rules at work over a real socket, before any handler runs.

Each test serves a made-up contract with rules (:mod:`tests.support.validated_contract`)
through ``runtime.server.running`` on a free loopback port, and calls it with a real
channel. The handler counts its calls.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from runtime.config import ServerSettings, load_server_settings
from runtime.server import Service, running
from runtime.validation import ValidationRulesError
from tests.support.processes import free_port
from tests.support.status import bad_requests, error_info
from tests.support.validated_contract import ValidatedContract, validated_contract

DOMAIN = "testing.agora"
PATIENCE = 10.0


def _service(contract: ValidatedContract, calls: list[Message]) -> Service:
    """Serves ``PlaceOrder`` of ``contract``: records the request, returns Empty."""

    async def place_order(request: Message, context: object) -> empty_pb2.Empty:
        calls.append(request)
        return empty_pb2.Empty()

    handler = grpc.unary_unary_rpc_method_handler(
        place_order,
        request_deserializer=contract.request().FromString,
        response_serializer=empty_pb2.Empty.SerializeToString,
    )

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(contract.service, {"PlaceOrder": handler})]
        )

    async def ready() -> bool:
        return True

    return Service(
        name="testing",
        domain=DOMAIN,
        service_names=[contract.service],
        register=register,
        readiness=ready,
    )


def _settings(port: int = 0) -> ServerSettings:
    return load_server_settings(
        "catalog",
        environ={"AGORA_HOST": "127.0.0.1", "AGORA_PORT": str(port), "AGORA_GRACE_SECONDS": "1"},
    )


def _place_order(channel: grpc.aio.Channel, contract: ValidatedContract) -> Callable[..., Any]:
    return channel.unary_unary(
        contract.method,
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=empty_pb2.Empty.FromString,
    )


async def test_a_request_that_breaks_rules_is_invalid_argument_and_never_reaches_the_handler() -> (
    None
):
    shop = validated_contract("Shop")
    calls: list[Message] = []
    bad: Any = shop.request(
        customer="",
        line_items=[shop.line(sku="assam", quantity=1), shop.line(sku="", quantity=1)],
        main_line=shop.line(sku="puerh", quantity=0),
        gift_note="for Grace",
    )
    bad.lines_by_label["gift"].CopyFrom(shop.line(sku="sencha", quantity=-1))
    good = shop.request(customer="ada", line_items=[shop.line(sku="assam", quantity=2)])

    async with (
        running(_service(shop, calls), _settings()) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        call = _place_order(channel, shop)
        with pytest.raises(grpc.aio.AioRpcError) as rejected:
            await call(bad, timeout=PATIENCE)
        assert calls == []
        assert await call(good, timeout=PATIENCE) == empty_pb2.Empty()

    error = rejected.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", DOMAIN)
    [bad_request] = bad_requests(error)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("", "a gift note needs `gift` set"),
        ("customer", "is required"),
        ("line_items[1].sku", "must be at least 1 characters"),
        ('lines_by_label["gift"].quantity', "must be greater than 0"),
        ("main_line.quantity", "must be greater than 0"),
    ]
    assert error.details() == (
        "invalid request: check the request, customer, line_items[1].sku, "
        'lines_by_label["gift"].quantity, main_line.quantity'
    )
    assert calls == [good]


async def test_a_service_whose_rules_do_not_compile_never_listens() -> None:
    broken = validated_contract("Broken", rule="this.gift_note +")
    port = free_port()
    with pytest.raises(ValidationRulesError, match=broken.request_type.full_name):
        async with running(_service(broken, []), _settings(port)):
            pytest.fail("the service started")
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass
