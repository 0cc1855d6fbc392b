"""The PostgreSQL fixtures hand out working databases that do not leak into each other."""

import os
import socket
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.postgres import (
    PostgresUnavailable,
    TemporaryCluster,
    create_database,
    drop_database,
    handle_unavailable,
    run_blocking,
    wait_until_ready,
)


async def _scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql))).scalar_one()
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_fresh_database_answers_select_one(fresh_postgres_database: str) -> None:
    assert await _scalar(fresh_postgres_database, "select 1") == 1
    current = await _scalar(fresh_postgres_database, "select current_database()")
    assert current == make_url(fresh_postgres_database).database


@pytest.mark.postgres
async def test_two_fresh_databases_are_distinct(postgres_url: str) -> None:
    first = await create_database(postgres_url)
    second = await create_database(postgres_url)
    try:
        assert make_url(first).database != make_url(second).database
        engine = create_async_engine(first)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("create table shelves (name text primary key)"))
        finally:
            await engine.dispose()
        assert await _scalar(first, "select to_regclass('shelves') is not null") is True
        assert await _scalar(second, "select to_regclass('shelves') is not null") is False
    finally:
        await drop_database(postgres_url, first)
        await drop_database(postgres_url, second)


@pytest.mark.postgres
async def test_a_dropped_database_is_gone_even_with_a_connection_left_open(
    postgres_url: str,
) -> None:
    url = await create_database(postgres_url)
    name = make_url(url).database
    forgotten = create_async_engine(url)
    async with forgotten.connect() as connection:
        await connection.execute(text("select 1"))  # returns the connection to the pool, open
    await drop_database(postgres_url, url)
    await forgotten.dispose()
    exists = f"select count(*) from pg_database where datname = '{name}'"
    assert await _scalar(postgres_url, exists) == 0


async def test_database_url_gives_a_writable_database(database_url: str, tmp_path: Path) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("create table shelves (name text primary key)"))
            await connection.execute(text("insert into shelves values ('shelves/fiction')"))
        async with engine.connect() as connection:
            names = (await connection.execute(text("select name from shelves"))).scalars().all()
    finally:
        await engine.dispose()
    assert names == ["shelves/fiction"]
    if make_url(database_url).get_backend_name() == "sqlite":
        assert Path(str(make_url(database_url).database)).parent == tmp_path


@pytest.mark.postgres
def test_a_temporary_cluster_leaves_nothing_behind_when_stopped() -> None:
    try:
        cluster = TemporaryCluster.start()
    except PostgresUnavailable as exc:
        handle_unavailable(str(exc), os.environ)
    try:
        assert make_url(cluster.url).host == "127.0.0.1"
        assert run_blocking(lambda: _scalar(cluster.url, "show fsync")) == "off"
        assert run_blocking(lambda: _scalar(cluster.url, "show listen_addresses")) == "127.0.0.1"
    finally:
        cluster.stop()
    assert not cluster.base.exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", cluster.port)) != 0
    with pytest.raises(PostgresUnavailable):
        run_blocking(lambda: wait_until_ready(cluster.url, timeout_s=0.5))
