"""The error tree shared by every service, keyed by gRPC status code.

Domains raise subclasses of these categories; one server interceptor turns them into a
``google.rpc.Status`` with an ``ErrorInfo`` (and a ``BadRequest`` for invalid arguments),
and the client factory turns a peer's status back into the same classes. Names follow
``google.api_core.exceptions``::

    class ProductNotFound(NotFound):
        reason = "PRODUCT_NOT_FOUND"

    raise ProductNotFound(f"product {name!r} does not exist", metadata={"product": name})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (``product.price.units``) and what is wrong."""

    field: str
    description: str


class AgoraError(Exception):
    """Base of every error a service reports on purpose.

    Attributes:
        code: the gRPC status code the error maps to.
        reason: a short UPPER_SNAKE identifier, unique within the service's domain.
        metadata: every dynamic value mentioned in the message, as strings.
        retry_after: seconds the caller should wait before retrying, if known.
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN
    reason: str = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        metadata: Mapping[str, str] | None = None,
        reason: str | None = None,
        domain: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})
        if reason is not None:
            self.reason = reason
        self.domain = domain
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r})"


class InvalidArgument(AgoraError):
    """The request is malformed: INVALID_ARGUMENT, with a ``BadRequest`` of field violations."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[FieldViolation] = (),
        metadata: Mapping[str, str] | None = None,
        reason: str | None = None,
        domain: str | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata, reason=reason, domain=domain)
        self.violations = list(violations)

    @classmethod
    def for_fields(
        cls, violations: Sequence[FieldViolation], reason: str | None = None
    ) -> InvalidArgument:
        """Builds one error listing every violation, with a message naming the fields.

        A violation of the request as a whole (field ``""``) is named "the request".
        """
        fields = ", ".join(dict.fromkeys(v.field or "the request" for v in violations))
        return cls(f"invalid request: check {fields}", violations=violations, reason=reason)


class Unauthenticated(AgoraError):
    """The caller could not be identified: UNAUTHENTICATED."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(AgoraError):
    """The caller is known but may not do this: PERMISSION_DENIED."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class NotFound(AgoraError):
    """The named resource does not exist: NOT_FOUND."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(AgoraError):
    """A create collided with an existing resource: ALREADY_EXISTS."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(AgoraError):
    """The system is not in a state the call needs: FAILED_PRECONDITION."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Aborted(AgoraError):
    """A concurrency conflict (stale etag, lost optimistic lock): ABORTED; read again and retry."""

    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"


class ResourceExhausted(AgoraError):
    """A quota or limit was hit: RESOURCE_EXHAUSTED."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(AgoraError):
    """A dependency is down; retrying later may succeed: UNAVAILABLE."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class DeadlineExceeded(AgoraError):
    """The call ran out of time: DEADLINE_EXCEEDED."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class Internal(AgoraError):
    """A bug or broken invariant on the server side: INTERNAL."""

    code = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"


class Unknown(AgoraError):
    """A peer failed with a status this tree does not model."""

    code = grpc.StatusCode.UNKNOWN
    reason = "UNKNOWN"


#: Category classes by status code, used to turn a peer's status back into an error.
CATEGORY_BY_CODE: dict[grpc.StatusCode, type[AgoraError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Aborted,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Internal,
        Unknown,
    )
}
# OUT_OF_RANGE is an invalid argument that depends on state; CANCELLED/DATA_LOSS/UNIMPLEMENTED
# are rare enough to share the closest category.
CATEGORY_BY_CODE[grpc.StatusCode.OUT_OF_RANGE] = InvalidArgument
CATEGORY_BY_CODE[grpc.StatusCode.CANCELLED] = Unavailable
CATEGORY_BY_CODE[grpc.StatusCode.UNIMPLEMENTED] = Unknown
CATEGORY_BY_CODE[grpc.StatusCode.DATA_LOSS] = Internal
