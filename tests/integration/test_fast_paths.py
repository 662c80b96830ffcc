"""The driver path for Calls gives exactly what Session.execute gives, on real data."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import sqlalchemy
from sqlalchemy import Engine, event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from actortoken_store import migrate
from actortoken_store.aio import AsyncActorTokenRepository
from actortoken_store.config import create_async_engine, create_engine
from actortoken_store.errors import InvalidTransitionError, SchemaNotReadyError
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from tests.conftest import load_jsonl

T = TypeVar("T")


class SqlAlchemyPathRepository(ActorTokenRepository):
    """Sends every Call through Session.execute: the reference for the driver path."""

    _calls_on_driver = False


class AsyncSqlAlchemyPathRepository(AsyncActorTokenRepository):
    _calls_on_driver = False


REPOSITORIES = [ActorTokenRepository, SqlAlchemyPathRepository]


def _lifecycles() -> list[ActorToken]:
    return [ActorToken.from_clerk(record) for record in load_jsonl("lifecycles.jsonl")]


def _in_rolled_back_session(
    engine: Engine, repository: type[ActorTokenRepository], work: Callable[[Any], T]
) -> T:
    with Session(engine) as session:
        try:
            return work(repository(session))
        finally:
            session.rollback()


def test_save_many_paths_agree(clean_engine: Engine) -> None:
    snapshots = _lifecycles()

    def save_and_read(repo: ActorTokenRepository) -> tuple[Any, dict[str, Any]]:
        report = repo.save_many(snapshots)
        return report, {token.id: repo.get(token.id) for token in snapshots}

    fast_report, fast_rows = _in_rolled_back_session(
        clean_engine, ActorTokenRepository, save_and_read
    )
    slow_report, slow_rows = _in_rolled_back_session(
        clean_engine, SqlAlchemyPathRepository, save_and_read
    )
    assert fast_report == slow_report
    assert fast_rows == slow_rows


def test_save_many_equals_single_saves(clean_engine: Engine) -> None:
    snapshots = _lifecycles()

    def one_call(repo: ActorTokenRepository) -> list[Any]:
        return [result.outcome for result in repo.save_many(snapshots).results]

    def batches_of_two(repo: ActorTokenRepository) -> list[Any]:
        return [result.outcome for result in repo.save_many(snapshots, batch_size=2).results]

    def one_by_one(repo: ActorTokenRepository) -> list[Any]:
        return [repo.save(token) for token in snapshots]

    expected = _in_rolled_back_session(clean_engine, ActorTokenRepository, one_by_one)
    assert _in_rolled_back_session(clean_engine, ActorTokenRepository, one_call) == expected
    assert _in_rolled_back_session(clean_engine, ActorTokenRepository, batches_of_two) == expected


def test_lifecycles_end_final(clean_engine: Engine) -> None:
    snapshots = _lifecycles()
    finals: dict[str, ActorToken] = {}
    for token in snapshots:
        kept = finals.get(token.id)
        if token.status.is_terminal and (kept is None or token.updated_at > kept.updated_at):
            finals[token.id] = token

    def stored(repo: ActorTokenRepository) -> dict[str, ActorToken | None]:
        repo.save_many(snapshots)
        return {token_id: repo.get(token_id) for token_id in finals}

    rows = _in_rolled_back_session(clean_engine, ActorTokenRepository, stored)
    assert len(rows) == len({token.id for token in snapshots})
    assert rows == finals


def test_reads_paths_agree(clean_engine: Engine, fixture_tokens: list[ActorToken]) -> None:
    with Session(clean_engine) as session:
        ActorTokenRepository(session).save_many(fixture_tokens)
        session.commit()
    user_id = fixture_tokens[0].user_id

    def read(repo: ActorTokenRepository) -> list[Any]:
        first = repo.list_for_user(user_id, limit=2)
        assert first.next_cursor is not None
        second = repo.list_for_user(user_id, limit=2, after=first.next_cursor)
        pending = repo.list_for_user(user_id, status="pending", limit=1000)
        tokens = [repo.get(token.id) for token in fixture_tokens]
        return [first, second, pending, tokens, repo.get("act_missing")]

    fast = _in_rolled_back_session(clean_engine, ActorTokenRepository, read)
    slow = _in_rolled_back_session(clean_engine, SqlAlchemyPathRepository, read)
    assert fast == slow
    assert fast[3] == fixture_tokens


@pytest.mark.parametrize("repository", REPOSITORIES)
def test_transition_paths_agree(
    clean_engine: Engine,
    fixture_tokens: list[ActorToken],
    repository: type[ActorTokenRepository],
) -> None:
    pending = next(token for token in fixture_tokens if token.status is TokenStatus.PENDING)
    done = next(token for token in fixture_tokens if token.status is TokenStatus.REVOKED)
    at = pending.updated_at + 1000
    with Session(clean_engine) as session:
        ActorTokenRepository(session).save_many([pending, done])
        session.commit()

    with Session(clean_engine) as session:
        repo = repository(session)
        accepted = repo.accept(pending.id, at)
        with pytest.raises(InvalidTransitionError, match="revoked"):
            repo.accept(done.id, at)
        session.rollback()

    assert accepted.status is TokenStatus.ACCEPTED
    assert accepted.updated_at == at
    assert accepted.actor == pending.actor
    assert accepted.token == pending.token


def test_driver_error_translated(session: Session) -> None:
    repo = ActorTokenRepository(session, schema="no_such_schema")
    with pytest.raises(SchemaNotReadyError, match="db upgrade"):
        repo.get("act_1")


def test_other_schema_placement(
    clean_engine: Engine, database_url: sqlalchemy.URL, fixture_tokens: list[ActorToken]
) -> None:
    schema = "fast_path_placement"
    config = migrate.make_config(database_url.render_as_string(hide_password=False), schema=schema)
    migrate.upgrade(config)
    try:
        with Session(clean_engine) as session:
            repo = ActorTokenRepository(session, schema=schema)
            report = repo.save_many(fixture_tokens[:5])
            assert report.count(report.results[0].outcome) == 5
            assert repo.get(fixture_tokens[0].id) == fixture_tokens[0]
            in_public = session.execute(text("SELECT count(*) FROM public.actor_tokens"))
            assert in_public.scalar_one() == 0
            session.rollback()
    finally:
        migrate.downgrade(config, "base")
        with clean_engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def test_async_paths_agree(database_url: sqlalchemy.URL, clean_engine: Engine) -> None:
    snapshots = _lifecycles()

    async def save_and_read(repository: type[AsyncActorTokenRepository]) -> Any:
        engine = create_async_engine(database_url)
        try:
            async with AsyncSession(engine) as session:
                repo = repository(session)
                report = await repo.save_many(snapshots)
                rows = [await repo.get(token.id) for token in snapshots]
                page = await repo.list_for_user(snapshots[0].user_id, limit=3)
                await session.rollback()
                return report, rows, page
        finally:
            await engine.dispose()

    fast = asyncio.run(save_and_read(AsyncActorTokenRepository))
    slow = asyncio.run(save_and_read(AsyncSqlAlchemyPathRepository))
    sync = _in_rolled_back_session(
        clean_engine,
        ActorTokenRepository,
        lambda repo: (
            repo.save_many(snapshots),
            [repo.get(token.id) for token in snapshots],
            repo.list_for_user(snapshots[0].user_id, limit=3),
        ),
    )
    assert fast == slow
    assert fast == sync


def test_save_many_big_integer_claim(session: Session, fixture_tokens: list[ActorToken]) -> None:
    # orjson rejects integers beyond 64 bits, so such a batch goes through the json module.
    claims = {**fixture_tokens[0].actor, "big": 2**70, "small": -(2**63)}
    record = {**fixture_tokens[0].to_clerk(), "actor": claims}
    token = ActorToken.from_clerk(record)
    repo = ActorTokenRepository(session)

    repo.save_many([token, fixture_tokens[1]])

    stored = repo.get(token.id)
    assert stored is not None
    assert stored.actor["big"] == 2**70
    assert stored == token


def test_execute_listener_sees_calls(
    database_url: sqlalchemy.URL, fixture_tokens: list[ActorToken]
) -> None:
    # An application's before_execute listener (logging, tracing) must see the store's
    # statements, so Calls go through Session.execute while one is registered.
    engine = create_engine(database_url)
    seen: list[str] = []

    def record(connection: Any, statement: Any, *args: Any) -> None:
        seen.append(str(statement))

    event.listen(engine, "before_execute", record)
    try:
        with Session(engine) as session:
            repo = ActorTokenRepository(session)
            assert repo.get(fixture_tokens[0].id) is None
            session.rollback()
    finally:
        engine.dispose()

    assert any("actor_tokens" in statement for statement in seen)
