"""Identity's SQLAlchemy adapters against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.adapters.orm import metadata, refresh_tokens, users
from identity.adapters.tokens import JwtTokenSigner
from identity.adapters.unit_of_work import SqlAlchemyUnitOfWork
from identity.bootstrap import MIGRATIONS
from identity.domain import usecases
from identity.domain.commands import Login, RefreshTokens, SignUp
from identity.domain.errors import (
    EmailAlreadyRegistered,
    RefreshTokenReused,
    RefreshTokenRevoked,
)
from identity.domain.model import IssuedTokens, TokenLifetimes, hash_refresh_token
from runtime import db
from runtime.idempotency import Idempotency
from tests.support.database import migrated_engine, schema_differences
from tests.unit.identity.fakes import FakePasswordHasher

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIFETIMES = TokenLifetimes()
ADA = SignUp("Ada@Example.com", "correct horse battery", "Ada Lovelace")
#: Bound on waiting for PostgreSQL to show a blocked writer.
LOCK_WAIT_S = 10.0


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


def uow(engine: AsyncEngine) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(engine)


async def test_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    assert await schema_differences(engine, metadata) == []


async def test_migrating_twice_changes_nothing(engine: AsyncEngine) -> None:
    await db.migrate(engine, MIGRATIONS)


async def signed_up_and_logged_in(engine: AsyncEngine) -> IssuedTokens:
    hasher = FakePasswordHasher()
    await usecases.sign_up(uow(engine), hasher, ADA, NOON)
    return await usecases.login(
        uow(engine), hasher, JwtTokenSigner(), LIFETIMES, Login(ADA.email, ADA.password), NOON
    )


async def test_users_read_back_equal_and_emails_are_unique_without_case(
    engine: AsyncEngine,
) -> None:
    hasher = FakePasswordHasher()
    ada = await usecases.sign_up(uow(engine), hasher, ADA, NOON)
    async with uow(engine) as work:
        assert await work.users.get(ada.id) == ada
        assert await work.users.get_by_email("ada@example.com") == ada
    with pytest.raises(EmailAlreadyRegistered):
        await usecases.sign_up(uow(engine), hasher, SignUp("ADA@EXAMPLE.COM", "x" * 8, "A"), NOON)


async def test_a_login_stores_the_upgraded_hash_of_an_old_one(engine: AsyncEngine) -> None:
    ada = await usecases.sign_up(uow(engine), FakePasswordHasher(cost=1), ADA, NOON)
    await usecases.login(
        uow(engine),
        FakePasswordHasher(cost=2),
        JwtTokenSigner(),
        LIFETIMES,
        Login(ADA.email, ADA.password),
        NOON,
    )
    async with uow(engine) as work:
        stored = await work.users.get(ada.id)
    assert stored is not None
    assert stored.password_hash.startswith("fake2$")


async def test_concurrent_sign_ups_of_one_email_create_one_user(engine: AsyncEngine) -> None:
    hasher = FakePasswordHasher()
    emails = ["ada@example.com", "ADA@example.com", "Ada@Example.com", "ada@EXAMPLE.COM"]
    outcomes = await asyncio.gather(
        *(
            usecases.sign_up(uow(engine), hasher, SignUp(email, "correct horse", "Ada"), NOON)
            for email in emails
        ),
        return_exceptions=True,
    )
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(created) == 1
    assert all(isinstance(f, EmailAlreadyRegistered) for f in failures), failures
    async with engine.connect() as connection:
        assert await connection.scalar(sa.select(sa.func.count()).select_from(users)) == 1


async def test_a_sign_up_request_id_replays_across_transactions(engine: AsyncEngine) -> None:
    hasher = FakePasswordHasher()
    command = SignUp(ADA.email, ADA.password, ADA.display_name, Idempotency("req-1", "fp"))
    first = await usecases.sign_up(uow(engine), hasher, command, NOON)
    assert await usecases.sign_up(uow(engine), hasher, command, NOON) == first


async def test_only_the_hash_of_a_refresh_token_is_stored(engine: AsyncEngine) -> None:
    tokens = await signed_up_and_logged_in(engine)
    async with engine.connect() as connection:
        stored = (await connection.execute(sa.select(refresh_tokens.c.token_hash))).scalars().all()
    assert stored == [hash_refresh_token(tokens.refresh_token)]


async def test_concurrent_refreshes_of_one_token_let_exactly_one_win(
    engine: AsyncEngine,
) -> None:
    tokens = await signed_up_and_logged_in(engine)
    signer = JwtTokenSigner()
    outcomes = await asyncio.gather(
        *(
            usecases.refresh_tokens(
                uow(engine), signer, LIFETIMES, RefreshTokens(tokens.refresh_token), NOON
            )
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, IssuedTokens)]
    losers = [o for o in outcomes if not isinstance(o, IssuedTokens)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1
    assert isinstance(losers[0], RefreshTokenReused), losers
    # The loser counted as reuse, so the winner's new token died with the family.
    with pytest.raises(RefreshTokenRevoked):
        await usecases.refresh_tokens(
            uow(engine), signer, LIFETIMES, RefreshTokens(winners[0].refresh_token), NOON
        )


async def test_mark_used_is_a_compare_and_set(engine: AsyncEngine) -> None:
    tokens = await signed_up_and_logged_in(engine)
    token_hash = hash_refresh_token(tokens.refresh_token)
    async with uow(engine).writing() as work:
        assert await work.tokens.mark_used(token_hash)
        assert not await work.tokens.mark_used(token_hash)


async def test_a_writer_that_read_a_token_unused_loses_to_the_one_that_committed(
    fresh_postgres_database: str,
) -> None:
    """PostgreSQL: both transactions see the token unused; the second one's UPDATE waits
    for the first one's row lock, then finds the row already used and changes nothing."""
    engine = db.create_engine(fresh_postgres_database)
    await db.migrate(engine, MIGRATIONS)
    try:
        tokens = await signed_up_and_logged_in(engine)
        token_hash = hash_refresh_token(tokens.refresh_token)
        first, second = uow(engine).writing(), uow(engine).writing()
        async with first, second:
            found_first = await first.tokens.find(token_hash)
            found_second = await second.tokens.find(token_hash)
            assert found_first is not None
            assert found_second is not None
            assert not found_first.used
            assert not found_second.used
            assert await first.tokens.mark_used(token_hash)
            blocked = asyncio.create_task(second.tokens.mark_used(token_hash))
            await _wait_for_a_lock_waiter(engine)
            assert not blocked.done()
            await first.commit()
            assert await asyncio.wait_for(blocked, LOCK_WAIT_S) is False
    finally:
        await engine.dispose()


async def _wait_for_a_lock_waiter(engine: AsyncEngine) -> None:
    deadline = time.monotonic() + LOCK_WAIT_S
    while time.monotonic() < deadline:
        async with engine.connect() as connection:
            waiting = await connection.scalar(
                sa.text(
                    "select count(*) from pg_stat_activity "
                    "where datname = current_database() and wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no transaction waited for the row lock within {LOCK_WAIT_S}s")


async def test_keys_are_listed_current_first_then_retired_newest_first(
    engine: AsyncEngine,
) -> None:
    signer = JwtTokenSigner()
    first = await usecases.ensure_signing_key(uow(engine), signer, NOON)
    second = await usecases.rotate_signing_keys(uow(engine), signer, NOON + timedelta(minutes=1))
    third = await usecases.rotate_signing_keys(uow(engine), signer, NOON + timedelta(minutes=2))
    listed = await usecases.get_jwks(uow(engine), LIFETIMES, NOON + timedelta(minutes=3))
    assert [k.kid for k in listed] == [third.kid, second.kid, first.kid]
    assert listed[0].retire_time is None
    assert listed[1].retire_time == NOON + timedelta(minutes=2)
    assert listed[0].public_jwk == third.public_jwk
    async with uow(engine) as work:
        current = await work.keys.current()
    assert current is not None
    assert current.kid == third.kid
    assert current.private_key_pem == third.private_key_pem
    # 15 minutes after the second rotation, only the keys still in use remain.
    later = await usecases.get_jwks(uow(engine), LIFETIMES, NOON + timedelta(minutes=17))
    assert [k.kid for k in later] == [third.kid]
