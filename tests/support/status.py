"""Reading the ``google.rpc.Status`` details of a failed call, for assertions."""

from __future__ import annotations

from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The ``google.rpc.Status`` a failed call carries in its trailers."""
    # grpc_status's stubs say grpc.Call; an aio failure is not one, yet has the same methods.
    status: status_pb2.Status | None = rpc_status.from_call(cast(grpc.Call, error))
    assert status is not None, "the call carries no google.rpc.Status"
    return status


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The one ``ErrorInfo`` of a failed call."""
    found = []
    for detail in rich_status(error).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            found.append(info)
    assert len(found) == 1, f"expected exactly one ErrorInfo, found {len(found)}"
    return found[0]


def bad_requests(error: grpc.aio.AioRpcError) -> list[error_details_pb2.BadRequest]:
    """Every ``BadRequest`` of a failed call."""
    found = []
    for detail in rich_status(error).details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.append(bad)
    return found


def field_violations(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields named by the call's ``BadRequest``, in order."""
    return [v.field for bad in bad_requests(error) for v in bad.field_violations]
