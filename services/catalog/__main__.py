"""``python -m catalog`` serves the catalog; ``python -m catalog migrate`` only migrates."""

from __future__ import annotations

import asyncio
import sys

from catalog.bootstrap import MIGRATIONS, build
from runtime import db
from runtime.config import load_server_settings
from runtime.server import run


async def _migrate() -> None:
    settings = load_server_settings("catalog")
    engine = db.create_engine(settings.database_url)
    try:
        await db.migrate(engine, MIGRATIONS)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    if sys.argv[1:] == ["migrate"]:
        asyncio.run(_migrate())
    elif sys.argv[1:]:
        sys.exit("usage: python -m catalog [migrate]")
    else:
        run("catalog", build)
