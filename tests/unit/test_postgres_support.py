"""PostgreSQL tests skip when the server is missing, unless CI requires them."""

import pytest

from tests.support.postgres import (
    asyncpg_url,
    drop_database,
    handle_unavailable,
    postgres_is_required,
    unavailable_outcome,
)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "skip"),
        ({"AGORA_REQUIRE_POSTGRES": ""}, "skip"),
        ({"AGORA_REQUIRE_POSTGRES": "0"}, "skip"),
        ({"AGORA_REQUIRE_POSTGRES": "no"}, "skip"),
        ({"AGORA_REQUIRE_POSTGRES": "1"}, "fail"),
        ({"AGORA_REQUIRE_POSTGRES": " TRUE "}, "fail"),
        ({"AGORA_REQUIRE_POSTGRESQL": "1"}, "skip"),
    ],
)
def test_unavailable_postgres_fails_only_when_required(
    environ: dict[str, str], expected: str
) -> None:
    assert unavailable_outcome(environ) == expected
    assert postgres_is_required(environ) is (expected == "fail")


def test_a_missing_server_skips_with_the_reason() -> None:
    with pytest.raises(pytest.skip.Exception, match="initdb not found"):
        handle_unavailable("initdb not found", {})


def test_a_missing_server_fails_with_the_reason_when_required() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"required .*initdb not found"):
        handle_unavailable("initdb not found", {"AGORA_REQUIRE_POSTGRES": "1"})


def test_a_plain_postgres_url_gets_the_asyncpg_driver() -> None:
    url = asyncpg_url("postgresql://shop:s3cret@db.internal:6543/agora")
    assert url == "postgresql+asyncpg://shop:s3cret@db.internal:6543/agora"


def test_a_non_postgres_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        asyncpg_url("sqlite+aiosqlite:///shop.db")


async def test_the_maintenance_database_is_never_dropped() -> None:
    base = "postgresql+asyncpg://postgres@127.0.0.1:1/postgres"
    with pytest.raises(ValueError, match="refusing to drop"):
        await drop_database(base, base)
