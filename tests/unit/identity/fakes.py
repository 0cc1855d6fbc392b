"""In-memory fakes of identity's ports, for unit tests of the use cases."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from identity.domain.errors import EmailAlreadyRegistered
from identity.domain.model import RefreshTokenRecord, SigningKey, TokenFamily, User
from identity.domain.ports import (
    PasswordHasher,
    RefreshTokenRepository,
    SigningKeyRepository,
    UnitOfWork,
    UserRepository,
)
from runtime.idempotency import RecordedRequest
from tests.support import fakes


@dataclass
class FakeStore:
    """What a committed "database" holds."""

    users: dict[str, User] = field(default_factory=dict)
    families: dict[str, TokenFamily] = field(default_factory=dict)
    tokens: dict[str, RefreshTokenRecord] = field(default_factory=dict)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    requests: dict[str, RecordedRequest] = field(default_factory=dict)


class FakeUserRepository(UserRepository):
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, user_id: str) -> User | None:
        return self._store.users.get(user_id)

    async def get_by_email(self, email_key: str) -> User | None:
        return next((u for u in self._store.users.values() if u.email_key == email_key), None)

    async def add(self, user: User) -> None:
        if await self.get_by_email(user.email_key) is not None:
            raise EmailAlreadyRegistered(user.email)
        self._store.users[user.id] = user

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._store.users[user_id] = replace(
            self._store.users[user_id], password_hash=password_hash
        )

    async def set_roles(self, user_id: str, roles: Sequence[str]) -> bool:
        user = self._store.users.get(user_id)
        if user is None:
            return False
        self._store.users[user_id] = replace(user, roles=tuple(sorted(roles)))
        return True


class FakeRefreshTokenRepository(RefreshTokenRepository):
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def add_family(self, family: TokenFamily) -> None:
        self._store.families[family.id] = family

    async def get_family(self, family_id: str) -> TokenFamily | None:
        return self._store.families.get(family_id)

    async def revoke_family(self, family_id: str, now: datetime) -> None:
        family = self._store.families[family_id]
        if family.revoke_time is None:
            self._store.families[family_id] = replace(family, revoke_time=now)

    async def add(self, token: RefreshTokenRecord) -> None:
        self._store.tokens[token.token_hash] = token

    async def find(self, token_hash: str) -> RefreshTokenRecord | None:
        return self._store.tokens.get(token_hash)

    async def mark_used(self, token_hash: str) -> bool:
        token = self._store.tokens[token_hash]
        if token.used:
            return False
        self._store.tokens[token_hash] = replace(token, used=True)
        return True


class FakeSigningKeyRepository(SigningKeyRepository):
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def add(self, key: SigningKey) -> None:
        self._store.keys[key.kid] = key

    async def current(self) -> SigningKey | None:
        current = [k for k in self._store.keys.values() if k.retire_time is None]
        return max(current, key=lambda k: k.create_time, default=None)

    async def verifying(self, retired_after: datetime) -> list[SigningKey]:
        keys = [
            k
            for k in self._store.keys.values()
            if k.retire_time is None or k.retire_time > retired_after
        ]
        return sorted(keys, key=lambda k: (k.retire_time is not None, -k.create_time.timestamp()))

    async def retire_all_except(self, kid: str, now: datetime) -> int:
        retired = 0
        for key in list(self._store.keys.values()):
            if key.retire_time is None and key.kid != kid:
                self._store.keys[key.kid] = replace(key, retire_time=now)
                retired += 1
        return retired


class FakeUnitOfWork(fakes.FakeUnitOfWork[FakeStore], UnitOfWork):
    """Works on a copy of the store; commit publishes the copy, so rollback really discards."""

    def _bind(self, working: FakeStore) -> None:
        self.users = FakeUserRepository(working)
        self.tokens = FakeRefreshTokenRepository(working)
        self.keys = FakeSigningKeyRepository(working)


class FakePasswordHasher(PasswordHasher):
    """A fast stand-in for argon2id that records what it was asked to verify.

    Hashes look like ``fake<cost>$<sha256>``; a hash of another cost still verifies but
    needs a rehash, like an argon2 hash made with older parameters.
    """

    def __init__(self, cost: int = 1) -> None:
        self.cost = cost
        self.verified: list[str] = []

    async def hash(self, password: str) -> str:
        return f"fake{self.cost}$" + hashlib.sha256(password.encode()).hexdigest()

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        _, _, digest = password_hash.partition("$")
        return digest == hashlib.sha256(password.encode()).hexdigest()

    async def verify_nothing(self, password: str) -> None:
        await self.verify("fake$dummy", password)

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(f"fake{self.cost}$")
