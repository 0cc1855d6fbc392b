"""Identity's events reach its outbox in the transaction of the change, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agora.identity.v1 import events_pb2
from identity.adapters.orm import outbox, users
from identity.adapters.unit_of_work import SqlAlchemyUnitOfWork
from identity.bootstrap import MIGRATIONS
from identity.domain import usecases
from identity.domain.commands import SignUp
from identity.domain.errors import EmailAlreadyRegistered
from identity.domain.events import UserSignedUp
from identity.domain.model import User
from runtime.idempotency import Idempotency
from tests.support.database import migrated_engine
from tests.unit.identity.fakes import FakePasswordHasher

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ADA = SignUp("Ada@Example.com", "correct horse battery", "Ada Lovelace", Idempotency("r-1", "fp"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, MIGRATIONS) as engine:
        yield engine


async def outbox_rows(engine: AsyncEngine) -> list[sa.Row[Any]]:
    async with engine.connect() as connection:
        return list((await connection.execute(sa.select(outbox).order_by(outbox.c.position))).all())


async def test_a_sign_up_leaves_one_unsent_event_and_a_rolled_back_change_none(
    engine: AsyncEngine,
) -> None:
    hasher = FakePasswordHasher()
    ada = await usecases.sign_up(SqlAlchemyUnitOfWork(engine), hasher, ADA, NOON)
    # A replay, a taken email address and an uncommitted transaction write no event.
    await usecases.sign_up(SqlAlchemyUnitOfWork(engine), hasher, ADA, NOON)
    with pytest.raises(EmailAlreadyRegistered):
        await usecases.sign_up(
            SqlAlchemyUnitOfWork(engine), hasher, SignUp("ADA@example.com", "x" * 8, "A"), NOON
        )
    grace = User("u-grace", "grace@example.com", "Grace Hopper", "fake1$x", create_time=NOON)
    async with SqlAlchemyUnitOfWork(engine).writing() as uow:
        await uow.users.add(grace)
        uow.emit(UserSignedUp(grace))  # never committed

    [row] = await outbox_rows(engine)
    assert row.event_type == "agora.identity.v1.UserSignedUp"
    assert row.aggregate == ada.name
    assert row.sent_time is None
    message = events_pb2.UserSignedUp.FromString(row.payload)
    assert message.user.name == ada.name
    assert message.user.email == "Ada@Example.com"
    async with engine.connect() as connection:
        assert await connection.scalar(sa.select(sa.func.count()).select_from(users)) == 1
