"""Server reflection under both package names, so grpcurl and newer tools work without protos.

``grpcio-reflection`` only serves ``grpc.reflection.v1alpha``; tools increasingly ask for
``grpc.reflection.v1`` first. The two protocols have identical messages in different
packages, so the same servicer answers both.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

# The asyncio servicer; ``reflection.aio`` re-exports this module, untyped.
from grpc_reflection.v1alpha._async import ReflectionServicer

V1_SERVICE = "grpc.reflection.v1.ServerReflection"


def enable_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Serves reflection for ``service_names`` (plus health and reflection itself) on ``server``."""
    names = [*service_names, reflection.SERVICE_NAME, V1_SERVICE]
    servicer = ReflectionServicer(names)  # type: ignore[no-untyped-call]
    reflection.enable_server_reflection(names, server)
    v1_handler = grpc.method_handlers_generic_handler(
        V1_SERVICE,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1_handler,))
