"""Inputs of identity's use cases, already validated by the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.idempotency import Idempotency


@dataclass(frozen=True)
class SignUp:
    email: str
    password: str = field(repr=False)
    display_name: str
    #: The fingerprint leaves the password out: a fast hash of it stored in the request log
    #: would undo what argon2id protects. A repeat is checked against the stored password
    #: hash instead.
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class Login:
    email: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class RefreshTokens:
    refresh_token: str = field(repr=False)
