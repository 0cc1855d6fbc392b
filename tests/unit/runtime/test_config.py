"""Server settings come from the environment, with defaults, and every bad value is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import (
    DEFAULT_PORTS,
    ConfigError,
    ServerSettings,
    load_server_settings,
    peer_address,
)


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = load_server_settings("catalog", environ={})

    assert settings == ServerSettings(
        service="catalog",
        host="127.0.0.1",
        port=50052,
        data_dir=Path("var"),
        database_url="sqlite+aiosqlite:///var/catalog.db",
        auto_migrate=True,
        log_level="INFO",
        grace_seconds=10.0,
        max_concurrent_rpcs=1000,
        readiness_interval=2.0,
    )


def test_every_service_has_its_own_default_port() -> None:
    ports = {name: load_server_settings(name, environ={}).port for name in DEFAULT_PORTS}

    assert ports == DEFAULT_PORTS
    assert len(set(ports.values())) == len(ports)


def test_a_service_without_a_default_port_picks_a_free_one() -> None:
    assert load_server_settings("scratch", environ={}).port == 0


def test_every_variable_is_read() -> None:
    settings = load_server_settings(
        "orders",
        environ={
            "AGORA_HOST": "0.0.0.0",
            "AGORA_PORT": "6000",
            "AGORA_DATA_DIR": "/srv/agora",
            "DATABASE_URL": "sqlite+aiosqlite:///elsewhere.db",
            "AGORA_AUTO_MIGRATE": "off",
            "AGORA_LOG_LEVEL": "debug",
            "AGORA_GRACE_SECONDS": "2.5",
            "AGORA_MAX_CONCURRENT_RPCS": "7",
            "AGORA_READINESS_INTERVAL": "0.25",
            "AGORA_MAX_MESSAGE_BYTES": "65536",
            "AGORA_RATE_LIMIT_PER_SECOND": "0",
            "AGORA_RATE_LIMIT_BURST": "5",
        },
    )

    assert settings == ServerSettings(
        service="orders",
        host="0.0.0.0",
        port=6000,
        data_dir=Path("/srv/agora"),
        database_url="sqlite+aiosqlite:///elsewhere.db",
        auto_migrate=False,
        log_level="DEBUG",
        grace_seconds=2.5,
        max_concurrent_rpcs=7,
        readiness_interval=0.25,
        max_message_bytes=65536,
        rate_limit_per_second=0.0,
        rate_limit_burst=5,
    )


def test_the_default_database_lives_in_the_data_dir() -> None:
    settings = load_server_settings("payments", environ={"AGORA_DATA_DIR": "/tmp/shop"})

    assert settings.database_url == "sqlite+aiosqlite:////tmp/shop/payments.db"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("Yes", True), (" ON ", True), ("0", False), ("False", False)],
)
def test_auto_migrate_accepts_the_usual_spellings(raw: str, expected: bool) -> None:
    assert load_server_settings("catalog", environ={"AGORA_AUTO_MIGRATE": raw}).auto_migrate is (
        expected
    )


def test_an_empty_value_means_the_default() -> None:
    settings = load_server_settings("catalog", environ={"AGORA_PORT": "", "DATABASE_URL": ""})

    assert settings.port == 50052
    assert settings.database_url == "sqlite+aiosqlite:///var/catalog.db"


def test_grace_seconds_may_be_zero_but_the_readiness_interval_may_not() -> None:
    assert load_server_settings("catalog", environ={"AGORA_GRACE_SECONDS": "0"}).grace_seconds == 0
    with pytest.raises(ConfigError, match="AGORA_READINESS_INTERVAL"):
        load_server_settings("catalog", environ={"AGORA_READINESS_INTERVAL": "0"})


def test_all_bad_values_are_reported_together_in_one_error() -> None:
    bad = {
        "AGORA_PORT": "70000",
        "DATABASE_URL": "mysql://shop@db/shop",
        "AGORA_AUTO_MIGRATE": "maybe",
        "AGORA_LOG_LEVEL": "LOUD",
        "AGORA_GRACE_SECONDS": "-1",
        "AGORA_MAX_CONCURRENT_RPCS": "0",
        "AGORA_READINESS_INTERVAL": "soon",
    }

    with pytest.raises(ConfigError) as raised:
        load_server_settings("catalog", environ=bad)

    message = str(raised.value)
    for name, value in bad.items():
        assert f"{name}={value!r}" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGORA_PORT", "-1"),
        ("AGORA_PORT", "http"),
        ("AGORA_GRACE_SECONDS", "nan"),
        ("AGORA_MAX_CONCURRENT_RPCS", "1.5"),
        ("AGORA_MAX_CONCURRENT_RPCS", "-3"),
        ("AGORA_READINESS_INTERVAL", "-0.1"),
        ("DATABASE_URL", "sqlite:///no-async-driver.db"),
    ],
)
def test_a_single_bad_value_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_server_settings("catalog", environ={name: value})


def test_a_plain_postgresql_url_gets_the_asyncpg_driver() -> None:
    settings = load_server_settings(
        "catalog", environ={"DATABASE_URL": "postgresql://shop:secret@db:5432/catalog"}
    )

    assert settings.database_url == "postgresql+asyncpg://shop:secret@db:5432/catalog"


def test_an_asyncpg_url_is_kept_as_it_is() -> None:
    url = "postgresql+asyncpg://shop@db/catalog?ssl=require"

    assert load_server_settings("catalog", environ={"DATABASE_URL": url}).database_url == url


def test_peers_default_to_their_port_on_loopback() -> None:
    assert peer_address("inventory", environ={}) == "127.0.0.1:50053"


def test_a_peer_address_can_be_overridden() -> None:
    environ = {"AGORA_PAYMENTS_ADDR": "payments.shop.svc:443"}

    assert peer_address("payments", environ=environ) == "payments.shop.svc:443"
    assert peer_address("orders", environ=environ) == "127.0.0.1:50054"
