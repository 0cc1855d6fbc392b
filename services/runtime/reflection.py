"""Server reflection under both package names, so grpcurl and newer tools work without protos.

``grpcio-reflection`` only serves ``grpc.reflection.v1alpha``; tools increasingly ask for
``grpc.reflection.v1`` first. The two protocols have identical messages in different
packages, so the same servicer answers both. It also resolves method names
(``grpcurl describe pkg.Service.Method``), which the upb descriptor pool cannot, and
fills in the JSON names that some bundled descriptors (``google.type.Money`` from the
googleapis wheel) lack, so grpcurl prints ``currencyCode`` like every other field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

# The asyncio servicer; ``reflection.aio`` re-exports this module, untyped.
from grpc_reflection.v1alpha._async import ReflectionServicer

V1_SERVICE = "grpc.reflection.v1.ServerReflection"


class _Reflection(ReflectionServicer):
    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        response = super()._file_containing_symbol(request, fully_qualified_name)  # type: ignore[no-untyped-call]
        if response.HasField("error_response") and "." in fully_qualified_name:
            service_name, method_name = fully_qualified_name.rsplit(".", 1)
            try:
                service = self._pool.FindServiceByName(service_name)
            except KeyError:
                return response
            if method_name in service.methods_by_name:
                response = super()._file_containing_symbol(request, service_name)  # type: ignore[no-untyped-call]
        return _with_json_names(response)

    def _file_by_filename(self, request: Any, filename: str) -> Any:
        return _with_json_names(super()._file_by_filename(request, filename))  # type: ignore[no-untyped-call]

    def _file_containing_extension(
        self, request: Any, containing_type: str, extension_number: int
    ) -> Any:
        return _with_json_names(
            super()._file_containing_extension(request, containing_type, extension_number)  # type: ignore[no-untyped-call]
        )


def _with_json_names(response: Any) -> Any:
    if not response.HasField("file_descriptor_response"):
        return response
    files = response.file_descriptor_response.file_descriptor_proto
    patched = []
    for raw in files:
        file = descriptor_pb2.FileDescriptorProto.FromString(raw)
        for message in _messages(file.message_type):
            for field in message.field:
                if not field.HasField("json_name"):
                    field.json_name = _json_name(field.name)
        patched.append(file.SerializeToString())
    del files[:]
    files.extend(patched)
    return response


def _messages(
    messages: Iterable[descriptor_pb2.DescriptorProto],
) -> Iterable[descriptor_pb2.DescriptorProto]:
    for message in messages:
        yield message
        yield from _messages(message.nested_type)


def _json_name(field_name: str) -> str:
    """protoc's default JSON name: drop each underscore and capitalize the next letter."""
    head, *rest = field_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def enable_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Serves reflection for ``service_names`` (plus reflection itself) on ``server``."""
    names = [*service_names, reflection.SERVICE_NAME, V1_SERVICE]
    servicer = _Reflection(names)  # type: ignore[no-untyped-call]
    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(reflection.SERVICE_NAME, handlers),
            grpc.method_handlers_generic_handler(V1_SERVICE, handlers),
        ]
    )
