"""argon2id hashing: the stored form, verification and the dummy verification."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from identity.adapters.passwords import Argon2Cost, Argon2PasswordHasher

#: Cheap parameters keep the suite fast; the algorithm is the same.
CHEAP = Argon2Cost(time_cost=1, memory_kib=8 * 1024, parallelism=1)


@pytest.fixture
async def hasher() -> AsyncIterator[Argon2PasswordHasher]:
    hasher = Argon2PasswordHasher(CHEAP, workers=2)
    yield hasher
    await hasher.close()


async def test_hashes_are_salted_argon2id_phc_strings(hasher: Argon2PasswordHasher) -> None:
    first = await hasher.hash("correct horse battery")
    second = await hasher.hash("correct horse battery")
    assert first.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert first != second  # a fresh salt each time
    assert "correct horse battery" not in first


async def test_verify_accepts_the_password_and_nothing_else(hasher: Argon2PasswordHasher) -> None:
    stored = await hasher.hash("correct horse battery")
    assert await hasher.verify(stored, "correct horse battery")
    assert not await hasher.verify(stored, "correct horse batter")
    assert not await hasher.verify("not a hash", "correct horse battery")


async def test_default_cost_is_rfc_9106_low_memory() -> None:
    assert Argon2Cost() == Argon2Cost(time_cost=3, memory_kib=65536, parallelism=4)


async def test_verify_nothing_runs_a_real_verification(hasher: Argon2PasswordHasher) -> None:
    # No exception, no result: it only spends the time a failed verify spends.
    await hasher.verify_nothing("anything at all")


async def test_hashes_of_other_parameters_need_a_rehash(hasher: Argon2PasswordHasher) -> None:
    assert not hasher.needs_rehash(await hasher.hash("correct horse battery"))
    stronger = Argon2PasswordHasher(Argon2Cost(time_cost=2, memory_kib=8 * 1024, parallelism=1))
    try:
        assert stronger.needs_rehash(await hasher.hash("correct horse battery"))
        assert stronger.needs_rehash("not a hash")
    finally:
        await stronger.close()
