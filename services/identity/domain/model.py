"""Identity's domain model: users, refresh-token families and signing keys.

Only rules live here. Hashing passwords and signing tokens are ports (see :mod:`ports`),
so this module needs no cryptography library.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from runtime.errors import FieldViolation

#: The ``iss`` claim of every access token.
ISSUER = "identity.agora"
MAX_EMAIL = 254
MAX_EMAIL_LOCAL_PART = 64
MIN_PASSWORD = 8
MAX_PASSWORD = 128
MAX_DISPLAY_NAME = 100
#: The role every user gets at sign-up, and the one that may read any user.
CUSTOMER = "customer"
ADMIN = "admin"
KNOWN_ROLES = frozenset({CUSTOMER, ADMIN})
#: Refresh tokens are 43 characters; anything longer than the contract's bound is not ours.
MAX_REFRESH_TOKEN = 512

# A deliberately simple rule, not RFC 5322: one "@", a local part of visible ASCII without
# "@", and a domain of at least two dot-separated labels of letters, digits and hyphens
# (no hyphen at either end of a label). Internationalised addresses are not accepted yet.
_EMAIL_LOCAL = re.compile(r"^[!-?A-~]+$")  # visible ASCII except "@" (0x40)
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def user_name(user_id: str) -> str:
    """The resource name of a user: ``users/{id}``."""
    return f"users/{user_id}"


def email_key(email: str) -> str:
    """What makes two email addresses the same account: compared without regard to case."""
    return email.strip().lower()


def new_refresh_token() -> str:
    """A fresh refresh token: 256 random bits, base64url encoded."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """What is stored of a refresh token. A fast hash suffices: the token has 256 random bits."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenLifetimes:
    """How long tokens live: access tokens briefly, a login's refresh tokens for long."""

    access: timedelta = timedelta(minutes=15)
    refresh: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class User:
    """A person with an account. ``password_hash`` never leaves the service."""

    id: str
    email: str
    display_name: str
    password_hash: str = field(repr=False)
    roles: tuple[str, ...] = (CUSTOMER,)
    create_time: datetime | None = None

    @property
    def name(self) -> str:
        return user_name(self.id)

    @property
    def email_key(self) -> str:
        return email_key(self.email)


@dataclass(frozen=True)
class AccessToken:
    """The claims of an access token, before signing or after verification."""

    user_id: str
    roles: tuple[str, ...]
    issue_time: datetime
    expire_time: datetime

    @property
    def subject(self) -> str:
        return user_name(self.user_id)


@dataclass(frozen=True)
class TokenFamily:
    """The refresh tokens of one login. Revoking the family ends every one of them."""

    id: str
    user_id: str
    create_time: datetime
    expire_time: datetime
    revoke_time: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoke_time is not None

    def expired(self, now: datetime) -> bool:
        return now >= self.expire_time


@dataclass(frozen=True)
class RefreshTokenRecord:
    """A refresh token as stored: only its hash, never the token itself."""

    token_hash: str
    family_id: str
    create_time: datetime
    used: bool = False


@dataclass(frozen=True)
class IssuedTokens:
    """What Login and RefreshToken hand back."""

    user_id: str
    access_token: str = field(repr=False)
    access_token_expire_time: datetime
    refresh_token: str = field(repr=False)
    refresh_token_expire_time: datetime

    @property
    def user(self) -> str:
        return user_name(self.user_id)


@dataclass(frozen=True)
class SigningKey:
    """A key pair that signs access tokens.

    ``public_jwk`` holds the RFC 7517 members of the public key (``kty``, ``crv``, ``x``,
    ``y``, ``kid``, ``alg``, ``use``). A key is current until ``retire_time``; after that it
    only verifies tokens that were signed before it retired and have not expired yet.
    """

    kid: str
    algorithm: str
    private_key_pem: str = field(repr=False)
    public_jwk: Mapping[str, str]
    create_time: datetime
    retire_time: datetime | None = None


def validate_email(value: str, field_path: str) -> list[FieldViolation]:
    """Checks an email address (already stripped) against the documented simple rule."""
    if not value:
        return [FieldViolation(field_path, "is required")]
    if len(value) > MAX_EMAIL:
        return [FieldViolation(field_path, f"must be at most {MAX_EMAIL} characters")]
    local, at, domain = value.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or not local
        or len(local) > MAX_EMAIL_LOCAL_PART
        or not _EMAIL_LOCAL.match(local)
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.match(label) for label in labels)
    ):
        return [
            FieldViolation(
                field_path,
                "must be an address of the form local@example.com "
                "(ASCII, one @, a domain with a dot)",
            )
        ]
    return []


def validate_password(value: str, field_path: str) -> list[FieldViolation]:
    """8 to 128 characters (Unicode code points); nothing else is imposed."""
    if not value:
        return [FieldViolation(field_path, "is required")]
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        return [
            FieldViolation(field_path, f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
        ]
    return []


def validate_display_name(value: str, field_path: str) -> list[FieldViolation]:
    """1 to 100 characters after removing surrounding whitespace."""
    stripped = value.strip()
    if not stripped:
        return [FieldViolation(field_path, "is required")]
    if len(stripped) > MAX_DISPLAY_NAME:
        return [FieldViolation(field_path, f"must be at most {MAX_DISPLAY_NAME} characters")]
    return []
