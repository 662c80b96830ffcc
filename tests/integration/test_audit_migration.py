"""The revision that adds the events: backfill, downgrade, and upgrade again on data."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from actortoken_store import migrate
from actortoken_store.config import create_engine
from tests.conftest import load_jsonl
from tests.servers import throwaway_database


def _events_revision() -> tuple[str, str]:
    """Return the id of the revision that adds the events table, and of its parent."""
    script = ScriptDirectory.from_config(migrate.make_config())
    for revision in script.walk_revisions():
        if "actor_token_events" in (revision.doc or ""):
            assert isinstance(revision.down_revision, str)
            return revision.revision, revision.down_revision
    raise AssertionError("no revision adds actor_token_events")


@pytest.fixture
def empty_url(admin_url: sqlalchemy.URL) -> Iterator[str]:
    with throwaway_database(admin_url) as url:
        yield url.render_as_string(hide_password=False)


def _insert_fixture_tokens(connection: Connection) -> None:
    """Insert the fixture tokens with plain SQL, as a database of the parent revision holds."""
    connection.execute(
        text(
            "INSERT INTO actor_tokens (id, status, user_id, actor, created_at, updated_at) "
            "SELECT r.id, r.status::actor_token_status, r.user_id, r.actor, "
            "to_timestamp(r.created_at / 1000.0), to_timestamp(r.updated_at / 1000.0) "
            "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r("
            "id text, status text, user_id text, actor jsonb, "
            "created_at bigint, updated_at bigint)"
        ),
        {"rows": json.dumps(load_jsonl("actor_tokens.jsonl"))},
    )


def _tokens(connection: Connection) -> list[Any]:
    return list(connection.execute(text("SELECT * FROM actor_tokens ORDER BY id")))


def _events(connection: Connection) -> list[tuple[Any, ...]]:
    rows = connection.execute(
        text(
            "SELECT token_id, user_id, actor_sub, actor, from_status, to_status, issued_at, "
            "occurred_at, source, context FROM actor_token_events ORDER BY id"
        )
    )
    return [tuple(row) for row in rows]


def _audit_objects(connection: Connection) -> list[str]:
    functions = connection.execute(
        text(
            "SELECT proname FROM pg_proc WHERE proname LIKE '%actor_token_events%' "
            "UNION ALL SELECT tgname FROM pg_trigger WHERE tgname LIKE 'actor_token_events%' "
            "UNION ALL SELECT relname FROM pg_class WHERE relname LIKE '%actor_token_events%'"
        )
    )
    return sorted(row[0] for row in functions)


def test_upgrade_downgrade_upgrade(empty_url: str) -> None:
    revision, parent = _events_revision()
    migrate.upgrade(migrate.make_config(empty_url), parent)
    engine = create_engine(empty_url)
    try:
        with engine.begin() as connection:
            _insert_fixture_tokens(connection)
            tokens_before = _tokens(connection)
        terminal = sum(1 for row in tokens_before if row.status != "pending")

        migrate.upgrade(migrate.make_config(empty_url), revision)
        with engine.connect() as connection:
            first = _events(connection)
            assert _tokens(connection) == tokens_before
        assert len(first) == len(tokens_before) + terminal
        assert {event[8] for event in first} == {"migration"}
        creations = [event for event in first if event[4] is None]
        assert len(creations) == len(tokens_before)
        assert all(event[5] == "pending" and event[6] == event[7] for event in creations)
        changes = {event[0]: event for event in first if event[4] is not None}
        for token in tokens_before:
            if token.status != "pending":
                assert changes[token.id][5] == token.status
                assert changes[token.id][7] == token.updated_at

        migrate.downgrade(migrate.make_config(empty_url), parent)
        with engine.connect() as connection:
            assert _tokens(connection) == tokens_before
            assert _audit_objects(connection) == []

        migrate.upgrade(migrate.make_config(empty_url), revision)
        with engine.connect() as connection:
            assert _tokens(connection) == tokens_before
            assert _events(connection) == first
    finally:
        engine.dispose()


def test_upgrade_empty_database(empty_url: str) -> None:
    revision, _ = _events_revision()
    migrate.upgrade(migrate.make_config(empty_url), revision)
    engine = create_engine(empty_url)
    try:
        with engine.connect() as connection:
            assert _events(connection) == []
            assert "prune_actor_token_events" in _audit_objects(connection)
    finally:
        engine.dispose()


def test_offline_sql_has_functions() -> None:
    config = migrate.make_config()
    buffer = io.StringIO()
    config.output_buffer = buffer
    migrate.upgrade(config, "head", sql=True)
    output = buffer.getvalue()
    assert "CREATE FUNCTION public.actor_token_events_record()" in output
    assert "CREATE TRIGGER actor_token_events_append_only" in output
