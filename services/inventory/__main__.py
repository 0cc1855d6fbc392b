"""``python -m inventory`` serves inventory; ``python -m inventory migrate`` only migrates."""

from __future__ import annotations

import asyncio
import sys

from inventory.bootstrap import MIGRATIONS, build
from inventory.config import load_inventory_settings
from runtime import db
from runtime.config import ConfigError, load_server_settings
from runtime.server import run


async def _migrate() -> None:
    settings = load_server_settings("inventory")
    engine = db.create_engine(settings.database_url)
    try:
        await db.migrate(engine, MIGRATIONS)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    if sys.argv[1:] == ["migrate"]:
        asyncio.run(_migrate())
    elif sys.argv[1:]:
        sys.exit("usage: python -m inventory [migrate]")
    else:
        try:
            load_inventory_settings()  # fail fast, as run() does for the server settings
        except ConfigError as error:
            print(f"inventory: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        run("inventory", build)
