"""What identity's use cases need from the outside world, as abstract classes."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from typing import Self

from identity.domain.model import AccessToken, RefreshTokenRecord, SigningKey, TokenFamily, User
from runtime import unit_of_work


class UserRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, user_id: str) -> User | None: ...

    @abc.abstractmethod
    async def get_by_email(self, email_key: str) -> User | None:
        """The user whose email address, compared without case, is ``email_key``."""

    @abc.abstractmethod
    async def add(self, user: User) -> None:
        """Stores a new user; raises EmailAlreadyRegistered if the email address is taken."""

    @abc.abstractmethod
    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    @abc.abstractmethod
    async def set_roles(self, user_id: str, roles: Sequence[str]) -> bool:
        """Replaces the user's roles; False if there is no such user."""


class RefreshTokenRepository(abc.ABC):
    """Token families and the hashes of their refresh tokens."""

    @abc.abstractmethod
    async def add_family(self, family: TokenFamily) -> None: ...

    @abc.abstractmethod
    async def get_family(self, family_id: str) -> TokenFamily | None: ...

    @abc.abstractmethod
    async def revoke_family(self, family_id: str, now: datetime) -> None:
        """Marks the family revoked (once; a later call keeps the first revoke time)."""

    @abc.abstractmethod
    async def add(self, token: RefreshTokenRecord) -> None: ...

    @abc.abstractmethod
    async def find(self, token_hash: str) -> RefreshTokenRecord | None: ...

    @abc.abstractmethod
    async def mark_used(self, token_hash: str) -> bool:
        """Marks an unused token used; False if it was already used.

        This is the rotation's compare-and-set: of two transactions that try it on the
        same token, exactly one gets True, even when both read it as unused first.
        """


class SigningKeyRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, key: SigningKey) -> None: ...

    @abc.abstractmethod
    async def current(self) -> SigningKey | None:
        """The newest key that has not retired."""

    @abc.abstractmethod
    async def verifying(self, retired_after: datetime) -> list[SigningKey]:
        """Keys not retired, or retired after ``retired_after``; newest first."""

    @abc.abstractmethod
    async def retire_all_except(self, kid: str, now: datetime) -> int:
        """Retires every current key but ``kid``; returns how many."""


class PasswordHasher(abc.ABC):
    """Salted, slow password hashing with constant-time verification."""

    @abc.abstractmethod
    async def hash(self, password: str) -> str: ...

    @abc.abstractmethod
    async def verify(self, password_hash: str, password: str) -> bool:
        """True if ``password`` matches; False (never an error) if it does not."""

    @abc.abstractmethod
    async def verify_nothing(self, password: str) -> None:
        """Spends the time of a failed :meth:`verify`, for an email nobody signed up with."""

    @abc.abstractmethod
    def needs_rehash(self, password_hash: str) -> bool:
        """True if ``password_hash`` was made with other parameters than today's."""


class TokenSigner(abc.ABC):
    """Makes signing keys and signs access tokens with them.

    Identity does not verify its own access tokens here: the runtime verifies every
    service's callers, identity's included, against the keys
    :func:`~identity.domain.usecases.get_jwks` publishes.
    """

    @abc.abstractmethod
    def new_key(self, now: datetime) -> SigningKey: ...

    @abc.abstractmethod
    def sign(self, token: AccessToken, key: SigningKey) -> str: ...


class UnitOfWork(unit_of_work.UnitOfWork):
    """One transaction over identity's repositories; ``commit`` makes the changes durable."""

    users: UserRepository
    tokens: RefreshTokenRepository
    keys: SigningKeyRepository

    def reading(self) -> Self:
        """Declares that this transaction only reads (the default until :meth:`writing`)."""
        self.writes = False
        return self
