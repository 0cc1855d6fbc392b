"""Passwords hashed with argon2id (argon2-cffi), off the event loop.

Hashing is slow and memory-hard on purpose (64 MiB and three passes by default, RFC 9106's
low-memory profile), so it runs on a small thread pool: the C code releases the GIL, and
the pool's size bounds the memory and cores that concurrent logins can take.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from identity.domain.ports import PasswordHasher


@dataclass(frozen=True)
class Argon2Cost:
    """The argon2id cost parameters; the defaults are RFC 9106's low-memory profile."""

    time_cost: int = argon2.profiles.RFC_9106_LOW_MEMORY.time_cost
    memory_kib: int = argon2.profiles.RFC_9106_LOW_MEMORY.memory_cost
    parallelism: int = argon2.profiles.RFC_9106_LOW_MEMORY.parallelism


class Argon2PasswordHasher(PasswordHasher):
    """Hashes to argon2id PHC strings (``$argon2id$v=19$m=...``) and verifies in constant time."""

    def __init__(self, cost: Argon2Cost | None = None, workers: int | None = None) -> None:
        cost = cost or Argon2Cost()
        self._hasher = argon2.PasswordHasher(
            time_cost=cost.time_cost,
            memory_cost=cost.memory_kib,
            parallelism=cost.parallelism,
            type=argon2.Type.ID,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=workers or os.cpu_count() or 2, thread_name_prefix="argon2"
        )
        # Verified against when an email address is unknown, so that costs the same time.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._verify, password_hash, password)

    async def verify_nothing(self, password: str) -> None:
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except ValueError:  # InvalidHashError is one: not an argon2 hash at all
            return True

    async def close(self) -> None:
        """Lets running hashes finish and stops the pool's threads."""
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
