"""``actortoken-store audit``: output formats, filters, paging and prune."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from actortoken_store.cli.audit import parse_duration, parse_instant
from actortoken_store.cli.main import main
from actortoken_store.model import ActorToken
from actortoken_store.repository import ActorTokenRepository
from tests.conftest import fixture_file, load_jsonl

Run = Callable[..., tuple[int, str, str]]
"""Run ``actortoken-store audit`` with arguments; return exit code, stdout, stderr."""


@pytest.fixture
def run(database_url: sqlalchemy.URL, capsys: pytest.CaptureFixture[str]) -> Run:
    url = database_url.render_as_string(hide_password=False)

    def invoke(*arguments: str) -> tuple[int, str, str]:
        code = main(["--database-url", url, "audit", *arguments])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


@pytest.fixture
def imported(repo: ActorTokenRepository, session: Session) -> list[dict[str, Any]]:
    records = load_jsonl("actor_tokens.jsonl")
    with repo.audit_context(source="import"):
        repo.save_many(ActorToken.from_clerk(record) for record in records)
    session.commit()
    return records


@pytest.mark.parametrize(
    ("arguments", "header"),
    [
        (["actors", "--format", "csv"], "actor_sub,issued,accepted,revoked,pending,users"),
        (["actor", "user_x", "--format", "csv"], "token_id,user_id,actor_sub,issued_at,status"),
        (["user", "user_x"], "token_id  user_id  actor_sub  issued_at  status"),
        (
            ["token", "act_x", "--format", "csv"],
            "id,token_id,from_status,to_status,issued_at,occurred_at,recorded_at,source,"
            "actor_sub,actor,user_id,context",
        ),
        (["stale"], "token_id  user_id  actor_sub  created_at  age_seconds"),
    ],
)
def test_empty_prints_header(
    run: Run, clean_engine: Engine, arguments: list[str], header: str
) -> None:
    code, out, _ = run(*arguments)
    assert code == 0
    assert out.splitlines() == [out.splitlines()[0]]
    assert out.startswith(header)


def test_empty_json_prints_nothing(run: Run, clean_engine: Engine) -> None:
    code, out, _ = run("actors", "--format", "json")
    assert code == 0
    assert out == ""


def test_actor_json_lines(run: Run, imported: list[dict[str, Any]]) -> None:
    sub = imported[0]["actor"]["sub"]
    expected = {record["id"] for record in imported if record["actor"]["sub"] == sub}
    code, out, _ = run("actor", sub, "--format", "json", "--limit", "1000")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert {row["token_id"] for row in rows} == expected
    assert all(row["issued_at"].endswith("Z") for row in rows)
    assert all(row["status"] in {"pending", "accepted", "revoked"} for row in rows)


def test_user_filters_csv(run: Run, imported: list[dict[str, Any]]) -> None:
    user = imported[0]["user_id"]
    since = datetime(2025, 7, 1, tzinfo=UTC)
    expected = {
        record["id"]
        for record in imported
        if record["user_id"] == user
        and record["status"] == "revoked"
        and record["created_at"] >= since.timestamp() * 1000
    }
    code, out, _ = run(
        "user", user, "--status", "revoked", "--since", "2025-07-01", "--format", "csv"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {row["token_id"] for row in rows} == expected


def test_paging_with_after(run: Run, imported: list[dict[str, Any]]) -> None:
    code, first, err = run("actors", "--limit", "2", "--format", "json")
    assert code == 0
    match = re.search(r"--after (\S+)", err)
    assert match is not None
    code, second, _ = run("actors", "--limit", "100", "--after", match.group(1), "--format", "json")
    subs = [json.loads(line)["actor_sub"] for line in (first + second).splitlines()]
    expected = sorted({record["actor"]["sub"] for record in imported})
    assert subs == expected


def test_token_timeline(run: Run, imported: list[dict[str, Any]]) -> None:
    token_id = str(imported[0]["id"])
    code, out, _ = run("token", token_id, "--format", "json")
    assert code == 0
    [creation] = [json.loads(line) for line in out.splitlines()]
    assert creation["from_status"] is None
    assert creation["to_status"] == imported[0]["status"]
    assert creation["source"] == "import"
    assert creation["context"] == {}
    assert creation["actor"] == imported[0]["actor"]
    assert creation["issued_at"] is not None


def test_stale_with_now(run: Run, imported: list[dict[str, Any]]) -> None:
    now = datetime(2025, 12, 2, tzinfo=UTC)
    cutoff = (now - timedelta(days=30)).timestamp() * 1000
    expected = [
        record["id"]
        for record in sorted(imported, key=lambda record: (record["created_at"], record["id"]))
        if record["status"] == "pending" and record["created_at"] < cutoff
    ]
    code, out, _ = run(
        "stale",
        "--older-than",
        "30d",
        "--now",
        "2025-12-02T00:00:00Z",
        "--format",
        "json",
        "--limit",
        "1000",
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["token_id"] for row in rows] == expected
    assert all(row["age_seconds"] >= 30 * 86400 for row in rows)


def test_prune_prints_count(run: Run, imported: list[dict[str, Any]]) -> None:
    code, out, _ = run("prune", "--before", "2100-01-01")
    assert code == 0
    assert out.strip() == (
        f"deleted {len(imported)} events that occurred before 2100-01-01T00:00:00.000Z"
    )


@pytest.mark.parametrize(
    "arguments",
    [
        ["actors", "--since", "2025-13-01"],
        ["actors", "--since", "2025-12-01T08:00:00"],
        ["stale", "--older-than", "soon"],
        ["actors", "--limit", "0"],
        ["user", "user_x", "--status", "expired"],
        ["prune"],
    ],
)
def test_bad_arguments_exit_2(run: Run, arguments: list[str]) -> None:
    code, _, err = run(*arguments)
    assert code == 2
    assert "error:" in err


def test_bad_cursor_exit_2(run: Run, clean_engine: Engine) -> None:
    code, _, err = run("actors", "--after", "garbage")
    assert code == 2
    assert "invalid cursor" in err


def test_parse_instant_forms() -> None:
    assert parse_instant("2025-12-01") == datetime(2025, 12, 1, tzinfo=UTC)
    assert parse_instant("2025-12-01T08:00:00Z") == datetime(2025, 12, 1, 8, tzinfo=UTC)
    assert parse_instant("2025-12-01T10:00:00+02:00") == datetime(2025, 12, 1, 8, tzinfo=UTC)


def test_parse_duration_units() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("2w") == timedelta(weeks=2)


def test_import_then_actors(database_url: sqlalchemy.URL, run: Run, clean_engine: Engine) -> None:
    url = database_url.render_as_string(hide_password=False)
    for name in ("actor_tokens.jsonl", "lifecycles.jsonl"):
        assert main(["--database-url", url, "import", str(fixture_file(name))]) == 0

    final: dict[str, dict[str, Any]] = {}
    for record in load_jsonl("actor_tokens.jsonl") + load_jsonl("lifecycles.jsonl"):
        known = final.get(record["id"])
        if known is None or (known["status"] == "pending" and record["status"] != "pending"):
            final[record["id"]] = record
    expected: dict[str, dict[str, int]] = {}
    for record in final.values():
        counts = expected.setdefault(
            record["actor"]["sub"], {"issued": 0, "accepted": 0, "revoked": 0, "pending": 0}
        )
        counts["issued"] += 1
        counts[record["status"]] += 1

    code, out, err = run("actors", "--format", "json")
    assert code == 0, err
    # The import's own summary may reach the captured stdout late, so keep the JSON lines.
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    actual = {
        row["actor_sub"]: {name: row[name] for name in ("issued", "accepted", "revoked", "pending")}
        for row in rows
    }
    assert actual == expected
    code, out, _ = run("token", load_jsonl("lifecycles.jsonl")[0]["id"], "--format", "json")
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [event["source"] for event in events] == ["import", "import"]
