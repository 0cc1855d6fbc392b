"""Protobuf <-> domain conversion for identity, including every check of request shape.

``field_behavior`` annotations document intent but enforce nothing, so required fields,
name formats and lengths are checked here; every problem in a request is reported at
once as a ``BadRequest`` field violation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from agora.identity.v1 import identity_service_pb2, user_pb2
from identity.domain import model
from identity.domain.commands import Login, RefreshTokens, SignUp
from runtime.errors import FieldViolation
from runtime.requests import Violations, read_idempotency, require_name, without_fields

#: SignUp's reason when every problem is in one of these fields, as the contract names them.
_SIGN_UP_REASONS = {"email": "INVALID_EMAIL", "password": "INVALID_PASSWORD"}


def parse_user_name(name: str, field_path: str = "name") -> str:
    """The id in ``users/{id}``."""
    return require_name(name, "users", field_path, variable="user")


def sign_up_command(request: identity_service_pb2.SignUpRequest) -> SignUp:
    violations = Violations()
    email = request.email.strip()
    violations.extend(model.validate_email(email, "email"))
    violations.extend(model.validate_password(request.password, "password"))
    violations.extend(model.validate_display_name(request.display_name, "display_name"))
    idempotency = read_idempotency(request, violations, redact=without_fields("password"))
    violations.raise_if_any(_sign_up_reason(violations.items))
    return SignUp(
        email=email,
        password=request.password,
        display_name=request.display_name.strip(),
        idempotency=idempotency,
    )


def login_command(request: identity_service_pb2.LoginRequest) -> Login:
    violations = Violations()
    if not request.email.strip():
        violations.add("email", "is required")
    if not request.password:
        violations.add("password", "is required")
    violations.raise_if_any()
    return Login(email=request.email.strip(), password=request.password)


def refresh_tokens_command(request: identity_service_pb2.RefreshTokenRequest) -> RefreshTokens:
    violations = Violations()
    if not request.refresh_token:
        violations.add("refresh_token", "is required")
    violations.raise_if_any()
    return RefreshTokens(request.refresh_token)


def user_to_proto(user: model.User) -> user_pb2.User:
    return user_pb2.User(
        name=user.name,
        email=user.email,
        display_name=user.display_name,
        roles=sorted(set(user.roles)),
        create_time=_timestamp(user.create_time),
    )


def login_response(tokens: model.IssuedTokens) -> identity_service_pb2.LoginResponse:
    return identity_service_pb2.LoginResponse(
        access_token=tokens.access_token,
        access_token_expire_time=_timestamp(tokens.access_token_expire_time),
        refresh_token=tokens.refresh_token,
        refresh_token_expire_time=_timestamp(tokens.refresh_token_expire_time),
        user=tokens.user,
    )


def refresh_token_response(
    tokens: model.IssuedTokens,
) -> identity_service_pb2.RefreshTokenResponse:
    return identity_service_pb2.RefreshTokenResponse(
        access_token=tokens.access_token,
        access_token_expire_time=_timestamp(tokens.access_token_expire_time),
        refresh_token=tokens.refresh_token,
        refresh_token_expire_time=_timestamp(tokens.refresh_token_expire_time),
        user=tokens.user,
    )


def jwks_response(keys: Sequence[model.SigningKey]) -> identity_service_pb2.GetJwksResponse:
    """The keys as protobuf messages and as one RFC 7517 JWK Set document."""
    jwks = [
        {
            name: key.public_jwk[name]
            for name in ("kid", "kty", "crv", "x", "y", "alg", "use")
            if key.public_jwk.get(name)
        }
        for key in keys
    ]
    return identity_service_pb2.GetJwksResponse(
        keys=[identity_service_pb2.JsonWebKey(**jwk) for jwk in jwks],
        jwks_json=json.dumps({"keys": jwks}, separators=(",", ":")),
    )


def _sign_up_reason(violations: Sequence[FieldViolation]) -> str | None:
    # The contract gives the email and the password their own reasons; a request with
    # problems in several fields gets the reason of the first of email, password.
    for field_path, reason in _SIGN_UP_REASONS.items():
        if any(v.field == field_path for v in violations):
            return reason
    return None


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
