"""Conversions between :mod:`runtime.errors` and ``google.rpc.Status`` on the wire.

The server side packs an error into a status with ``ErrorInfo``, ``BadRequest`` and
``RetryInfo`` details; the client side unpacks a received status back into the same
error classes, so callers write ``except InsufficientStock`` rather than inspecting
``grpc.RpcError``.
"""

from __future__ import annotations

from typing import cast

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from runtime.errors import CATEGORY_BY_CODE, AgoraError, FieldViolation, InvalidArgument

_ERRORINFO = error_details_pb2.ErrorInfo.DESCRIPTOR.full_name
_BADREQUEST = error_details_pb2.BadRequest.DESCRIPTOR.full_name
_RETRYINFO = error_details_pb2.RetryInfo.DESCRIPTOR.full_name


#: The status travels in trailers, and a default gRPC client refuses trailers over 8 KiB
#: (reporting RESOURCE_EXHAUSTED instead of the real error). These bounds keep the largest
#: status, base64-encoded details and a percent-encoded message included, well below that.
MAX_VIOLATIONS = 10
MAX_FIELD_CHARS = 120
MAX_TEXT_CHARS = 160
MAX_MESSAGE_CHARS = 400
#: Metadata can list what the caller got wrong (every missing product of an order), so
#: its values may be longer than a description, within the same budget.
MAX_METADATA_CHARS = 2048


def to_rpc_status(error: AgoraError, domain: str) -> status_pb2.Status:
    """Builds the ``google.rpc.Status`` that reports ``error`` to a caller.

    Texts are shortened and at most :data:`MAX_VIOLATIONS` field violations are listed
    (``ErrorInfo.metadata["omitted_violations"]`` counts the rest), so every error reaches
    a client with default limits.
    """
    details: list[any_pb2.Any] = []
    metadata = {key: _shortened(value, MAX_METADATA_CHARS) for key, value in error.metadata.items()}
    violations = error.violations if isinstance(error, InvalidArgument) else []
    if len(violations) > MAX_VIOLATIONS:
        metadata["omitted_violations"] = str(len(violations) - MAX_VIOLATIONS)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=error.domain or domain, metadata=metadata
    )
    details.append(_pack(info))
    if violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=_shortened(v.field, MAX_FIELD_CHARS),
                    description=_shortened(v.description, MAX_TEXT_CHARS),
                )
                for v in violations[:MAX_VIOLATIONS]
            ]
        )
        details.append(_pack(bad_request))
    if error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    message = _shortened(error.message, MAX_MESSAGE_CHARS)
    return status_pb2.Status(code=error.code.value[0], message=message, details=details)


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_grpc_status(error: AgoraError, domain: str) -> grpc.Status:
    """Like :func:`to_rpc_status`, as the ``grpc.Status`` that ``context.abort`` takes apart."""
    return rpc_status.to_status(to_rpc_status(error, domain))


def from_rpc_error(error: grpc.RpcError) -> AgoraError:
    """Turns a failed call into the matching :class:`AgoraError` subclass, details included."""
    if not isinstance(error, grpc.aio.AioRpcError | grpc.Call):
        return CATEGORY_BY_CODE[grpc.StatusCode.UNKNOWN](str(error) or "unknown error")
    code = error.code()
    category = CATEGORY_BY_CODE.get(code, CATEGORY_BY_CODE[grpc.StatusCode.UNKNOWN])
    # AioRpcError has everything from_call reads, though the stubs only accept grpc.Call.
    status = rpc_status.from_call(cast(grpc.Call, error))
    return from_status_details(category, error.details() or code.name, status)


def from_status_details(
    category: type[AgoraError], message: str, status: status_pb2.Status | None
) -> AgoraError:
    """Builds an error of ``category`` from a message and the status's details, if any."""
    reason: str | None = None
    domain: str | None = None
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    retry_after: float | None = None
    for detail in status.details if status is not None else ():
        if detail.TypeName() == _ERRORINFO:
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.TypeName() == _BADREQUEST:
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif detail.TypeName() == _RETRYINFO:
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    if issubclass(category, InvalidArgument):
        return category(
            message, violations=violations, metadata=metadata, reason=reason, domain=domain
        )
    return category(
        message, metadata=metadata, reason=reason, domain=domain, retry_after=retry_after
    )


def _pack(
    message: error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.RetryInfo,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
