"""Ages and instants on the command line: accepted forms, and one-line usage errors."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from actortoken_store.cli.main import main
from actortoken_store.cli.timeargs import parse_age, parse_duration, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20260401", datetime(2026, 4, 1, tzinfo=UTC)),
        ("2026-04-01", datetime(2026, 4, 1, tzinfo=UTC)),
        ("2026-04-01T10:00:00+02:00", datetime(2026, 4, 1, 8, tzinfo=UTC)),
        ("20260401T080000Z", datetime(2026, 4, 1, 8, tzinfo=UTC)),
    ],
)
def test_instant_forms(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01", "must lie between"),
        ("9999-12-31T23:59:59-05:00", "must lie between"),
        ("0001-01-01T00:00:00+05:00", "must lie between"),
        ("2026-04-01T08:00:00", "add an offset"),
        ("April 1", "use e.g."),
    ],
)
def test_instant_rejected(text: str, expected: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=expected):
        parse_instant(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("99999999999999d", "at most"),
        ("3000000w", "at most"),
        ("-5d", "must not be negative"),
        ("5y", "expected a whole number"),
    ],
)
def test_age_rejected(text: str, expected: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=expected):
        parse_duration(text)


def test_age_zero() -> None:
    assert parse_duration("0s") == timedelta(0)
    with pytest.raises(argparse.ArgumentTypeError, match="more than zero"):
        parse_age("0d")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["audit", "stale", "--older-than", "99999999999999d"], "at most"),
        (["audit", "stale", "--now", "0001-01-01"], "must lie between"),
        (["purge", "--older-than", "3000000w", "--dry-run"], "at most"),
        (["audit", "actors", "--since", "9999-12-31T23:59:59-05:00"], "must lie between"),
        (["purge", "--older-than", "-5d"], "must not be negative"),
        (["audit", "stale", "--older-than", "-5d"], "must not be negative"),
    ],
)
def test_cli_time_usage_error(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert len(err.strip().splitlines()) == 1
