"""Command-line options rejected before any database is contacted."""

from __future__ import annotations

import pytest

from actortoken_store.cli.main import main
from actortoken_store.secrets import ENV_KEYS


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("nonsense", "expected KEY=VALUE"),
        ("colour=blue", "unknown option 'colour'"),
        ("drop_tickets=maybe", "invalid value 'maybe' for drop_tickets"),
    ],
)
def test_db_upgrade_bad_x(option: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "-x", option]) == 2
    assert expected in capsys.readouterr().err


def test_keys_generate_empty_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "--id", ""]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "invalid key id" in captured.err


def test_keys_generate_first_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV_KEYS, raising=False)
    assert main(["keys", "generate", "--id", "first"]) == 0
    err = capsys.readouterr().err
    assert "keys rotate" not in err
    assert ENV_KEYS in err
