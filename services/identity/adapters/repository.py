"""SQLAlchemy (Core) implementations of identity's repositories."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from identity.adapters.orm import refresh_tokens, signing_keys, token_families, users
from identity.domain.errors import EmailAlreadyRegistered
from identity.domain.model import RefreshTokenRecord, SigningKey, TokenFamily, User
from identity.domain.ports import RefreshTokenRepository, SigningKeyRepository, UserRepository

_USER_BY_ID = sa.select(users).where(users.c.id == sa.bindparam("user_id"))
_USER_BY_EMAIL_KEY = sa.select(users).where(users.c.email_key == sa.bindparam("email_key"))


class SqlAlchemyUserRepository(UserRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, user_id: str) -> User | None:
        row = (await self._connection.execute(_USER_BY_ID, {"user_id": user_id})).first()
        return None if row is None else _user(row)

    async def get_by_email(self, email_key: str) -> User | None:
        row = (await self._connection.execute(_USER_BY_EMAIL_KEY, {"email_key": email_key})).first()
        return None if row is None else _user(row)

    async def add(self, user: User) -> None:
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    sa.insert(users).values(
                        id=user.id,
                        email=user.email,
                        email_key=user.email_key,
                        display_name=user.display_name,
                        password_hash=user.password_hash,
                        roles=" ".join(user.roles),
                        create_time=user.create_time,
                    )
                )
        except IntegrityError:
            raise EmailAlreadyRegistered(user.email) from None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._connection.execute(
            sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    async def set_roles(self, user_id: str, roles: Sequence[str]) -> bool:
        result = await self._connection.execute(
            sa.update(users).where(users.c.id == user_id).values(roles=" ".join(sorted(roles)))
        )
        return bool(result.rowcount)


class SqlAlchemyRefreshTokenRepository(RefreshTokenRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add_family(self, family: TokenFamily) -> None:
        await self._connection.execute(
            sa.insert(token_families).values(
                id=family.id,
                user_id=family.user_id,
                create_time=family.create_time,
                expire_time=family.expire_time,
                revoke_time=family.revoke_time,
            )
        )

    async def get_family(self, family_id: str) -> TokenFamily | None:
        row = (
            await self._connection.execute(
                sa.select(token_families).where(token_families.c.id == family_id)
            )
        ).first()
        if row is None:
            return None
        return TokenFamily(
            id=row.id,
            user_id=row.user_id,
            create_time=_utc(row.create_time),
            expire_time=_utc(row.expire_time),
            revoke_time=None if row.revoke_time is None else _utc(row.revoke_time),
        )

    async def revoke_family(self, family_id: str, now: datetime) -> None:
        await self._connection.execute(
            sa.update(token_families)
            .where(token_families.c.id == family_id, token_families.c.revoke_time.is_(None))
            .values(revoke_time=now)
        )

    async def add(self, token: RefreshTokenRecord) -> None:
        await self._connection.execute(
            sa.insert(refresh_tokens).values(
                token_hash=token.token_hash,
                family_id=token.family_id,
                used=token.used,
                create_time=token.create_time,
            )
        )

    async def find(self, token_hash: str) -> RefreshTokenRecord | None:
        row = (
            await self._connection.execute(
                sa.select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
            )
        ).first()
        if row is None:
            return None
        return RefreshTokenRecord(
            token_hash=row.token_hash,
            family_id=row.family_id,
            create_time=_utc(row.create_time),
            used=bool(row.used),
        )

    async def mark_used(self, token_hash: str) -> bool:
        # On PostgreSQL a concurrent transaction doing the same waits for our row lock,
        # then re-checks `used` against the committed row and updates nothing. On SQLite
        # writers are serialized by BEGIN IMMEDIATE, so the second one reads used = true.
        result = await self._connection.execute(
            sa.update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used.is_(False))
            .values(used=True)
        )
        return result.rowcount == 1


class SqlAlchemySigningKeyRepository(SigningKeyRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, key: SigningKey) -> None:
        await self._connection.execute(
            sa.insert(signing_keys).values(
                kid=key.kid,
                algorithm=key.algorithm,
                private_key=key.private_key_pem,
                public_jwk=json.dumps(dict(key.public_jwk), sort_keys=True),
                create_time=key.create_time,
                retire_time=key.retire_time,
            )
        )

    async def current(self) -> SigningKey | None:
        row = (
            await self._connection.execute(
                sa.select(signing_keys)
                .where(signing_keys.c.retire_time.is_(None))
                .order_by(signing_keys.c.create_time.desc(), signing_keys.c.kid)
                .limit(1)
            )
        ).first()
        return None if row is None else _signing_key(row)

    async def verifying(self, retired_after: datetime) -> list[SigningKey]:
        current_first = sa.case((signing_keys.c.retire_time.is_(None), 0), else_=1)
        rows = await self._connection.execute(
            sa.select(signing_keys)
            .where(
                sa.or_(
                    signing_keys.c.retire_time.is_(None),
                    signing_keys.c.retire_time > retired_after,
                )
            )
            .order_by(
                current_first,
                signing_keys.c.create_time.desc(),
                signing_keys.c.kid,
            )
        )
        return [_signing_key(row) for row in rows]

    async def retire_all_except(self, kid: str, now: datetime) -> int:
        result = await self._connection.execute(
            sa.update(signing_keys)
            .where(signing_keys.c.retire_time.is_(None), signing_keys.c.kid != kid)
            .values(retire_time=now)
        )
        return int(result.rowcount)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _user(row: sa.Row[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        password_hash=row.password_hash,
        roles=tuple(row.roles.split()),
        create_time=_utc(row.create_time),
    )


def _signing_key(row: sa.Row[Any]) -> SigningKey:
    return SigningKey(
        kid=row.kid,
        algorithm=row.algorithm,
        private_key_pem=row.private_key,
        public_jwk=json.loads(row.public_jwk),
        create_time=_utc(row.create_time),
        retire_time=None if row.retire_time is None else _utc(row.retire_time),
    )
