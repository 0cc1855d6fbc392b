"""``python -m identity`` serves identity; other subcommands are operator tasks.

python -m identity                        serve
python -m identity migrate                apply pending migrations only
python -m identity rotate-keys            make a new signing key; older ones keep
                                          verifying the tokens they signed
python -m identity grant-role EMAIL ROLE  give a user a role, such as admin
"""

from __future__ import annotations

import asyncio
import functools
import sys

from identity.adapters.tokens import JwtTokenSigner
from identity.adapters.unit_of_work import SqlAlchemyUnitOfWork
from identity.bootstrap import MIGRATIONS, build, utc_now
from identity.config import load_identity_settings
from identity.domain import usecases
from identity.domain.model import KNOWN_ROLES
from runtime import db
from runtime.config import ConfigError, load_server_settings
from runtime.errors import AgoraError
from runtime.server import migrate_database, run

USAGE = "usage: python -m identity [migrate | rotate-keys | grant-role EMAIL ROLE]"


async def _rotate_keys() -> None:
    settings = load_server_settings("identity")
    engine = db.create_engine(settings.database_url)
    try:
        if settings.auto_migrate:
            await db.migrate(engine, MIGRATIONS)
        key = await usecases.rotate_signing_keys(
            SqlAlchemyUnitOfWork(engine), JwtTokenSigner(), utc_now()
        )
    finally:
        await engine.dispose()
    print(f"new signing key {key.kid}; previous keys retired and still verifying")


async def _grant_role(email: str, role: str) -> None:
    settings = load_server_settings("identity")
    engine = db.create_engine(settings.database_url)
    try:
        user = await usecases.grant_role(SqlAlchemyUnitOfWork(engine), email, role)
    finally:
        await engine.dispose()
    print(f"{user.name} now has roles {' '.join(user.roles)}")


def main(argv: list[str]) -> None:
    try:
        if argv == ["migrate"]:
            asyncio.run(migrate_database("identity", MIGRATIONS))
        elif argv == ["rotate-keys"]:
            asyncio.run(_rotate_keys())
        elif len(argv) == 3 and argv[0] == "grant-role" and argv[2] in KNOWN_ROLES:
            asyncio.run(_grant_role(argv[1], argv[2]))
        elif argv:
            sys.exit(USAGE + "\n  roles: " + ", ".join(sorted(KNOWN_ROLES)))
        else:
            identity = load_identity_settings()
            run("identity", functools.partial(build, identity=identity))
    except ConfigError as error:
        print(f"identity: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except AgoraError as error:
        print(f"identity: {error.message}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main(sys.argv[1:])
