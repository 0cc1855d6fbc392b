"""A service's database for integration tests: migrated, and compared with its metadata.

::

    @pytest.fixture
    async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
        async with migrated_engine(database_url, MIGRATIONS) as engine:
            yield engine

    async def test_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
        assert await schema_differences(engine, metadata) == []
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime import db


@contextlib.asynccontextmanager
async def migrated_engine(url: str, migrations: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``url`` with every migration in ``migrations`` applied; disposed on exit."""
    engine = db.create_engine(url)
    await db.migrate(engine, migrations)
    try:
        yield engine
    finally:
        await engine.dispose()


async def schema_differences(engine: AsyncEngine, metadata: sa.MetaData) -> list[object]:
    """How the migrated database differs from ``metadata`` (Alembic autogenerate's diff)."""

    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)
