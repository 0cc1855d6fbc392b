"""Identity's use cases: one async function each, over the ports in :mod:`ports`.

Password hashing is slow on purpose, so it never runs inside a transaction: a use case
reads what it needs, hashes or verifies outside, then writes in a short transaction.
Mutating use cases that take a request id record it in the same transaction as their
write (AIP-155).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from identity.domain.commands import Login, RefreshTokens, SignUp
from identity.domain.errors import (
    InvalidCredentials,
    ReadUserDenied,
    RefreshTokenExpired,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RefreshTokenRevoked,
    UserNotFound,
    request_id_reused,
)
from identity.domain.events import UserSignedUp
from identity.domain.model import (
    CUSTOMER,
    MAX_REFRESH_TOKEN,
    AccessToken,
    IssuedTokens,
    RefreshTokenRecord,
    SigningKey,
    TokenFamily,
    TokenLifetimes,
    User,
    email_key,
    hash_refresh_token,
    new_refresh_token,
    user_name,
)
from identity.domain.ports import PasswordHasher, TokenSigner, UnitOfWork
from runtime import idempotency


def new_id(prefix: str) -> str:
    """A server-assigned id that satisfies the id rules: a letter, then hex digits."""
    return f"{prefix}{uuid.uuid4().hex}"


async def sign_up(uow: UnitOfWork, hasher: PasswordHasher, command: SignUp, now: datetime) -> User:
    """Creates a customer and publishes :class:`UserSignedUp`; a replay publishes nothing."""
    password_hash = await hasher.hash(command.password)
    async with uow.writing():
        replay = await idempotency.replay(uow.requests, command.idempotency, "sign_up")
        if replay is None:
            user = User(
                id=new_id("u"),
                email=command.email,
                display_name=command.display_name,
                password_hash=password_hash,
                roles=(CUSTOMER,),
                create_time=now,
            )
            await uow.users.add(user)
            uow.emit(UserSignedUp(user))
            await idempotency.record(uow.requests, command.idempotency, "sign_up", user.name)
            await uow.commit()
            return user
        first = await _require_user(uow, replay.resource.removeprefix("users/"))
    # The fingerprint leaves the password out (see SignUp); compare it here instead.
    if not await hasher.verify(first.password_hash, command.password):
        raise request_id_reused(replay.request_id, replay.operation)
    return first


async def login(
    uow: UnitOfWork,
    hasher: PasswordHasher,
    signer: TokenSigner,
    lifetimes: TokenLifetimes,
    command: Login,
    now: datetime,
) -> IssuedTokens:
    """Checks the credentials and starts a new token family.

    An unknown email address costs the same password verification as a wrong password,
    so neither the answer nor its timing tells them apart.
    """
    async with uow.reading():
        user = await uow.users.get_by_email(email_key(command.email))
    if user is None:
        await hasher.verify_nothing(command.password)
        raise InvalidCredentials()
    if not await hasher.verify(user.password_hash, command.password):
        raise InvalidCredentials()
    # The password is at hand only now: upgrade a hash made with other parameters than today's.
    new_hash = None
    if hasher.needs_rehash(user.password_hash):
        new_hash = await hasher.hash(command.password)
    async with uow.writing():
        if new_hash is not None:
            await uow.users.set_password_hash(user.id, new_hash)
        family = TokenFamily(
            id=uuid.uuid4().hex,
            user_id=user.id,
            create_time=now,
            expire_time=now + lifetimes.refresh,
        )
        await uow.tokens.add_family(family)
        issued = await _issue(uow, signer, lifetimes, user, family, now)
        await uow.commit()
    return issued


async def refresh_tokens(
    uow: UnitOfWork,
    signer: TokenSigner,
    lifetimes: TokenLifetimes,
    command: RefreshTokens,
    now: datetime,
) -> IssuedTokens:
    """Rotates a refresh token; a token presented a second time revokes its whole family."""
    if len(command.refresh_token) > MAX_REFRESH_TOKEN:
        raise RefreshTokenInvalid()
    token_hash = hash_refresh_token(command.refresh_token)
    async with uow.writing():
        record = await uow.tokens.find(token_hash)
        if record is None:
            raise RefreshTokenInvalid()
        family = await uow.tokens.get_family(record.family_id)
        if family is None:
            raise RefreshTokenInvalid()
        if family.revoked:
            raise RefreshTokenRevoked()
        if family.expired(now):
            raise RefreshTokenExpired()
        # mark_used is a compare-and-set: a concurrent refresh of the same token that read
        # it as unused still loses here, and counts as reuse.
        if record.used or not await uow.tokens.mark_used(token_hash):
            await uow.tokens.revoke_family(family.id, now)
            await uow.commit()
            raise RefreshTokenReused()
        user = await uow.users.get(family.user_id)
        if user is None:
            raise RefreshTokenInvalid()
        issued = await _issue(uow, signer, lifetimes, user, family, now)
        await uow.commit()
    return issued


async def get_user(uow: UnitOfWork, user_id: str, *, restricted_to: str | None) -> User:
    """The user, if the caller may read it.

    Args:
        restricted_to: the id of the user the caller is, when it may read no one else;
            None for a caller that may read every user (an admin, another service).

    Raises:
        ReadUserDenied: the caller is restricted to another user, whether or not this one
            exists: permission first, so a denied caller cannot learn who has an account.
        UserNotFound: for a caller that may read every user.
    """
    if restricted_to is not None and restricted_to != user_id:
        raise ReadUserDenied(user_name(user_id))
    async with uow.reading():
        return await _require_user(uow, user_id)


async def get_jwks(uow: UnitOfWork, lifetimes: TokenLifetimes, now: datetime) -> list[SigningKey]:
    """The current key, then retired keys whose tokens may still be valid, newest first."""
    async with uow.reading():
        return await uow.keys.verifying(retired_after=now - lifetimes.access)


async def ensure_signing_key(uow: UnitOfWork, signer: TokenSigner, now: datetime) -> SigningKey:
    """The current signing key, made and stored first if there is none (the first start)."""
    async with uow.writing():
        key = await _current_key(uow, signer, now)
        await uow.commit()
    return key


async def rotate_signing_keys(uow: UnitOfWork, signer: TokenSigner, now: datetime) -> SigningKey:
    """Makes a new current key; the previous ones retire and keep verifying their tokens."""
    key = signer.new_key(now)
    async with uow.writing():
        await uow.keys.add(key)
        await uow.keys.retire_all_except(key.kid, now)
        await uow.commit()
    return key


async def grant_role(uow: UnitOfWork, email: str, role: str) -> User:
    """Adds ``role`` to the user with ``email`` (an operator's task; no RPC does this)."""
    async with uow.writing():
        user = await uow.users.get_by_email(email_key(email))
        if user is None:
            raise UserNotFound(email)
        roles = tuple(sorted({*user.roles, role}))
        await uow.users.set_roles(user.id, roles)
        await uow.commit()
    return replace(user, roles=roles)


async def _issue(
    uow: UnitOfWork,
    signer: TokenSigner,
    lifetimes: TokenLifetimes,
    user: User,
    family: TokenFamily,
    now: datetime,
) -> IssuedTokens:
    refresh_token = new_refresh_token()
    await uow.tokens.add(
        RefreshTokenRecord(hash_refresh_token(refresh_token), family.id, create_time=now)
    )
    # Whole seconds, so the response's expiry is exactly the token's `exp` claim.
    issue_time = now.replace(microsecond=0)
    claims = AccessToken(user.id, user.roles, issue_time, issue_time + lifetimes.access)
    key = await _current_key(uow, signer, now)
    return IssuedTokens(
        user_id=user.id,
        access_token=signer.sign(claims, key),
        access_token_expire_time=claims.expire_time,
        refresh_token=refresh_token,
        refresh_token_expire_time=family.expire_time,
    )


async def _current_key(uow: UnitOfWork, signer: TokenSigner, now: datetime) -> SigningKey:
    key = await uow.keys.current()
    if key is None:
        # Two processes starting at once may both get here; both keys are then current,
        # both are published and both verify, and the next rotation retires both.
        key = signer.new_key(now)
        await uow.keys.add(key)
    return key


async def _require_user(uow: UnitOfWork, user_id: str) -> User:
    user = await uow.users.get(user_id)
    if user is None:
        raise UserNotFound(user_name(user_id))
    return user
