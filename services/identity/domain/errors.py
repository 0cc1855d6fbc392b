"""Identity's errors; each names its condition and carries a stable reason."""

from __future__ import annotations

from runtime.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

DOMAIN = "identity.agora"


class UserNotFound(NotFound):
    reason = "USER_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} does not exist", metadata={"user": name})


class EmailAlreadyRegistered(AlreadyExists):
    reason = "EMAIL_ALREADY_REGISTERED"

    def __init__(self, email: str) -> None:
        super().__init__(
            "a user with this email address already exists; log in instead",
            metadata={"email": email},
        )


class InvalidCredentials(Unauthenticated):
    """Unknown email or wrong password: deliberately the same error for both."""

    reason = "INVALID_CREDENTIALS"

    def __init__(self) -> None:
        super().__init__("the email address or the password is wrong")


class RefreshTokenInvalid(Unauthenticated):
    reason = "REFRESH_TOKEN_INVALID"

    def __init__(self) -> None:
        super().__init__("the refresh token is not one this service issued; log in again")


class RefreshTokenReused(Unauthenticated):
    """A rotated token came back: it may have been stolen, so its family is revoked."""

    reason = "REFRESH_TOKEN_REUSED"

    def __init__(self) -> None:
        super().__init__(
            "the refresh token was already used; every token of this login is revoked, log in again"
        )


class RefreshTokenRevoked(Unauthenticated):
    reason = "REFRESH_TOKEN_REVOKED"

    def __init__(self) -> None:
        super().__init__("the refresh token was revoked; log in again")


class RefreshTokenExpired(Unauthenticated):
    reason = "REFRESH_TOKEN_EXPIRED"

    def __init__(self) -> None:
        super().__init__("the refresh token has expired; log in again")


class ReadUserDenied(PermissionDenied):
    """The caller is another user, and no admin.

    Also raised for a user that does not exist: permission is checked before existence
    (AIP-211), so a user cannot probe which users exist.
    """

    reason = "NOT_RESOURCE_OWNER"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"only the user itself or an admin may read {name!r}", metadata={"user": name}
        )


def request_id_reused(request_id: str, operation: str) -> InvalidArgument:
    """The same error :func:`runtime.idempotency.check_replay` raises for a different request."""
    return InvalidArgument(
        "request_id was already used for a different request; use a new UUID per request",
        violations=[FieldViolation("request_id", "already used for a different request")],
        reason="REQUEST_ID_REUSED",
        metadata={"request_id": request_id, "operation": operation},
    )
