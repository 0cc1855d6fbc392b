"""The benchmark's baseline: a bare ``grpc.aio`` server that answers each call with its request.

No protobuf, no interceptors, no logging per call: one process, one generic handler that
hands the request bytes back unchanged. Whatever the catalog costs beyond this is the
cost of the service itself (runtime, protobuf, database)::

    .venv/bin/python bench/echo_server.py --port 0

It prints ``listening on HOST:PORT`` once it accepts calls and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:  # the stubs make these generic; the runtime classes are not
    GenericRpcHandler = grpc.GenericRpcHandler[bytes, bytes]
    RpcMethodHandler = grpc.RpcMethodHandler[bytes, bytes]
else:
    GenericRpcHandler = grpc.GenericRpcHandler
    RpcMethodHandler = grpc.RpcMethodHandler

#: The same message limit the runtime sets, so both servers accept the same bodies.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


async def _echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


class EchoHandler(GenericRpcHandler):
    """Serves every method name as a unary call that returns its raw request bytes."""

    def __init__(self) -> None:
        # No serializers: the behaviour receives and returns bytes as they are on the wire.
        self._handler = grpc.unary_unary_rpc_method_handler(_echo)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> RpcMethodHandler:
        return self._handler


async def serve(host: str, port: int) -> None:
    """Serves the echo handler on ``host:port`` until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers((EchoHandler(),))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise SystemExit(f"echo_server: cannot listen on {host}:{port}")
    await server.start()
    print(f"listening on {host}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
