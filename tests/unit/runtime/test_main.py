"""``python -m <service> [migrate]``: argument handling and exit statuses of runtime.server.main."""

from __future__ import annotations

import pytest

from runtime.config import ServerSettings
from runtime.server import Service, main


async def _never_built(settings: ServerSettings) -> Service:
    raise AssertionError("main must not build the service here")


def test_an_unknown_argument_prints_the_usage() -> None:
    with pytest.raises(SystemExit) as stopped:
        main("catalog", _never_built, "catalog.adapters:migrations", ["bogus"])
    assert stopped.value.code == "usage: python -m catalog [migrate]"


@pytest.mark.parametrize("argv", [[], ["migrate"]])
def test_a_bad_setting_exits_2_naming_it(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGORA_PORT", "not-a-port")
    with pytest.raises(SystemExit) as stopped:
        main("catalog", _never_built, "catalog.adapters:migrations", argv)
    assert stopped.value.code == 2
    assert "AGORA_PORT='not-a-port'" in capsys.readouterr().err
