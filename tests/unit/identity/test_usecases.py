"""Identity's use cases over in-memory fakes: sign-up, login, rotation, reuse, keys, access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from identity.adapters.tokens import JwtTokenSigner
from identity.domain import usecases
from identity.domain.commands import Login, RefreshTokens, SignUp
from identity.domain.errors import (
    EmailAlreadyRegistered,
    InvalidCredentials,
    ReadUserDenied,
    RefreshTokenExpired,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RefreshTokenRevoked,
    UserNotFound,
)
from identity.domain.model import IssuedTokens, TokenLifetimes, hash_refresh_token
from runtime.auth import Caller, JwksCache, TokenVerifier
from runtime.errors import InvalidArgument, Unauthenticated
from runtime.idempotency import Idempotency
from tests.unit.identity.fakes import FakePasswordHasher, FakeStore, FakeUnitOfWork

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIFETIMES = TokenLifetimes(access=timedelta(minutes=15), refresh=timedelta(days=30))
ADA = SignUp("Ada@Example.com", "correct horse battery", "Ada Lovelace")


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def hasher() -> FakePasswordHasher:
    return FakePasswordHasher()


@pytest.fixture
def signer() -> JwtTokenSigner:
    return JwtTokenSigner()


def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


async def log_in(
    store: FakeStore,
    hasher: FakePasswordHasher,
    signer: JwtTokenSigner,
    now: datetime = NOON,
    email: str = "ada@example.com",
) -> IssuedTokens:
    return await usecases.login(
        uow(store), hasher, signer, LIFETIMES, Login(email, ADA.password), now
    )


async def refresh(
    store: FakeStore, signer: JwtTokenSigner, token: str, now: datetime = NOON
) -> IssuedTokens:
    return await usecases.refresh_tokens(uow(store), signer, LIFETIMES, RefreshTokens(token), now)


async def verified(store: FakeStore, token: str, now: datetime = NOON) -> Caller:
    """The caller the runtime's verifier (every service's, identity's too) makes of ``token``
    with the keys identity publishes at ``now``."""

    async def published() -> list[dict[str, str]]:
        keys = await usecases.get_jwks(uow(store), LIFETIMES, now)
        return [dict(key.public_jwk) for key in keys]

    verifier = TokenVerifier(JwksCache(published), leeway=0, clock=now.timestamp)
    return await verifier.verify(token)


async def test_sign_up_stores_a_customer_with_a_hash_and_no_password(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    user = await usecases.sign_up(uow(store), hasher, ADA, NOON)
    assert user.roles == ("customer",)
    assert user.email == "Ada@Example.com"
    assert user.name.startswith("users/u")
    stored = store.users[user.id]
    assert stored.password_hash.startswith("fake1$")
    assert ADA.password not in stored.password_hash
    assert ADA.password not in repr(stored)


async def test_an_email_is_registered_once_whatever_its_case(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    await usecases.sign_up(uow(store), hasher, ADA, NOON)
    with pytest.raises(EmailAlreadyRegistered) as caught:
        await usecases.sign_up(
            uow(store), hasher, SignUp("ADA@example.COM", "another password", "Ada"), NOON
        )
    assert caught.value.reason == "EMAIL_ALREADY_REGISTERED"
    assert len(store.users) == 1


async def test_a_repeated_sign_up_with_its_request_id_replays_the_first_user(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    command = SignUp(ADA.email, ADA.password, ADA.display_name, Idempotency("r-1", "fp"))
    first = await usecases.sign_up(uow(store), hasher, command, NOON)
    again = await usecases.sign_up(uow(store), hasher, command, NOON + timedelta(minutes=1))
    assert again == first
    assert len(store.users) == 1


async def test_a_replay_with_another_password_is_a_reused_request_id(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    await usecases.sign_up(
        uow(store), hasher, SignUp(ADA.email, ADA.password, "Ada", Idempotency("r-1", "fp")), NOON
    )
    with pytest.raises(InvalidArgument) as caught:
        await usecases.sign_up(
            uow(store),
            hasher,
            SignUp(ADA.email, "not the same password", "Ada", Idempotency("r-1", "fp")),
            NOON,
        )
    assert caught.value.reason == "REQUEST_ID_REUSED"


async def test_unknown_email_and_wrong_password_fail_alike_and_both_verify_a_hash(
    store: FakeStore, hasher: FakePasswordHasher, signer: JwtTokenSigner
) -> None:
    await usecases.sign_up(uow(store), hasher, ADA, NOON)
    hasher.verified.clear()
    failures = []
    for email, password in [("nobody@example.com", ADA.password), (ADA.email, "wrong password")]:
        with pytest.raises(InvalidCredentials) as caught:
            await usecases.login(
                uow(store), hasher, signer, LIFETIMES, Login(email, password), NOON
            )
        failures.append((caught.value.code, caught.value.reason, caught.value.message))
    assert failures[0] == failures[1]
    assert failures[0][1] == "INVALID_CREDENTIALS"
    # One password verification each: the unknown email spent it on a dummy hash.
    assert len(hasher.verified) == 2
    assert store.families == {}


async def test_login_upgrades_a_hash_made_with_older_parameters(
    store: FakeStore, hasher: FakePasswordHasher, signer: JwtTokenSigner
) -> None:
    user = await usecases.sign_up(uow(store), hasher, ADA, NOON)
    stronger = FakePasswordHasher(cost=2)
    await log_in(store, stronger, signer)
    upgraded = store.users[user.id].password_hash
    assert upgraded.startswith("fake2$")
    await log_in(store, stronger, signer)
    assert store.users[user.id].password_hash == upgraded


async def test_login_issues_an_access_token_and_starts_a_family(
    store: FakeStore, hasher: FakePasswordHasher, signer: JwtTokenSigner
) -> None:
    user = await usecases.sign_up(uow(store), hasher, ADA, NOON)
    tokens = await log_in(store, hasher, signer, email="  ADA@example.com ")
    assert tokens.user == user.name
    assert tokens.access_token_expire_time == NOON + LIFETIMES.access
    assert tokens.refresh_token_expire_time == NOON + LIFETIMES.refresh
    assert list(store.tokens) == [hash_refresh_token(tokens.refresh_token)]
    assert tokens.refresh_token not in str(store)
    (family,) = store.families.values()
    assert family.user_id == user.id
    # The first login made the first signing key.
    (key,) = store.keys.values()
    assert jwt.get_unverified_header(tokens.access_token)["kid"] == key.kid


async def test_rotation_then_reuse_revokes_the_whole_family(
    store: FakeStore, hasher: FakePasswordHasher, signer: JwtTokenSigner
) -> None:
    await usecases.sign_up(uow(store), hasher, ADA, NOON)
    first = await log_in(store, hasher, signer)
    second = await refresh(store, signer, first.refresh_token, NOON + timedelta(minutes=10))
    assert second.refresh_token != first.refresh_token
    assert second.refresh_token_expire_time == first.refresh_token_expire_time
    third = await refresh(store, signer, second.refresh_token, NOON + timedelta(minutes=20))

    # The first token comes back: someone holds a rotated token, so everything is revoked.
    with pytest.raises(RefreshTokenReused):
        await refresh(store, signer, first.refresh_token, NOON + timedelta(minutes=21))
    (family,) = store.families.values()
    assert family.revoke_time == NOON + timedelta(minutes=21)
    # The newest token, never used, is dead too; so is a second try of the reused one.
    with pytest.raises(RefreshTokenRevoked):
        await refresh(store, signer, third.refresh_token, NOON + timedelta(minutes=22))
    with pytest.raises(RefreshTokenRevoked):
        await refresh(store, signer, first.refresh_token, NOON + timedelta(minutes=22))


async def test_a_new_login_is_a_new_family_untouched_by_another_revocation(
    store: FakeStore, hasher: FakePasswordHasher, signer: JwtTokenSigner
) -> None:
    await usecases.sign_up(uow(store), hasher, ADA, NOON)
    phone = await log_in(store, hasher, signer)
    laptop = await log_in(store, hasher, signer)
    await refresh(store, signer, phone.refresh_token)
    with pytest.raises(RefreshTokenReused):
        await refresh(store, signer, phone.refresh_token)
    assert (await refresh(store, signer, laptop.refresh_token)).user == laptop.user


async def test_an_expired_family_refreshes_nothing(
    store: FakeStore, hasher: FakePasswordHasher, signer: JwtTokenSigner
) -> None:
    await usecases.sign_up(uow(store), hasher, ADA, NOON)
    tokens = await log_in(store, hasher, signer)
    with pytest.raises(RefreshTokenExpired):
        await refresh(store, signer, tokens.refresh_token, tokens.refresh_token_expire_time)
    assert not any(t.used for t in store.tokens.values())


@pytest.mark.parametrize("token", ["never-issued", "x" * 600])
async def test_unknown_or_malformed_refresh_tokens_are_invalid(
    store: FakeStore, signer: JwtTokenSigner, token: str
) -> None:
    with pytest.raises(RefreshTokenInvalid):
        await refresh(store, signer, token)


async def test_refreshed_access_tokens_carry_the_roles_of_the_moment(
    store: FakeStore, hasher: FakePasswordHasher, signer: JwtTokenSigner
) -> None:
    await usecases.sign_up(uow(store), hasher, ADA, NOON)
    tokens = await log_in(store, hasher, signer)
    await usecases.grant_role(uow(store), "ada@EXAMPLE.com", "admin")
    refreshed = await refresh(store, signer, tokens.refresh_token)
    caller = await verified(store, refreshed.access_token)
    assert caller.roles == {"admin", "customer"}


async def test_get_user_lets_the_user_and_unrestricted_callers_in_and_checks_permission_first(
    store: FakeStore, hasher: FakePasswordHasher
) -> None:
    # ``restricted_to`` is the user a caller is, when it may read no one else (a customer);
    # None is an admin, another service or the local operator.
    ada = await usecases.sign_up(uow(store), hasher, ADA, NOON)
    bob = await usecases.sign_up(
        uow(store), hasher, SignUp("bob@example.com", "p" * 8, "Bob"), NOON
    )
    assert await usecases.get_user(uow(store), ada.id, restricted_to=ada.id) == ada
    assert await usecases.get_user(uow(store), ada.id, restricted_to=None) == ada
    with pytest.raises(ReadUserDenied) as caught:
        await usecases.get_user(uow(store), ada.id, restricted_to=bob.id)
    assert (caught.value.reason, caught.value.metadata) == (
        "NOT_RESOURCE_OWNER",
        {"user": ada.name},
    )
    # Denied before existence is checked: a missing user looks the same to a stranger.
    with pytest.raises(ReadUserDenied):
        await usecases.get_user(uow(store), "unone", restricted_to=bob.id)
    with pytest.raises(UserNotFound):
        await usecases.get_user(uow(store), "unone", restricted_to=None)


async def test_access_tokens_verify_against_the_published_keys_until_they_expire(
    store: FakeStore, hasher: FakePasswordHasher, signer: JwtTokenSigner
) -> None:
    user = await usecases.sign_up(uow(store), hasher, ADA, NOON)
    tokens = await log_in(store, hasher, signer)
    assert await verified(store, tokens.access_token) == Caller.user(user.name, ["customer"])
    for token, now in [
        ("not.a.jwt", NOON),
        (tokens.access_token[:-4] + "AAAA", NOON),
        (tokens.access_token, tokens.access_token_expire_time),
    ]:
        with pytest.raises(Unauthenticated):
            await verified(store, token, now)


async def test_rotated_keys_keep_verifying_until_their_tokens_have_expired(
    store: FakeStore, hasher: FakePasswordHasher, signer: JwtTokenSigner
) -> None:
    await usecases.sign_up(uow(store), hasher, ADA, NOON)
    old_key = await usecases.ensure_signing_key(uow(store), signer, NOON)
    tokens = await log_in(store, hasher, signer)
    rotation = NOON + timedelta(minutes=1)
    new_key = await usecases.rotate_signing_keys(uow(store), signer, rotation)

    keys = await usecases.get_jwks(uow(store), LIFETIMES, rotation)
    assert [k.kid for k in keys] == [new_key.kid, old_key.kid]
    old_jwk = next(k.public_jwk for k in keys if k.kid == old_key.kid)
    claims = jwt.decode(
        tokens.access_token,
        jwt.PyJWK(dict(old_jwk)),
        algorithms=["ES256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == tokens.user
    assert (await verified(store, tokens.access_token, rotation)).subject == tokens.user

    later = await log_in(store, hasher, signer, rotation)
    assert jwt.get_unverified_header(later.access_token)["kid"] == new_key.kid

    # Once every token the old key signed has expired, the key leaves the set.
    gone = rotation + LIFETIMES.access
    assert [k.kid for k in await usecases.get_jwks(uow(store), LIFETIMES, gone)] == [new_key.kid]


async def test_ensure_signing_key_makes_one_key_once(
    store: FakeStore, signer: JwtTokenSigner
) -> None:
    first = await usecases.ensure_signing_key(uow(store), signer, NOON)
    second = await usecases.ensure_signing_key(uow(store), signer, NOON + timedelta(hours=1))
    assert first == second
    assert list(store.keys) == [first.kid]


async def test_grant_role_needs_a_known_user(store: FakeStore) -> None:
    with pytest.raises(UserNotFound):
        await usecases.grant_role(uow(store), "nobody@example.com", "admin")
