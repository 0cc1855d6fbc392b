"""The runtime's database plumbing against real databases: SQLite files and PostgreSQL.

``database_url`` (from the shared test support) runs each test on a fresh SQLite file and
on a fresh PostgreSQL database; the PostgreSQL run is skipped where no server can start.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db import SqlAlchemyRequestLog, create_engine, migrate, ping, request_log_table
from runtime.idempotency import ConcurrentRequest, RecordedRequest

CATALOG_MIGRATIONS = "catalog.adapters:migrations"


@contextlib.asynccontextmanager
async def _engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return set(names)


async def _versions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return [row.version_num for row in rows]


@contextlib.contextmanager
def _closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port


@contextlib.contextmanager
def _silent_listener() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        port: int = sock.getsockname()[1]
        yield port


# Migrations -----------------------------------------------------------------------------


async def test_migrate_creates_the_schema_and_running_it_again_changes_nothing(
    database_url: str,
) -> None:
    async with _engine(database_url) as engine:
        await migrate(engine, CATALOG_MIGRATIONS)
        tables_after_first = await _tables(engine)
        versions_after_first = await _versions(engine)

        await migrate(engine, CATALOG_MIGRATIONS)

        assert {"categories", "products", "request_log", "alembic_version"} <= tables_after_first
        assert await _tables(engine) == tables_after_first
        assert await _versions(engine) == versions_after_first
        assert len(versions_after_first) == 1


async def test_migrations_keep_the_data_already_there(database_url: str) -> None:
    async with _engine(database_url) as engine:
        await migrate(engine, CATALOG_MIGRATIONS)
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO request_log (request_id, operation, fingerprint, resource)"
                    " VALUES ('kept', 'create_product', 'f', 'products/tea')"
                )
            )

        await migrate(engine, CATALOG_MIGRATIONS)

        async with engine.connect() as connection:
            kept = await connection.scalar(sa.text("SELECT count(*) FROM request_log"))
        assert kept == 1


@pytest.mark.postgres
async def test_concurrent_migrations_of_one_postgresql_database_take_turns(
    fresh_postgres_database: str,
) -> None:
    """Two replicas starting at once: an advisory lock makes the second wait for the first."""
    async with (
        _engine(fresh_postgres_database) as first,
        _engine(fresh_postgres_database) as second,
    ):
        await asyncio.gather(
            migrate(first, CATALOG_MIGRATIONS), migrate(second, CATALOG_MIGRATIONS)
        )

        assert len(await _versions(first)) == 1
        assert "products" in await _tables(second)


# Readiness ------------------------------------------------------------------------------


async def test_ping_is_true_for_a_database_that_answers(database_url: str) -> None:
    async with _engine(database_url) as engine:
        assert await ping(engine) is True


async def test_ping_is_false_when_nothing_listens_at_the_postgresql_address() -> None:
    with _closed_port() as port:
        async with _engine(f"postgresql+asyncpg://agora@127.0.0.1:{port}/agora") as engine:
            assert await ping(engine, 5.0) is False


async def test_ping_is_false_when_the_database_does_not_answer_in_time() -> None:
    with _silent_listener() as port:
        async with _engine(f"postgresql+asyncpg://agora@127.0.0.1:{port}/agora") as engine:
            assert await asyncio.wait_for(ping(engine, 0.2), 10.0) is False


# Request log ----------------------------------------------------------------------------


def _tea(request_id: str = "5f0c6a52-9b1e-4f57-8a57-2d3c8a4b6e10") -> RecordedRequest:
    return RecordedRequest(
        request_id=request_id,
        operation="create_product",
        fingerprint="3b5d5c3712955042212316173ccf37be",
        resource="products/assam",
    )


@contextlib.asynccontextmanager
async def _request_log_table(url: str) -> AsyncIterator[tuple[AsyncEngine, sa.Table]]:
    metadata = sa.MetaData()
    table = request_log_table(metadata)
    async with _engine(url) as engine:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        yield engine, table


async def test_a_recorded_request_is_found_again_after_commit(database_url: str) -> None:
    async with _request_log_table(database_url) as (engine, table):
        async with engine.begin() as connection:
            log = SqlAlchemyRequestLog(connection, table)
            assert await log.find(_tea().request_id) is None
            await log.add(_tea())

        async with engine.begin() as connection:
            found = await SqlAlchemyRequestLog(connection, table).find(_tea().request_id)

    assert found == _tea()


async def test_a_recorded_request_rolls_back_with_its_transaction(database_url: str) -> None:
    async with _request_log_table(database_url) as (engine, table):
        async with engine.connect() as connection:
            await connection.begin()
            await SqlAlchemyRequestLog(connection, table).add(_tea())
            await connection.rollback()

        async with engine.begin() as connection:
            assert await SqlAlchemyRequestLog(connection, table).find(_tea().request_id) is None


async def test_recording_a_request_id_twice_is_a_concurrent_request(database_url: str) -> None:
    async with _request_log_table(database_url) as (engine, table):
        async with engine.begin() as connection:
            await SqlAlchemyRequestLog(connection, table).add(_tea())

        async with engine.begin() as connection:
            log = SqlAlchemyRequestLog(connection, table)
            with pytest.raises(ConcurrentRequest) as raised:
                await log.add(_tea())
            # Only the savepoint was lost: the caller's transaction goes on.
            await log.add(_tea("a second, different id"))

        async with engine.connect() as connection:
            rows = await connection.scalar(sa.select(sa.func.count()).select_from(table))

    assert raised.value.reason == "CONCURRENT_REQUEST"
    assert raised.value.metadata == {"request_id": _tea().request_id}
    assert rows == 2
