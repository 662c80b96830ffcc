"""The ``actortoken-store`` command line against a real PostgreSQL database.

Most tests call `main` in the test process with ``--database-url`` set to the test
database; one runs the installed console script in a subprocess.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from actortoken_store.cli import database as cli_database
from actortoken_store.cli.main import main
from actortoken_store.config import DatabaseChoice
from actortoken_store.migrate import head
from actortoken_store.model import ActorToken
from actortoken_store.repository import ActorTokenRepository
from tests.conftest import fixture_file, load_jsonl

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPOSITORY_ROOT / "examples" / "actor_tokens.jsonl"


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


Run = Callable[..., CliResult]


@pytest.fixture
def url_text(database_url: sqlalchemy.URL) -> str:
    return database_url.render_as_string(hide_password=False)


@pytest.fixture
def run(url_text: str, clean_engine: Engine, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run the command line against the test database; tables are emptied afterwards."""

    def run_cli(*argv: str) -> CliResult:
        code = main(["--database-url", url_text, *argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run_cli


def stored_tokens(engine: Engine) -> list[ActorToken]:
    with Session(engine) as session:
        rows = session.execute(text("SELECT id FROM actor_tokens ORDER BY id")).scalars().all()
        repository = ActorTokenRepository(session)
        return [repository.get_one(token_id) for token_id in rows]


def counts(output: str) -> dict[str, int]:
    found = {}
    for line in output.splitlines():
        name, _, value = line.partition(": ")
        if name in {"inserted", "updated", "unchanged", "conflict", "rejected"}:
            found[name] = int(value)
    return found


def expected_counts(**changes: int) -> dict[str, int]:
    result = dict.fromkeys(["inserted", "updated", "unchanged", "conflict", "rejected"], 0)
    result.update(changes)
    return result


def list_json(run: Run, user_id: str, *extra: str) -> dict[str, Any]:
    result = run("list", "--user", user_id, "--json", *extra)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def secret_fragments(records: list[dict[str, Any]]) -> list[str]:
    """Pieces of every ticket that masked output must not contain."""
    fragments = []
    for record in records:
        if record["token"]:
            _, payload, signature = record["token"].split(".")
            fragments += [payload[:24], signature[:24], signature[-24:]]
    return fragments


def test_import_fixture_then_again(run: Run) -> None:
    first = run("import", str(fixture_file("actor_tokens.jsonl")))
    assert first.code == 0, first.err
    assert counts(first.out) == expected_counts(inserted=308)

    second = run("import", str(fixture_file("actor_tokens.jsonl")))
    assert second.code == 0, second.err
    assert counts(second.out) == expected_counts(unchanged=308)


def test_import_names_database_on_stderr(run: Run, url_text: str) -> None:
    result = run("import", str(EXAMPLES))
    assert result.code == 0
    assert "using PostgreSQL at postgresql+psycopg://" in result.err
    assert "given as argument" in result.err


def test_password_hidden_on_stderr(
    database_url: sqlalchemy.URL, clean_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    # Trust authentication ignores a password, so a made-up one still connects.
    password = database_url.password or "not-a-real-password-7361"
    url = database_url.set(password=password).render_as_string(hide_password=False)
    code = main(["--database-url", url, "list", "--user", "user_nobody"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "***" in captured.err
    assert str(password) not in captured.err + captured.out


def test_list_every_user_newest_first(run: Run) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    records = load_jsonl("actor_tokens.jsonl")
    users = sorted({record["user_id"] for record in records})
    assert len(users) == 25
    for user_id in users:
        mine = [record for record in records if record["user_id"] == user_id]
        mine.sort(key=lambda record: (record["created_at"], record["id"]), reverse=True)
        page = list_json(run, user_id, "--limit", "1000")
        assert [item["id"] for item in page["items"]] == [record["id"] for record in mine]
        assert page["next_cursor"] is None


def test_list_pages_with_cursor(run: Run) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    records = load_jsonl("actor_tokens.jsonl")
    user_id = max(
        {record["user_id"] for record in records},
        key=lambda user: sum(record["user_id"] == user for record in records),
    )
    everything = list_json(run, user_id, "--limit", "1000")["items"]
    assert len(everything) > 7

    seen: list[str] = []
    cursor: str | None = None
    while True:
        extra = ["--limit", "3"] + (["--after", cursor] if cursor else [])
        page = list_json(run, user_id, *extra)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [item["id"] for item in everything]


def test_list_status_filter_and_text(run: Run) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    records = load_jsonl("actor_tokens.jsonl")
    user_id = records[0]["user_id"]
    pending = [r for r in records if r["user_id"] == user_id and r["status"] == "pending"]

    page = list_json(run, user_id, "--status", "pending", "--limit", "1000")
    assert {item["id"] for item in page["items"]} == {record["id"] for record in pending}

    result = run("list", "--user", user_id, "--limit", "2")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["CREATED_AT", "STATUS", "ID", "ACTOR", "TICKET"]
    assert len(lines) == 4
    assert lines[-1].startswith("next cursor: ")


def test_global_options_after_command(
    url_text: str, clean_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(EXAMPLES), "--database-url", url_text]) == 0
    assert counts(capsys.readouterr().out) == expected_counts(inserted=30)

    # A value after the command overrides the one before it.
    unreachable = "postgresql://postgres@127.0.0.1:9/none"
    argv = ["--database-url", unreachable, "show", "--database-url", url_text, "--json"]
    assert main([*argv, "act_2SM5ezopYdFKo2sjLFbzOCvBRUv"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["id"] == "act_2SM5ezopYdFKo2sjLFbzOCvBRUv"
    assert "127.0.0.1:9" not in captured.err

    assert main(["db", "current", "--database-url", url_text, "--schema", "absent_schema"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("none")
    assert "schema 'absent_schema'" in captured.err


def test_list_unknown_user(run: Run) -> None:
    result = run("list", "--user", "user_nobody")
    assert result.code == 0
    assert result.out == "no actor tokens for user 'user_nobody'\n"


def test_camel_file_same_rows(run: Run, clean_engine: Engine) -> None:
    result = run("import", str(fixture_file("actor_tokens_camel.json")))
    assert result.code == 0, result.err
    assert counts(result.out) == expected_counts(inserted=20)

    twins = [ActorToken.from_clerk(record) for record in load_jsonl("actor_tokens.jsonl")[:20]]
    assert stored_tokens(clean_engine) == sorted(twins, key=lambda token: token.id)

    snake = run("import", str(fixture_file("actor_tokens.jsonl")))
    assert counts(snake.out) == expected_counts(inserted=288, unchanged=20)


def test_bad_lines_reported_good_stored(run: Run, clean_engine: Engine, tmp_path: Path) -> None:
    records = load_jsonl("actor_tokens.jsonl")[:5]
    lines = [json.dumps(record) for record in records]
    lines.insert(1, json.dumps({**records[0], "id": "act_bad_status", "status": "expired"}))
    lines.insert(3, lines[2][:50])
    lines.insert(5, "[1, 2]")
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run("import", str(path))
    assert result.code == 1
    assert counts(result.out) == expected_counts(inserted=5, rejected=3)
    rejected = [line for line in result.out.splitlines() if line.startswith(f"{path}:")]
    assert rejected == [
        f"{path}:2: invalid actor token: status: 'expired' is not one of 'pending', "
        "'accepted', 'revoked'",
        f"{path}:4: invalid actor token: <record>: not valid JSON: "
        "Invalid control character (line 4, column 51)",
        f"{path}:6: invalid actor token: <record>: expected a JSON object, got an array",
    ]
    assert {token.id for token in stored_tokens(clean_engine)} == {r["id"] for r in records}


def test_strict_stores_nothing(run: Run, clean_engine: Engine, tmp_path: Path) -> None:
    records = load_jsonl("actor_tokens.jsonl")
    lines = [json.dumps(record) for record in records]
    lines.insert(250, '{"object": "actor_token"}')
    path = tmp_path / "strict.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run("import", "--strict", "--batch-size", "100", str(path))
    assert result.code == 1
    assert counts(result.out) == expected_counts(rejected=1)
    assert f"{path}:251: invalid actor token: id: missing" in result.out
    assert "nothing was stored" in result.out
    assert stored_tokens(clean_engine) == []


def test_strict_all_valid_stores_all(run: Run, clean_engine: Engine) -> None:
    result = run(
        "import", "--strict", "--batch-size", "50", str(fixture_file("actor_tokens.jsonl"))
    )
    assert result.code == 0, result.err
    assert counts(result.out) == expected_counts(inserted=308)
    assert len(stored_tokens(clean_engine)) == 308


def test_batch_size_does_not_change_result(run: Run, clean_engine: Engine) -> None:
    result = run("import", "--batch-size", "7", str(fixture_file("lifecycles.jsonl")))
    assert result.code == 0, result.err
    # Each token in the file has exactly one accepted or revoked snapshot: its final state.
    finals = {
        record["id"]: record
        for record in load_jsonl("lifecycles.jsonl")
        if record["status"] != "pending"
    }
    stored = {token.id: token for token in stored_tokens(clean_engine)}
    assert stored == {token_id: ActorToken.from_clerk(r) for token_id, r in finals.items()}


def test_import_gzip_and_stdin(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokens.jsonl.gz"
    path.write_bytes(gzip.compress(EXAMPLES.read_bytes()))
    result = run("import", str(path))
    assert result.code == 0, result.err
    assert counts(result.out) == expected_counts(inserted=30)

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(EXAMPLES.read_bytes())))
    again = run("import", "-")
    assert again.code == 0, again.err
    assert counts(again.out) == expected_counts(unchanged=30)


def test_show_masks_secrets(run: Run) -> None:
    assert run("import", str(fixture_file("actor_tokens.jsonl"))).code == 0
    record = next(
        r for r in load_jsonl("actor_tokens.jsonl") if r["token"] and r["actor"].get("iss")
    )

    shown = run("show", record["id"])
    assert shown.code == 0
    assert f"token       {record['token'][:10]}…(redacted, {len(record['token'])} chars)" in (
        shown.out
    )
    assert f"url         {record['url'][:10]}…(redacted, {len(record['url'])} chars)" in shown.out

    as_json = json.loads(run("show", "--json", record["id"]).out)
    expected = {
        **record,
        "token": f"{record['token'][:10]}…(redacted, {len(record['token'])} chars)",
        "url": f"{record['url'][:10]}…(redacted, {len(record['url'])} chars)",
    }
    assert as_json == expected


def test_no_ticket_in_any_output(run: Run, tmp_path: Path) -> None:
    records = load_jsonl("actor_tokens.jsonl")
    broken = [{**record, "status": "unknown"} for record in records[:20]]
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(json.dumps(record) for record in broken), encoding="utf-8")

    outputs = [run("import", str(fixture_file("actor_tokens.jsonl"))), run("import", str(path))]
    for record in records[:12]:
        outputs.append(run("show", record["id"]))
        outputs.append(run("show", "--json", record["id"]))
    # The JSON pages of all users contain every stored token once.
    users = sorted({record["user_id"] for record in records})
    for user_id in users:
        outputs.append(run("list", "--user", user_id, "--limit", "1000", "--json"))
    for user_id in users[:5]:
        outputs.append(run("list", "--user", user_id, "--limit", "1000"))

    text_out = "\n".join(result.out + result.err for result in outputs)
    fragments = secret_fragments(records)
    assert fragments
    for fragment in fragments:
        assert fragment not in text_out


def test_show_missing_id(run: Run) -> None:
    result = run("show", "act_missing")
    assert result.code == 2
    assert result.out == ""
    assert (
        result.err.splitlines()[-1]
        == "actortoken-store: error: actor token 'act_missing' not found"
    )
    assert "Traceback" not in result.err


def test_missing_file_one_line(run: Run, tmp_path: Path) -> None:
    result = run("import", str(tmp_path / "absent.jsonl"))
    assert result.code == 2
    assert result.err.splitlines() == [
        f"actortoken-store: error: cannot open '{tmp_path / 'absent.jsonl'}': "
        "No such file or directory"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list"], "the following arguments are required: --user"),
        (["list", "--user", "u", "--limit", "many"], "argument --limit: invalid int value"),
        (["list", "--user", "u", "--status", "gone"], "argument --status: invalid choice"),
        (["import", "x", "--batch-size", "0"], "must be at least 1, got 0"),
        (["frobnicate"], "argument COMMAND: invalid choice"),
        (["db"], "the following arguments are required: DB_COMMAND"),
    ],
)
def test_bad_arguments_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1
    assert message in captured.err


def test_invalid_limit_and_cursor(run: Run) -> None:
    for extra, message in [
        (["--limit", "0"], "limit must be an integer from 1 to 1000, got 0"),
        (["--after", "not-a-cursor"], "invalid cursor 'not-a-cursor'"),
    ]:
        result = run("list", "--user", "u", *extra)
        assert result.code == 2
        assert message in result.err.splitlines()[-1]


def test_connection_failure_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Port 9 (discard) has no PostgreSQL listening on the loopback interface.
    code = main(["--database-url", "postgresql://postgres@127.0.0.1:9/none", "show", "act_x"])
    captured = capsys.readouterr()
    assert code == 2
    last = captured.err.splitlines()[-1]
    assert last.startswith(
        "actortoken-store: error: failed to connect to postgresql+psycopg://postgres@127.0.0.1:9/none"
    )
    assert "Traceback" not in captured.err


def test_unsupported_url_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", "mysql://root@localhost/x", "show", "act_x"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "actortoken-store: error: unsupported database URL scheme 'mysql': actortoken-store "
        "needs PostgreSQL through psycopg 3, so use one of postgresql://, postgres://, "
        "postgresql+psycopg:// or postgresql+psycopg_async://"
    ]


@pytest.fixture
def spare_schema(clean_engine: Engine) -> Iterator[str]:
    """A schema name that does not exist yet; dropped with its contents afterwards."""
    name = "cli_test_schema"
    yield name
    with clean_engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def test_missing_schema_not_migrated(run: Run, spare_schema: str, clean_engine: Engine) -> None:
    result = run("--schema", spare_schema, "list", "--user", "u")
    assert result.code == 2
    assert result.err.splitlines()[-1].endswith("run 'actortoken-store db upgrade' first")
    with clean_engine.connect() as connection:
        assert spare_schema not in sqlalchemy.inspect(connection).get_schema_names()


def test_db_check_unmigrated(run: Run, spare_schema: str) -> None:
    result = run("--schema", spare_schema, "db", "check")
    assert result.code == 2
    assert "run 'actortoken-store db upgrade'" in result.err
    assert "revision none" in result.err


def test_other_revision_not_migrated(
    run: Run, url_text: str, spare_schema: str, clean_engine: Engine
) -> None:
    assert run("--schema", spare_schema, "db", "upgrade").code == 0
    with clean_engine.begin() as connection:
        connection.execute(
            text(f'UPDATE "{spare_schema}".actortoken_store_version SET version_num = :v'),
            {"v": "0000_other"},
        )

    result = run("--schema", spare_schema, "list", "--user", "u")
    assert result.code == 2
    assert result.err.splitlines()[-1].endswith(
        f"is at revision 0000_other, but this version of actortoken-store needs revision "
        f"{head()}; run 'actortoken-store db upgrade'"
    )


def test_db_upgrade_current_check_downgrade(
    url_text: str, spare_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def db(*argv: str) -> CliResult:
        code = main(["--database-url", url_text, "--schema", spare_schema, "db", *argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    revision = head()
    assert db("current").out.startswith("none")
    upgraded = db("upgrade")
    assert upgraded.code == 0, upgraded.err
    assert upgraded.out == f"schema '{spare_schema}' moved from revision none to {revision}\n"
    assert db("current").out == f"{revision} (head)\n"
    assert db("check").code == 0
    assert db("upgrade").out == f"schema '{spare_schema}' stays at revision {revision}\n"

    main(["--database-url", url_text, "--schema", spare_schema, "import", str(EXAMPLES)])
    assert counts(capsys.readouterr().out) == expected_counts(inserted=30)

    downgraded = db("downgrade", "base")
    assert downgraded.code == 0, downgraded.err
    assert downgraded.out == f"schema '{spare_schema}' moved from revision {revision} to none\n"
    assert db("check").code == 2


def test_db_upgrade_sql_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--sql"]) == 0
    captured = capsys.readouterr()
    assert "CREATE TABLE public.actor_tokens" in captured.out
    assert "no database is contacted" in captured.err


def test_embedded_default_upgrades_itself(
    url_text: str,
    spare_schema: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Stand in for the embedded server with the test database, so the schema check takes
    # the branch for a database that the store owns.
    choice = DatabaseChoice(sqlalchemy.make_url(url_text), "embedded")
    monkeypatch.setattr(cli_database, "resolve_database", lambda explicit: choice)

    assert main(["--schema", spare_schema, "import", str(EXAMPLES)]) == 0
    captured = capsys.readouterr()
    assert f"upgraded the embedded database's schema '{spare_schema}' to revision" in captured.err
    assert counts(captured.out) == expected_counts(inserted=30)

    assert (
        main(["--schema", spare_schema, "list", "--user", "user_2BviyOb0TWZzPC0aIvHoAV2ajC5"]) == 0
    )
    captured = capsys.readouterr()
    assert "upgraded" not in captured.err
    assert len(captured.out.splitlines()) == 12


def test_console_script_smoke(url_text: str, clean_engine: Engine) -> None:
    script = shutil.which("actortoken-store", path=str(Path(sys.executable).parent))
    assert script is not None, "the actortoken-store console script is not installed"
    environment = {**os.environ, "ACTORTOKEN_STORE_DATABASE_URL": url_text}

    imported = subprocess.run(
        [script, "import", str(EXAMPLES)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert counts(imported.stdout) == expected_counts(inserted=30)
    assert "from ACTORTOKEN_STORE_DATABASE_URL" in imported.stderr

    listed = subprocess.run(
        [script, "list", "--user", "user_2BviyOb0TWZzPC0aIvHoAV2ajC5"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 12


def test_closed_pipe_keeps_status(url_text: str, clean_engine: Engine, tmp_path: Path) -> None:
    script = shutil.which("actortoken-store", path=str(Path(sys.executable).parent))
    assert script is not None, "the actortoken-store console script is not installed"
    path = _mixed_file(tmp_path)
    environment = {**os.environ, "ACTORTOKEN_STORE_DATABASE_URL": url_text}

    process = subprocess.Popen(
        [script, "import", "--quiet", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    assert process.stdout is not None
    process.stdout.readline()
    process.stdout.close()
    _, err = process.communicate(timeout=60)

    assert process.returncode == 1, err
    assert b"Traceback" not in err


def test_closed_pipe_strict_status(
    url_text: str, clean_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())

    code = main(
        ["--database-url", url_text, "import", "--quiet", "--strict", str(_mixed_file(tmp_path))]
    )

    assert code == 1


def _mixed_file(tmp_path: Path) -> Path:
    records = load_jsonl("actor_tokens.jsonl")[:3]
    lines = [json.dumps(record) for record in records] + ['{"id": "act_bad"}'] * 300
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_import_lists_conflicts(run: Run, tmp_path: Path) -> None:
    record = next(r for r in load_jsonl("actor_tokens.jsonl") if r["status"] == "accepted")
    other_user = {**record, "user_id": "user_someone_else"}
    path = tmp_path / "conflicts.jsonl"
    path.write_text(
        "\n".join(json.dumps(item) for item in [record, other_user, other_user]),
        encoding="utf-8",
    )

    result = run("import", "--quiet", str(path))

    assert result.code == 0
    assert counts(result.out)["conflict"] == 2
    assert f"conflicts.jsonl:2: not applied: the snapshot of {record['id']}" in result.out
    assert "conflicts.jsonl:3: not applied" in result.out


def test_import_strict_progress_count(run: Run, tmp_path: Path) -> None:
    records = load_jsonl("actor_tokens.jsonl")[:10]
    path = tmp_path / "strict.jsonl"
    lines = ['{"id": "act_bad"}'] + [json.dumps(record) for record in records]
    path.write_text("\n".join(lines), encoding="utf-8")

    result = run("import", "--strict", str(path))

    assert result.code == 1
    assert "read 11 records in" in result.err


def test_import_one_record_wording(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(load_jsonl("actor_tokens.jsonl")[0]), encoding="utf-8")

    result = run("import", str(path))

    assert "read 1 record in" in result.err
