"""The ``keys``, ``purge`` and ``show --reveal`` commands, and ``db upgrade -x``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from actortoken_store import migrate
from actortoken_store.cli.main import main
from actortoken_store.cli.purge import parse_age
from actortoken_store.config import create_engine
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.secrets import ENV_KEYS, Keyring, SecretsMode, SecretsPolicy, format_key
from tests.conftest import TEST_KEYS, fixture_file, load_jsonl
from tests.servers import throwaway_database

NEW_KEY = ("new-key", bytes(range(200, 232)))


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


Run = Callable[..., CliResult]


@pytest.fixture
def run(
    database_url: sqlalchemy.URL, clean_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> Run:
    """Run the command line against the test database; tables are emptied afterwards."""
    url = database_url.render_as_string(hide_password=False)

    def run_cli(*argv: str) -> CliResult:
        code = main(["--database-url", url, *argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run_cli


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        value: int = connection.execute(text(sql)).scalar_one()
    return value


def test_keys_generate_parses(run: Run) -> None:
    result = run("keys", "generate", "--id", "k2027")
    assert result.code == 0, result.err
    keyring = Keyring.parse(result.out.strip())
    assert keyring.key_ids == ("k2027",)
    assert "keys rotate" in result.err


def test_keys_generate_default_id(run: Run) -> None:
    first = run("keys", "generate")
    second = run("keys", "generate")
    assert first.out.startswith("key-")
    assert first.out != second.out


def test_keys_generate_bad_id(run: Run) -> None:
    result = run("keys", "generate", "--id", "no spaces")
    assert result.code == 2
    assert result.err.strip().splitlines()[-1].startswith("actortoken-store: error: invalid key id")


def test_keys_rotate_reencrypts(
    run: Run, clean_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    encrypted = count(
        clean_engine, "SELECT count(*) FROM actor_tokens WHERE ticket_key_id IS NOT NULL"
    )
    assert encrypted > 0

    monkeypatch.setenv(ENV_KEYS, f"{format_key(*NEW_KEY)},{TEST_KEYS}")
    result = run("keys", "rotate", "--batch-size", "50")

    assert result.code == 0, result.err
    assert result.out == f"re-encrypted {encrypted} tickets under key 'new-key'\n"
    new_only = SecretsPolicy(SecretsMode.ENCRYPT, Keyring([NEW_KEY]), keep_terminal_tickets=True)
    with Session(clean_engine) as session:
        repo = ActorTokenRepository(session, secrets=new_only)
        for record in load_jsonl("actor_tokens.jsonl"):
            assert repo.get_one(record["id"]).token == record["token"]


def test_keys_rotate_unknown_key(
    run: Run, clean_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    monkeypatch.setenv(ENV_KEYS, format_key(*NEW_KEY))
    result = run("keys", "rotate")
    assert result.code == 1
    assert result.out == "re-encrypted 0 tickets under key 'new-key'\n"
    assert "stay under key 'test-key-1', which is not configured" in result.err


def test_keys_rotate_needs_keys(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEYS)
    result = run("keys", "rotate")
    assert result.code == 2
    assert "needs at least one key" in result.err


def test_purge_dry_run_then_purge(run: Run, clean_engine: Engine) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    # Every fixture token changed in 2025 and every pending ticket has expired since.
    dry = run("purge", "--older-than", "90d", "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.startswith("would purge 308 actor tokens last changed before ")
    assert count(clean_engine, "SELECT count(*) FROM actor_tokens") == 308

    purged = run("purge", "--older-than", "90d", "--batch-size", "100")
    assert purged.code == 0, purged.err
    assert purged.out.startswith("purged 308 actor tokens")
    assert count(clean_engine, "SELECT count(*) FROM actor_tokens") == 0


def test_purge_keeps_recent(run: Run, clean_engine: Engine) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    result = run("purge", "--older-than", "5000w")
    assert result.out.startswith("purged 0 actor tokens")
    assert count(clean_engine, "SELECT count(*) FROM actor_tokens") == 308


@pytest.mark.parametrize("age", ["90", "d", "1.5d", "90y", ""])
def test_purge_bad_age(run: Run, age: str) -> None:
    result = run("purge", "--older-than", age)
    assert result.code == 2
    assert f"invalid age {age!r}" in result.err


def test_purge_negative_age(run: Run) -> None:
    result = run("purge", "--older-than", "-3d")
    assert result.code == 2
    assert "--older-than" in result.err


@pytest.mark.parametrize(
    ("text", "days"), [("90d", 90), ("2w", 14), (" 36h ", 1.5), ("30m", 30 / 1440)]
)
def test_parse_age(text: str, days: float) -> None:
    assert parse_age(text).total_seconds() == pytest.approx(days * 86400)


def test_show_reveal(run: Run) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    record = next(r for r in load_jsonl("actor_tokens.jsonl") if r["status"] == "pending")

    masked = run("show", record["id"])
    assert record["token"] not in masked.out
    assert "expires_at  2025-" in masked.out

    revealed = run("show", "--reveal", record["id"])
    assert revealed.code == 0
    assert f"token       {record['token']}\n" in revealed.out
    assert f"url         {record['url']}\n" in revealed.out
    assert "--reveal" in revealed.err
    assert record["token"] not in revealed.err

    as_json = json.loads(run("show", "--json", "--reveal", record["id"]).out)
    assert as_json == record


def test_maintenance_output_hides_tickets(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    records = load_jsonl("actor_tokens.jsonl")
    outputs = [
        run("import", str(fixture_file("actor_tokens.jsonl"))),
        run("purge", "--older-than", "1d", "--dry-run"),
    ]
    monkeypatch.setenv(ENV_KEYS, f"{format_key(*NEW_KEY)},{TEST_KEYS}")
    outputs.append(run("keys", "rotate"))
    text_out = "\n".join(result.out + result.err for result in outputs)
    for record in records:
        if record["token"]:
            assert record["token"].split(".")[2][:24] not in text_out


@pytest.fixture
def old_database(admin_url: sqlalchemy.URL) -> Iterator[str]:
    """A database at the revision before tickets were encrypted, holding one ticket."""
    with throwaway_database(admin_url) as url:
        url_text = url.render_as_string(hide_password=False)
        migrate.upgrade(migrate.make_config(url_text), "0001")
        record = next(r for r in load_jsonl("actor_tokens.jsonl") if r["status"] == "pending")
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO actor_tokens (id, status, user_id, actor, token, url, "
                        "created_at, updated_at) VALUES (:id, 'pending', :user_id, "
                        "CAST(:actor AS jsonb), :token, :url, now(), now())"
                    ),
                    {**record, "actor": json.dumps(record["actor"])},
                )
        finally:
            engine.dispose()
        yield url_text


def test_db_upgrade_drop_tickets(
    old_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV_KEYS)

    refused = main(["--database-url", old_database, "db", "upgrade"])
    captured = capsys.readouterr()
    assert refused == 2
    last_line = captured.err.strip().splitlines()[-1]
    assert "1 stored actor tokens hold a ticket" in last_line
    assert "-x drop_tickets=true" in last_line

    accepted = main(["--database-url", old_database, "db", "upgrade", "-x", "drop_tickets=true"])
    captured = capsys.readouterr()
    assert accepted == 0, captured.err
    assert "moved from revision 0001 to" in captured.out


def test_list_unconfigured_key(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    record = next(r for r in load_jsonl("actor_tokens.jsonl") if r["status"] == "pending")
    monkeypatch.setenv(ENV_KEYS, format_key(*NEW_KEY))

    listed = run("list", "--user", record["user_id"])
    as_json = json.loads(run("list", "--json", "--user", record["user_id"]).out)

    assert listed.code == 0, listed.err
    row = next(line for line in listed.out.splitlines() if record["id"] in line)
    assert row.endswith("unavailable")
    item = next(item for item in as_json["items"] if item["id"] == record["id"])
    assert item["ticket"] == "unavailable"
    assert item["token"] is None


def test_show_unconfigured_key(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    record = next(r for r in load_jsonl("actor_tokens.jsonl") if r["status"] == "pending")
    monkeypatch.setenv(ENV_KEYS, format_key(*NEW_KEY))

    masked = run("show", record["id"])
    revealed = run("show", "--reveal", record["id"])

    assert masked.code == 0, masked.err
    assert "token       (unavailable" in masked.out
    assert "is unavailable" in masked.err
    assert revealed.code == 2
    assert "test-key-1" in revealed.err
    assert record["token"] not in revealed.out + revealed.err
