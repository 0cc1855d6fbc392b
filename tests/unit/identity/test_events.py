"""What identity publishes: which use case emits which event, and the contract's message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Self

import pytest

from agora.identity.v1 import events_pb2
from identity.adapters.events import to_messages
from identity.adapters.tokens import JwtTokenSigner
from identity.domain import usecases
from identity.domain.commands import Login, RefreshTokens, SignUp
from identity.domain.errors import EmailAlreadyRegistered
from identity.domain.events import UserSignedUp
from identity.domain.model import TokenLifetimes, User
from runtime.errors import InvalidArgument
from runtime.idempotency import ConcurrentRequest, Idempotency, RecordedRequest
from tests.support.fakes import FakeRequestLog
from tests.unit.identity.fakes import FakePasswordHasher, FakeStore, FakeUnitOfWork

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIFETIMES = TokenLifetimes()
ADA = SignUp("Ada@Example.com", "correct horse battery", "Ada Lovelace")
ADA_AGAIN = SignUp(ADA.email, ADA.password, ADA.display_name, Idempotency("r-1", "fp"))


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def hasher() -> FakePasswordHasher:
    return FakePasswordHasher()


def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


def published(store: FakeStore) -> list[object]:
    return uow(store).published


class RacingRequestLog(FakeRequestLog):
    """A request log whose id another call with the same id has just taken."""

    async def add(self, request: RecordedRequest) -> None:
        raise ConcurrentRequest(request.request_id)


class RacedUnitOfWork(FakeUnitOfWork):
    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.requests = RacingRequestLog({})
        return self


async def test_a_sign_up_publishes_user_signed_up_with_the_new_user(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    user = await usecases.sign_up(uow(store), hasher, ADA, NOON)
    assert published(store) == [UserSignedUp(user)]
    assert published(store)[0] == UserSignedUp(store.users[user.id])


async def test_a_replayed_sign_up_publishes_nothing_new(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    first = await usecases.sign_up(uow(store), hasher, ADA_AGAIN, NOON)
    again = await usecases.sign_up(uow(store), hasher, ADA_AGAIN, NOON + timedelta(minutes=1))
    assert again == first
    assert published(store) == [UserSignedUp(first)]


async def test_refused_sign_ups_publish_nothing(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    first = await usecases.sign_up(uow(store), hasher, ADA_AGAIN, NOON)
    with pytest.raises(EmailAlreadyRegistered):
        await usecases.sign_up(uow(store), hasher, SignUp("ADA@example.com", "x" * 8, "A"), NOON)
    with pytest.raises(InvalidArgument):
        await usecases.sign_up(
            uow(store),
            hasher,
            SignUp(ADA.email, "another password", "A", ADA_AGAIN.idempotency),
            NOON,
        )
    assert published(store) == [UserSignedUp(first)]


async def test_a_sign_up_rolled_back_after_its_event_was_emitted_publishes_nothing(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    with pytest.raises(ConcurrentRequest):
        await usecases.sign_up(RacedUnitOfWork(store), hasher, ADA_AGAIN, NOON)
    assert store.users == {}
    assert published(store) == []


async def test_logins_refreshes_roles_and_keys_publish_nothing(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    signer = JwtTokenSigner()
    ada = await usecases.sign_up(uow(store), hasher, ADA, NOON)
    await usecases.ensure_signing_key(uow(store), signer, NOON)
    tokens = await usecases.login(
        uow(store), hasher, signer, LIFETIMES, Login(ADA.email, ADA.password), NOON
    )
    await usecases.refresh_tokens(
        uow(store), signer, LIFETIMES, RefreshTokens(tokens.refresh_token), NOON
    )
    await usecases.grant_role(uow(store), ADA.email, "admin")
    await usecases.rotate_signing_keys(uow(store), signer, NOON)
    assert published(store) == [UserSignedUp(ada)]


def test_user_signed_up_is_the_contract_message_about_the_user_without_its_hash() -> None:
    ada = User("u1", "Ada@Example.com", "Ada Lovelace", "fake1$secret-hash", create_time=NOON)
    [(message, aggregate)] = to_messages(UserSignedUp(ada))
    assert isinstance(message, events_pb2.UserSignedUp)
    assert aggregate == "users/u1"
    assert message.user.name == "users/u1"
    assert message.user.email == "Ada@Example.com"
    assert message.user.display_name == "Ada Lovelace"
    assert list(message.user.roles) == ["customer"]
    assert message.user.create_time.ToDatetime(tzinfo=UTC) == NOON
    assert b"secret-hash" not in message.SerializeToString()


def test_anything_else_is_not_identity_s_to_publish() -> None:
    with pytest.raises(TypeError, match="identity does not publish"):
        to_messages(object())
