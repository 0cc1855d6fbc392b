"""The contract's policy at work over real sockets: deny by default, default deadlines.

Each test serves a made-up contract (:mod:`tests.support.policy_contract`) through the
runtime on a free loopback port and calls it with a real channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import empty_pb2

from agora.api.v1 import policy_pb2
from runtime import errors
from runtime.clients import ClientFactory
from runtime.config import ServerSettings, load_server_settings
from runtime.policy import PolicyError, services_named
from runtime.server import Service, run, running
from tests.support.policy_contract import contract, policy
from tests.support.processes import free_port
from tests.support.status import error_info

#: How long the made-up method takes, and the default deadline its contract declares.
WORK_S = 0.6
DEFAULT_DEADLINE_S = 0.2
#: Upper bound for any single wait; reaching it means the behaviour is broken.
PATIENCE = 10.0


def _service(full_name: str) -> Service:
    """Serves every method of ``full_name``: each sleeps ``WORK_S``, returns Empty."""

    async def work(request: empty_pb2.Empty, context: object) -> empty_pb2.Empty:
        await asyncio.sleep(WORK_S)
        return empty_pb2.Empty()

    [descriptor] = services_named([full_name])
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            work,
            request_deserializer=empty_pb2.Empty.FromString,
            response_serializer=empty_pb2.Empty.SerializeToString,
        )
        for method in descriptor.methods
    }

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(full_name, handlers)])

    async def ready() -> bool:
        return True

    return Service(
        name="testing",
        domain="testing.agora",
        service_names=[full_name],
        register=register,
        readiness=ready,
    )


def _settings(port: int = 0) -> ServerSettings:
    return load_server_settings(
        "catalog",
        environ={"AGORA_HOST": "127.0.0.1", "AGORA_PORT": str(port), "AGORA_GRACE_SECONDS": "1"},
    )


@contextlib.asynccontextmanager
async def _serving(full_name: str) -> AsyncIterator[grpc.aio.Channel]:
    async with (
        running(_service(full_name), _settings()) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield channel


def _call(
    channel: grpc.aio.Channel, full_name: str
) -> grpc.aio.UnaryUnaryMultiCallable[empty_pb2.Empty, empty_pb2.Empty]:
    return channel.unary_unary(
        f"/{full_name}/Do",
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=empty_pb2.Empty.FromString,
    )


async def test_a_service_with_an_rpc_that_declares_no_access_rule_never_listens() -> None:
    undeclared = contract("Undeclared", None)
    port = free_port()
    with pytest.raises(PolicyError, match=f"/{undeclared}/Do: no access rule"):
        async with running(_service(undeclared), _settings(port)):
            pytest.fail("the service started")
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass


def test_python_m_service_exits_2_naming_the_undeclared_rpc(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    undeclared = contract("Undeclared", None)

    async def build(settings: ServerSettings) -> Service:
        return _service(undeclared)

    monkeypatch.setenv("AGORA_PORT", "0")
    with pytest.raises(SystemExit) as stopped:
        run("catalog", build)
    assert stopped.value.code == 2
    assert f"/{undeclared}/Do: no access rule" in capsys.readouterr().err


async def test_a_call_without_a_deadline_is_bounded_by_the_contracts_default() -> None:
    slow = contract("Slow", policy(policy_pb2.ACCESS_PUBLIC, deadline=DEFAULT_DEADLINE_S))
    async with _serving(slow) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as exceeded:
            await _call(channel, slow)(empty_pb2.Empty())  # no timeout: none on the wire
        assert exceeded.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        info = error_info(exceeded.value)
        assert info.reason == "DEFAULT_DEADLINE_EXCEEDED"
        assert info.metadata["default_deadline_seconds"] == "0.2"
        # A caller who says it will wait longer gets its answer.
        assert await _call(channel, slow)(empty_pb2.Empty(), timeout=PATIENCE) == empty_pb2.Empty()


async def test_a_client_applies_the_contracts_default_deadline_unless_told_otherwise() -> None:
    slow = contract("Slow", policy(policy_pb2.ACCESS_PUBLIC, deadline=DEFAULT_DEADLINE_S))
    [descriptor] = services_named([slow])
    async with running(_service(slow), _settings()) as port:
        target = f"127.0.0.1:{port}"
        contract_deadlines, patient = ClientFactory(), ClientFactory(default_timeout=PATIENCE)
        try:
            with pytest.raises(errors.DeadlineExceeded):
                await _call(contract_deadlines.channel(descriptor, target), slow)(empty_pb2.Empty())
            call = _call(patient.channel(descriptor, target), slow)
            assert await call(empty_pb2.Empty()) == empty_pb2.Empty()
        finally:
            await contract_deadlines.close()
            await patient.close()
