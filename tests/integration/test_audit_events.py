"""The event trigger, the audit context, append-only enforcement and retention."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from actortoken_store.aio import AsyncActorTokenRepository
from actortoken_store.audit import AuditSource
from actortoken_store.config import create_async_engine
from actortoken_store.errors import InvalidArgumentError
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.results import SaveOutcome

T0 = 1_764_000_000_000
"""2025-11-24T16:00:00Z in ms."""


def make_token(
    token_id: str = "act_1",
    *,
    status: TokenStatus = TokenStatus.PENDING,
    user_id: str = "user_1",
    sub: str = "user_admin",
    created_at: int = T0,
    updated_at: int | None = None,
) -> ActorToken:
    return ActorToken(
        id=token_id,
        status=status,
        user_id=user_id,
        actor={"sub": sub},
        token=None,
        url=None,
        created_at=created_at,
        updated_at=created_at if updated_at is None else updated_at,
    )


def events(session: Session, token_id: str | None = None) -> list[Any]:
    query = "SELECT * FROM actor_token_events"
    if token_id is not None:
        query += " WHERE token_id = :token_id"
    return list(session.execute(text(query + " ORDER BY id"), {"token_id": token_id}))


def test_insert_records_creation(repo: ActorTokenRepository, session: Session) -> None:
    repo.save(make_token())
    [event] = events(session)
    assert event.token_id == "act_1"
    assert event.user_id == "user_1"
    assert event.actor_sub == "user_admin"
    assert event.actor == {"sub": "user_admin"}
    assert event.from_status is None
    assert event.to_status == "pending"
    assert event.issued_at == datetime.fromtimestamp(T0 / 1000, UTC)
    assert event.occurred_at == event.issued_at
    assert event.source == "repository"
    assert event.context == {}


def test_transition_records_change(repo: ActorTokenRepository, session: Session) -> None:
    repo.save(make_token())
    repo.revoke("act_1", T0 + 5000)
    creation, change = events(session)
    assert creation.from_status is None
    assert change.from_status == "pending"
    assert change.to_status == "revoked"
    assert change.occurred_at == datetime.fromtimestamp((T0 + 5000) / 1000, UTC)
    assert change.source == "repository"


def test_save_without_change_records_nothing(repo: ActorTokenRepository, session: Session) -> None:
    repo.save(make_token())
    assert repo.save(make_token()) is SaveOutcome.UNCHANGED
    # A newer pending snapshot updates the row but not its status.
    assert repo.save(make_token(updated_at=T0 + 1000)) is SaveOutcome.UPDATED
    assert len(events(session)) == 1


def test_upsert_to_terminal_records_change(repo: ActorTokenRepository, session: Session) -> None:
    repo.save(make_token())
    repo.save(make_token(status=TokenStatus.ACCEPTED, updated_at=T0 + 2000))
    # A stale pending replay and a duplicate terminal snapshot change nothing.
    repo.save(make_token())
    repo.save(make_token(status=TokenStatus.ACCEPTED, updated_at=T0 + 2000))
    statuses = [(event.from_status, event.to_status) for event in events(session)]
    assert statuses == [(None, "pending"), ("pending", "accepted")]


def test_context_recorded(repo: ActorTokenRepository, session: Session) -> None:
    with repo.audit_context(operator="op_7", request_id="req_1", reason="support call"):
        repo.save(make_token())
        repo.accept("act_1", T0 + 1)
    for event in events(session):
        assert event.context == {
            "operator": "op_7",
            "reason": "support call",
            "request_id": "req_1",
        }
        assert event.source == "repository"


def test_context_nesting(repo: ActorTokenRepository, session: Session) -> None:
    with repo.audit_context(operator="op_7", source="import"):
        repo.save(make_token("act_1"))
        with repo.audit_context(reason="bulk fix", ticket=42):
            repo.save(make_token("act_2"))
        repo.save(make_token("act_3"))
    repo.save(make_token("act_4"))

    by_token = {event.token_id: event for event in events(session)}
    assert by_token["act_1"].context == {"operator": "op_7"}
    assert by_token["act_1"].source == "import"
    assert by_token["act_2"].context == {"operator": "op_7", "reason": "bulk fix", "ticket": 42}
    assert by_token["act_2"].source == "import"
    assert by_token["act_3"].context == {"operator": "op_7"}
    assert by_token["act_4"].context == {}
    assert by_token["act_4"].source == "repository"


def test_context_cleared_on_exit(repo: ActorTokenRepository, session: Session) -> None:
    with repo.audit_context(operator="op_7"):
        repo.save(make_token("act_1"))
    session.execute(
        text(
            "INSERT INTO actor_tokens VALUES ('act_2', 'pending', 'user_1', "
            """'{"sub": "user_admin"}', NULL, NULL, now(), now())"""
        )
    )
    raw = events(session, "act_2")[0]
    assert raw.source == "sql"
    assert raw.context == {}


def test_context_sent_again_after_commit(repo: ActorTokenRepository, session: Session) -> None:
    with repo.audit_context(operator="op_7"):
        repo.save(make_token("act_1"))
        session.commit()
        repo.save(make_token("act_2"))
        session.commit()
    assert [event.context for event in events(session)] == [{"operator": "op_7"}] * 2


def test_context_after_savepoint_rollback(repo: ActorTokenRepository, session: Session) -> None:
    savepoint = session.begin_nested()
    repo.save(make_token("act_1"))
    savepoint.rollback()
    # The rollback undid the settings too, so the repository must send them again.
    repo.save(make_token("act_2"))
    [event] = events(session)
    assert event.token_id == "act_2"
    assert event.source == "repository"


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"source": "sql"}, "cannot be set"),
        ({"source": "cron"}, "audit source must be one of"),
        ({"reason": "a\x00b"}, "NUL"),
        ({"payload": object()}, "JSON serializable"),
        ({"payload": float("nan")}, "JSON serializable"),
        ({"reason": "x" * 9000}, "maximum is 8192"),
    ],
)
def test_context_rejects_bad_values(
    repo: ActorTokenRepository, arguments: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=problem), repo.audit_context(**arguments):
        pass


def test_raw_sql_records_sql(repo: ActorTokenRepository, session: Session) -> None:
    repo.save(make_token("act_1"))
    repo.save(make_token("act_2"))
    session.commit()
    session.execute(
        text("UPDATE actor_tokens SET status = 'revoked', updated_at = updated_at + interval '1s'")
    )
    changes = [event for event in events(session) if event.from_status is not None]
    assert [event.source for event in changes] == ["sql", "sql"]


def test_raw_sql_sets_source(session: Session) -> None:
    session.execute(text("SET LOCAL actortoken_store.source = 'migration'"))
    session.execute(text("""SET LOCAL actortoken_store.context = '{"script": "fix-42"}'"""))
    session.execute(
        text(
            "INSERT INTO actor_tokens VALUES ('act_1', 'pending', 'user_1', "
            """'{"sub": "user_admin"}', NULL, NULL, now(), now())"""
        )
    )
    [event] = events(session)
    assert event.source == "migration"
    assert event.context == {"script": "fix-42"}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE actor_token_events SET source = 'sql'",
        "DELETE FROM actor_token_events",
        "TRUNCATE actor_token_events",
    ],
)
def test_events_append_only(
    repo: ActorTokenRepository, session: Session, clean_engine: Engine, statement: str
) -> None:
    repo.save(make_token())
    session.commit()
    with clean_engine.connect() as connection, pytest.raises(sqlalchemy.exc.DBAPIError) as caught:
        connection.execute(text(statement))
    assert "append-only" in str(caught.value)
    assert getattr(caught.value.orig, "sqlstate", None) == "23001"
    assert len(events(session)) == 1


def test_events_survive_deletion(repo: ActorTokenRepository, session: Session) -> None:
    repo.save(make_token())
    session.execute(text("DELETE FROM actor_tokens"))
    assert len(events(session)) == 1
    assert len(repo.audit.timeline("act_1").items) == 1


def test_prune_events(repo: ActorTokenRepository, session: Session) -> None:
    repo.save(make_token("act_old", created_at=T0))
    repo.save(make_token("act_new", created_at=T0 + 86_400_000))
    removed = repo.audit.prune_events(before=datetime.fromtimestamp(T0 / 1000 + 1, UTC))
    assert removed == 1
    assert [event.token_id for event in events(session)] == ["act_new"]
    # Pruning does not open a way around the append-only rule.
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="append-only"):
        session.execute(text("DELETE FROM actor_token_events"))


def test_prune_events_naive(repo: ActorTokenRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="naive"):
        repo.audit.prune_events(before=datetime(2025, 1, 1))


def test_prune_in_schema(admin_url: sqlalchemy.URL) -> None:
    from actortoken_store import migrate
    from actortoken_store.config import create_engine
    from tests.servers import throwaway_database

    with throwaway_database(admin_url) as url:
        rendered = url.render_as_string(hide_password=False)
        migrate.upgrade(migrate.make_config(rendered, schema="Audit Store"))
        engine = create_engine(url)
        try:
            with Session(engine) as session:
                repo = ActorTokenRepository(session, schema="Audit Store")
                repo.save(make_token())
                far = datetime(2100, 1, 1, tzinfo=UTC)
                assert repo.audit.prune_events(before=far) == 1
                assert repo.audit.timeline("act_1").items == []
        finally:
            engine.dispose()


def test_async_context(clean_engine: Engine, database_url: sqlalchemy.URL) -> None:
    async def scenario() -> None:
        engine = create_async_engine(database_url)
        try:
            async with AsyncSession(engine) as session:
                repo = AsyncActorTokenRepository(session)
                async with repo.audit_context(operator="op_9", source=AuditSource.IMPORT):
                    await repo.save(make_token())
                    await repo.revoke("act_1", T0 + 10)
                await repo.save(make_token("act_2"))
                await session.commit()
                page = await repo.audit.timeline("act_1")
                assert [event.source for event in page.items] == ["import", "import"]
                assert [event.context for event in page.items] == [{"operator": "op_9"}] * 2
                [other] = (await repo.audit.timeline("act_2")).items
                assert other.source is AuditSource.REPOSITORY
                assert other.context == {}
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_timeline_rows_typed(repo: ActorTokenRepository) -> None:
    with repo.audit_context(reason="check"):
        repo.save(make_token())
        repo.accept("act_1", T0 + 3)
    creation, change = repo.audit.timeline("act_1").items
    assert creation.from_status is None
    assert creation.to_status is TokenStatus.PENDING
    assert change.from_status is TokenStatus.PENDING
    assert change.to_status is TokenStatus.ACCEPTED
    assert change.source is AuditSource.REPOSITORY
    assert change.context == {"reason": "check"}
    assert change.recorded_at.tzinfo is not None
    assert dataclasses.is_dataclass(change)


def test_recorded_at_is_database_clock(repo: ActorTokenRepository) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    repo.save(make_token())
    [event] = repo.audit.timeline("act_1").items
    assert event.recorded_at >= before


def test_empty_save_sends_no_settings(repo: ActorTokenRepository, session: Session) -> None:
    repo.save_many([])
    session.execute(
        text(
            "INSERT INTO actor_tokens VALUES ('act_raw', 'pending', 'user_1', "
            """'{"sub": "user_admin"}', NULL, NULL, now(), now())"""
        )
    )
    repo.save(make_token("act_repo"))
    sources = {event.token_id: event.source for event in events(session)}
    assert sources == {"act_raw": "sql", "act_repo": "repository"}
