"""The importer under faults: killed connections, a killed process, damaged files.

Each test writes its input to a temporary folder, so the files can be kept for a rerun by
hand with ``--basetemp``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from actortoken_store import migrate
from actortoken_store.cli.main import main as cli_main
from actortoken_store.config import create_engine
from actortoken_store.errors import ConnectionLostError
from actortoken_store.importer import ImportReport, import_tokens
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.statements import TOKENS
from tests.servers import throwaway_database

CREATED = 1_760_000_000_000
WAIT_S = 30.0
"""Maximum wait, in seconds, for another session or process to reach an expected state."""


def _record(index: int, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "object": "actor_token",
        "id": f"act_imp_{index:07d}",
        "status": "pending",
        "user_id": f"user_{index % 50}",
        "actor": {"sub": f"user_admin_{index % 5}", "index": index},
        "token": None,
        "url": None,
        "created_at": CREATED + index,
        "updated_at": CREATED + index,
    }
    record.update(changes)
    return record


def _write_jsonl(path: Path, count: int, bad_lines: dict[int, bytes] | None = None) -> Path:
    """Write ``count`` lines of valid records, replacing the 1-based lines in ``bad_lines``."""
    bad_lines = bad_lines or {}
    with path.open("wb") as output:
        for line in range(1, count + 1):
            if line in bad_lines:
                output.write(bad_lines[line] + b"\n")
            else:
                output.write(json.dumps(_record(line)).encode() + b"\n")
    return path


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(TOKENS)).scalar_one()


def _stored_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(TOKENS.c.id)).scalars())


# --- a connection killed in the middle of an import ----------------------------------------


def _waiting_backend(engine: Engine, exclude: int) -> int:
    """Return the pid of a backend of this database that waits for a lock, or fail."""
    query = text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> :exclude"
    )
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            pid = connection.execute(query, {"exclude": exclude}).scalar()
        if pid is not None:
            return int(pid)
        time.sleep(0.02)
    pytest.fail("the import never waited for a lock")


def test_import_killed_connection_retry(clean_engine: Engine, tmp_path: Path) -> None:
    count, batch_size, blocked_line = 2000, 250, 1300
    source = _write_jsonl(tmp_path / "tokens.jsonl", count)
    sessions = sessionmaker(clean_engine)
    outcome: dict[str, Any] = {}

    def run_import() -> None:
        try:
            outcome["report"] = import_tokens(sessions, source, batch_size=batch_size)
        except BaseException as error:
            outcome["error"] = error

    # An uncommitted row with the id of one record makes the import wait in the batch
    # that contains it. The test then kills the import's connection.
    with Session(clean_engine) as holder:
        holder_pid = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
        blocker = ActorTokenRepository(holder)
        blocker.save(ActorToken.from_clerk(_record(blocked_line)))
        worker = threading.Thread(target=run_import)
        worker.start()
        pid = _waiting_backend(clean_engine, exclude=holder_pid)
        with clean_engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        worker.join(WAIT_S)
        holder.rollback()

    error = outcome.get("error")
    assert isinstance(error, ConnectionLostError), repr(outcome)
    assert error.retryable
    # Batches before the interrupted one were committed, and nothing of that batch was.
    committed = (blocked_line - 1) // batch_size * batch_size
    stored = _stored_ids(clean_engine)
    assert stored == {_record(line)["id"] for line in range(1, committed + 1)}

    report = import_tokens(sessions, source, batch_size=batch_size)

    assert report.inserted == count - committed
    assert report.unchanged == committed
    assert report.rejected == 0
    assert _count(clean_engine) == count
    with clean_engine.connect() as connection:
        events = connection.execute(
            text("SELECT count(*), count(DISTINCT token_id) FROM actor_token_events")
        ).one()
    assert tuple(events) == (count, count)


# --- a process killed in the middle of an import --------------------------------------------


def _cli(url: str, *arguments: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "actortoken_store.cli.main",
        "--database-url",
        url,
        *arguments,
    ]


NONDETERMINISTIC_COLUMNS = frozenset({"ticket_ciphertext"})
"""Columns that differ between two imports of the same input: AES-GCM uses a random nonce."""


def _rows(url: sqlalchemy.URL) -> list[dict[str, Any]]:
    """Read every stored row, sorted by id, without the columns that vary between runs."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM actor_tokens ORDER BY id")).mappings()
            return [
                {key: value for key, value in row.items() if key not in NONDETERMINISTIC_COLUMNS}
                for row in rows
            ]
    finally:
        engine.dispose()


@pytest.fixture
def two_databases(admin_url: sqlalchemy.URL) -> Iterator[tuple[sqlalchemy.URL, sqlalchemy.URL]]:
    """Two migrated throwaway databases: one for a clean import, one for an interrupted one."""
    with throwaway_database(admin_url) as clean, throwaway_database(admin_url) as interrupted:
        for url in (clean, interrupted):
            migrate.upgrade(migrate.make_config(url.render_as_string(hide_password=False)))
        yield clean, interrupted


def test_import_sigkill_rerun_same_rows(
    two_databases: tuple[sqlalchemy.URL, sqlalchemy.URL], tmp_path: Path
) -> None:
    clean_url, interrupted_url = two_databases
    count = 8_000
    source = tmp_path / "tokens.jsonl"
    with source.open("w", encoding="utf-8") as output:
        for index in range(count):
            ticket = f"ticket_{index}" if index % 3 == 0 else None
            output.write(json.dumps(_record(index, token=ticket)) + "\n")
    interrupted = interrupted_url.render_as_string(hide_password=False)
    engine = create_engine(interrupted_url, poolclass=NullPool)

    process = subprocess.Popen(
        _cli(interrupted, "import", "--batch-size", "200", str(source)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while _count(engine) == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(WAIT_S)
        killed_at = _count(engine)
    finally:
        if process.poll() is None:
            process.kill()
        engine.dispose()

    assert process.returncode == -signal.SIGKILL
    assert 0 < killed_at < count, "the import was not interrupted halfway"

    # The rerun and the clean run go in parallel, each into its own database.
    runs = [
        subprocess.Popen(
            _cli(url, "import", "--quiet", str(source)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url in (interrupted, clean_url.render_as_string(hide_password=False))
    ]
    for run in runs:
        _, errors = run.communicate(timeout=300)
        assert run.returncode == 0, errors

    clean_rows = _rows(clean_url)
    assert len(clean_rows) == count
    assert _rows(interrupted_url) == clean_rows


# --- damaged files ----------------------------------------------------------------------------


def _import(engine: Engine, source: Path, **options: Any) -> ImportReport:
    return import_tokens(sessionmaker(engine), source, **options)


def test_import_broken_corpus(clean_engine: Engine, tmp_path: Path) -> None:
    huge_actor = {"sub": "user_admin", "padding": "x" * (50 * 1024 * 1024)}
    bad_lines = {
        2: json.dumps(_record(2))[:40].encode(),
        4: json.dumps(_record(4)).encode().replace(b"user_admin", b"user_\xff\xfeadmin"),
        5: b"42",
        6: b'"a top-level string"',
        7: json.dumps(_record(7, actor=huge_actor)).encode(),
        9: b"[1, 2",
        10: b"\xc3",
        11: json.dumps(_record(11, status="expired")).encode(),
        13: b"null",
    }
    source = _write_jsonl(tmp_path / "broken.jsonl", 15, bad_lines)
    del huge_actor

    tracemalloc.start()
    try:
        report = _import(clean_engine, source, batch_size=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [rejection.line for rejection in report.rejections] == sorted(bad_lines)
    assert report.rejected == len(bad_lines)
    good = set(range(1, 16)) - set(bad_lines)
    assert report.inserted == len(good)
    assert _stored_ids(clean_engine) == {_record(line)["id"] for line in good}
    # The 50 MB line is skipped chunk by chunk, never held whole.
    assert peak < 20 * 1024 * 1024, f"peak traced memory {peak / 2**20:.1f} MiB"
    reasons = {rejection.line: rejection.reason for rejection in report.rejections}
    assert "status" in reasons[11]


def _one_bad_line_in_the_middle(engine: Engine, tmp_path: Path, count: int) -> None:
    middle = count // 2 + 1
    source = _write_jsonl(tmp_path / "many.jsonl", count, {middle: b'{"id": "act_broken",'})

    tracemalloc.start()
    try:
        report = _import(engine, source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [rejection.line for rejection in report.rejections] == [middle]
    assert report.inserted == count - 1
    assert _count(engine) == count - 1
    assert _record(middle)["id"] not in _stored_ids(engine)
    # Batches of 1000 records bound the memory, whatever the file size.
    assert peak < 40 * 1024 * 1024, f"peak traced memory {peak / 2**20:.1f} MiB"


def test_import_one_bad_line_middle(clean_engine: Engine, tmp_path: Path) -> None:
    _one_bad_line_in_the_middle(clean_engine, tmp_path, 10_000)


@pytest.mark.slow
def test_import_one_bad_line_100k(clean_engine: Engine, tmp_path: Path) -> None:
    _one_bad_line_in_the_middle(clean_engine, tmp_path, 100_000)


# --- command-line arguments that carry SQL or JSON-path syntax --------------------------------

CLI_VALUES = ["o'brien", "user_%", "_x", "back\\slash", 'say "hi"', "$.sub", "a @@ b", "x';--"]


def test_cli_metacharacter_arguments(
    clean_engine: Engine,
    database_url: sqlalchemy.URL,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The command line runs in this process. Its argv goes through the same parser as
    # from a shell, but no shell is involved, so each value arrives exactly as written.
    source = tmp_path / "odd.jsonl"
    with source.open("w", encoding="utf-8") as output:
        for index, value in enumerate(CLI_VALUES):
            record = _record(index, id=f"act_{value}", user_id=value, actor={"sub": value})
            output.write(json.dumps(record) + "\n")
        output.write(json.dumps(_record(99, id="act_plain", user_id="user_1")) + "\n")
    url = database_url.render_as_string(hide_password=False)

    assert cli_main(["--database-url", url, "import", "--quiet", str(source)]) == 0
    capsys.readouterr()

    for value in CLI_VALUES:
        assert cli_main(["--database-url", url, "list", "--user", value, "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [item["id"] for item in listed["items"]] == [f"act_{value}"]

        assert cli_main(["--database-url", url, "show", f"act_{value}"]) == 0
        assert f"act_{value}" in capsys.readouterr().out

        for query in ("actor", "user"):
            arguments = ["--database-url", url, "audit", query, value, "--format", "json"]
            assert cli_main(arguments) == 0
            lines = capsys.readouterr().out.splitlines()
            assert [json.loads(line)["token_id"] for line in lines] == [f"act_{value}"], query

    assert cli_main(["--database-url", url, "show", "act_%"]) != 0
    assert cli_main(["--database-url", url, "list", "--user", "%", "--json"]) == 0
    assert [item["id"] for item in json.loads(capsys.readouterr().out)["items"]] == []
    assert _count(clean_engine) == len(CLI_VALUES) + 1
    with Session(clean_engine) as session:
        assert ActorTokenRepository(session).get_one("act_plain").status is TokenStatus.PENDING
