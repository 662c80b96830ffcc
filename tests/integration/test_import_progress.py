"""The import command's progress line: only on a terminal, never with --quiet."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Engine

from actortoken_store.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "actor_tokens.jsonl"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _import(url: sqlalchemy.URL, *options: str) -> int:
    server = url.render_as_string(hide_password=False)
    return main(["--database-url", server, "import", "--batch-size", "5", *options, str(EXAMPLES)])


def test_progress_on_terminal(
    database_url: sqlalchemy.URL,
    clean_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    assert _import(database_url) == 0

    drawn = terminal.getvalue()
    assert "\r[" in drawn
    assert "records/s" in drawn
    assert "ETA" in drawn
    assert "\r\x1b[K" in drawn
    assert "read 30 records in" in drawn
    assert "inserted: 30" in capsys.readouterr().out


def test_progress_quiet_on_terminal(
    database_url: sqlalchemy.URL,
    clean_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    assert _import(database_url, "--quiet") == 0

    assert "\r" not in terminal.getvalue()
    assert "records/s" not in terminal.getvalue()
    assert "inserted: 30" in capsys.readouterr().out


def test_progress_none_without_terminal(
    database_url: sqlalchemy.URL, clean_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _import(database_url) == 0

    captured = capsys.readouterr()
    assert "\r" not in captured.err
    assert "read 30 records in" in captured.err
    assert "inserted: 30" in captured.out
