"""Lost connections, restarted servers and timeouts.

The restart tests start their own embedded PostgreSQL server in a temporary folder and
restart that one, never the server the rest of the suite uses.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Engine, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from actortoken_store import migrate
from actortoken_store.aio import AsyncActorTokenRepository
from actortoken_store.config import create_async_engine, create_engine
from actortoken_store.embedded import start_embedded, stop_embedded
from actortoken_store.errors import (
    ConnectionFailedError,
    ConnectionLostError,
    DatabaseError,
    TransientDatabaseError,
)
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.results import SaveOutcome
from actortoken_store.statements import TOKENS

CREATED = 1_760_000_000_000
WAIT_S = 20.0
"""Maximum wait, in seconds, for another session to reach an expected state."""


def _tokens(count: int, prefix: str = "act_fault") -> list[ActorToken]:
    return [
        ActorToken(
            id=f"{prefix}_{index:05d}",
            status=TokenStatus.PENDING,
            user_id=f"user_{index % 7}",
            actor={"sub": "user_admin", "index": index},
            created_at=CREATED + index,
            updated_at=CREATED + index,
        )
        for index in range(count)
    ]


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(TOKENS)).scalar_one()


def _wait_for_lock_wait(engine: Engine, pid: int) -> None:
    """Wait until backend ``pid`` is blocked on a lock, or fail."""
    deadline = time.monotonic() + WAIT_S
    query = text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(query, {"pid": pid}).scalar_one_or_none() == "Lock":
                return
        time.sleep(0.02)
    pytest.fail(f"backend {pid} never waited for a lock")


def _terminate(engine: Engine, pid: int) -> None:
    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
        ).scalar_one()


def _save_on_sync_session(
    engine: Engine, url: sqlalchemy.URL, tokens: list[ActorToken], report_pid: Any
) -> None:
    with Session(engine) as session:
        report_pid(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
        ActorTokenRepository(session).save_many(tokens, batch_size=100)
        session.commit()


def _save_on_async_session(
    engine: Engine, url: sqlalchemy.URL, tokens: list[ActorToken], report_pid: Any
) -> None:
    async def main() -> None:
        async_engine = create_async_engine(url)
        try:
            async with AsyncSession(async_engine) as session:
                result = await session.execute(text("SELECT pg_backend_pid()"))
                report_pid(result.scalar_one())
                await AsyncActorTokenRepository(session).save_many(tokens, batch_size=100)
                await session.commit()
        finally:
            await async_engine.dispose()

    asyncio.run(main())


@pytest.mark.parametrize("save", [_save_on_sync_session, _save_on_async_session])
def test_save_many_killed_midway_retry(
    clean_engine: Engine, database_url: sqlalchemy.URL, save: Any
) -> None:
    # Before the repositories invalidated a connection lost on the driver path, leaving
    # the session block replaced ConnectionLostError with a raw driver error.
    tokens = _tokens(1000)
    blocker = tokens[650]
    outcome: dict[str, object] = {}
    started = threading.Event()

    def report_pid(pid: int) -> None:
        outcome["pid"] = pid
        started.set()

    def save_all() -> None:
        try:
            save(clean_engine, database_url, tokens, report_pid)
        except BaseException as error:
            outcome["error"] = error
        finally:
            started.set()

    # An uncommitted insert of one id makes the save_many wait in its seventh batch, after
    # six batches ran in the same transaction. The test then kills that connection.
    with Session(clean_engine) as holder:
        ActorTokenRepository(holder).save(blocker)
        worker = threading.Thread(target=save_all)
        worker.start()
        assert started.wait(WAIT_S)
        pid = outcome["pid"]
        assert isinstance(pid, int)
        _wait_for_lock_wait(clean_engine, pid)
        _terminate(clean_engine, pid)
        worker.join(WAIT_S)
        holder.rollback()

    error = outcome.get("error")
    assert isinstance(error, ConnectionLostError), repr(error)
    assert isinstance(error, DatabaseError)
    assert error.retryable
    assert "retried" in str(error)
    assert _count(clean_engine) == 0

    with Session(clean_engine) as session:
        report = ActorTokenRepository(session).save_many(tokens, batch_size=100)
        session.commit()
    assert report.count(SaveOutcome.INSERTED) == len(tokens)
    assert _count(clean_engine) == len(tokens)
    # The interrupted transaction left no events behind, and the retry wrote one per token.
    with clean_engine.connect() as connection:
        events = connection.execute(
            text("SELECT count(*), count(DISTINCT token_id) FROM actor_token_events")
        ).one()
    assert tuple(events) == (len(tokens), len(tokens))
    with Session(clean_engine) as session:
        repo = ActorTokenRepository(session)
        assert repo.get_one(blocker.id) == blocker
        assert repo.get_one(tokens[-1].id) == tokens[-1]


def test_transition_lock_timeout_typed(clean_engine: Engine, database_url: sqlalchemy.URL) -> None:
    token = _tokens(1)[0]
    with Session(clean_engine) as session:
        ActorTokenRepository(session).save(token)
        session.commit()
    impatient = create_engine(
        database_url, poolclass=NullPool, connect_args={"options": "-c lock_timeout=300"}
    )
    try:
        with Session(clean_engine) as holder:
            ActorTokenRepository(holder).revoke(token.id)
            started = time.monotonic()
            with Session(impatient) as session, pytest.raises(TransientDatabaseError) as caught:
                ActorTokenRepository(session).accept(token.id)
            elapsed = time.monotonic() - started
            holder.rollback()
    finally:
        impatient.dispose()

    assert caught.value.sqlstate == "55P03"
    assert caught.value.retryable
    assert elapsed < 5


@pytest.mark.parametrize(
    ("option", "sqlstate"), [("lock_timeout", "55P03"), ("statement_timeout", "57014")]
)
def test_save_many_timeout_typed(
    clean_engine: Engine, database_url: sqlalchemy.URL, option: str, sqlstate: str
) -> None:
    tokens = _tokens(50)
    impatient = create_engine(
        database_url, poolclass=NullPool, connect_args={"options": f"-c {option}=300"}
    )
    try:
        with Session(clean_engine) as holder:
            ActorTokenRepository(holder).save(tokens[25])
            with Session(impatient) as session, pytest.raises(TransientDatabaseError) as caught:
                ActorTokenRepository(session).save_many(tokens)
            holder.rollback()
    finally:
        impatient.dispose()

    assert caught.value.sqlstate == sqlstate
    assert "retry" in str(caught.value)
    assert _count(clean_engine) == 0


def test_transition_deadlock_typed(clean_engine: Engine) -> None:
    # Two sessions each hold one token and then request the other's: PostgreSQL aborts one
    # of them after deadlock_timeout (1 s by default) with deadlock_detected.
    first, second = _tokens(2)
    with Session(clean_engine) as session:
        ActorTokenRepository(session).save_many([first, second])
        session.commit()

    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def cross(own: ActorToken, other: ActorToken) -> None:
        with Session(clean_engine) as session:
            repo = ActorTokenRepository(session)
            try:
                repo.accept(own.id)
                barrier.wait(WAIT_S)
                repo.revoke(other.id)
                session.commit()
            except BaseException as error:
                errors.append(error)
                session.rollback()

    workers = [
        threading.Thread(target=cross, args=(first, second)),
        threading.Thread(target=cross, args=(second, first)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT_S)

    # PostgreSQL aborts one of the two. Its accept is rolled back with it, so the other
    # session's revoke of that token then succeeds.
    deadlocks = [error for error in errors if isinstance(error, TransientDatabaseError)]
    assert len(deadlocks) == 1, errors
    assert deadlocks[0].sqlstate == "40P01"
    assert deadlocks[0].retryable
    assert len(errors) == 1, errors


def test_unanswered_connect_times_out() -> None:
    # A listener that accepts TCP connections and never speaks: without connect_timeout,
    # the client would wait for the server's first message forever.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        engine = create_engine(
            f"postgresql://postgres@127.0.0.1:{port}/silent",
            connect_timeout=2,
            poolclass=NullPool,
        )
        started = time.monotonic()
        try:
            with Session(engine) as session, pytest.raises(ConnectionFailedError) as caught:
                ActorTokenRepository(session).get("act_1")
        finally:
            engine.dispose()
        elapsed = time.monotonic() - started

    assert not caught.value.retryable
    assert 1.5 < elapsed < 10


# --- restarts of a private embedded server ------------------------------------------------


@pytest.fixture(scope="module")
def private_server(embedded_data_dir: Path) -> Iterator[tuple[Path, sqlalchemy.URL]]:
    """An embedded PostgreSQL server that no other test uses while this module runs, with
    the store migrated in its own database."""
    data_dir = embedded_data_dir
    try:
        url = start_embedded(data_dir, database="restarts")
        migrate.upgrade(migrate.make_config(url.render_as_string(hide_password=False)))
        yield data_dir, url
    finally:
        stop_embedded(data_dir)


def _restart(data_dir: Path) -> None:
    stop_embedded(data_dir)
    start_embedded(data_dir, database="restarts")


def test_restart_pre_ping_reconnects(private_server: tuple[Path, sqlalchemy.URL]) -> None:
    data_dir, url = private_server
    token = _tokens(1, prefix="act_ping")[0]
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            ActorTokenRepository(session).save(token)
            session.commit()

        _restart(data_dir)

        with Session(engine) as session:
            assert ActorTokenRepository(session).get(token.id) == token
    finally:
        engine.dispose()


def test_restart_without_ping_fails_once(private_server: tuple[Path, sqlalchemy.URL]) -> None:
    data_dir, url = private_server
    engine = create_engine(url, pool_pre_ping=False)
    try:
        with Session(engine) as session:
            ActorTokenRepository(session).get("act_none")

        _restart(data_dir)

        with Session(engine) as session, pytest.raises(ConnectionLostError) as caught:
            ActorTokenRepository(session).get("act_none")
        assert caught.value.retryable
        # The pool dropped the dead connection, so the retry gets a new one.
        with Session(engine) as session:
            assert ActorTokenRepository(session).get("act_none") is None
    finally:
        engine.dispose()


def test_server_down_fails_fast(private_server: tuple[Path, sqlalchemy.URL]) -> None:
    data_dir, url = private_server
    engine = create_engine(url, connect_timeout=3)
    try:
        try:
            stop_embedded(data_dir)
            started = time.monotonic()
            with Session(engine) as session, pytest.raises(ConnectionFailedError):
                ActorTokenRepository(session).get("act_none")
            assert time.monotonic() - started < 10
        finally:
            start_embedded(data_dir, database="restarts")

        with Session(engine) as session:
            assert ActorTokenRepository(session).get("act_none") is None
    finally:
        engine.dispose()


def test_missing_database_fails_to_connect(database_url: sqlalchemy.URL) -> None:
    missing = database_url.set(database="ats_no_such_database", password="hunter2secret")
    engine = create_engine(missing, poolclass=NullPool)
    try:
        with Session(engine) as session, pytest.raises(ConnectionFailedError) as caught:
            ActorTokenRepository(session).get("act_1")
    finally:
        engine.dispose()

    assert not caught.value.retryable
    assert not isinstance(caught.value, ConnectionLostError)
    assert "ats_no_such_database" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


def test_upgrade_unreachable_server() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = migrate.make_config(f"postgresql://postgres:pw@127.0.0.1:{port}/db")

    with pytest.raises(ConnectionFailedError) as caught:
        migrate.upgrade(config)

    assert "pw@" not in str(caught.value)
