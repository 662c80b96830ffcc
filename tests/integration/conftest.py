"""Fixtures for tests that run against both the sync and the async repository."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from actortoken_store.config import create_async_engine
from tests.drivers import KINDS, EventLoopThread, RepoDriver, RepoFactory


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[EventLoopThread]:
    """The event loop that runs every async repository call of the session."""
    loop = EventLoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def async_engine(
    database_url: sqlalchemy.URL, loop_thread: EventLoopThread
) -> Iterator[AsyncEngine]:
    """An async engine on the migrated test database, bound to `loop_thread`."""
    engine = create_async_engine(database_url)
    yield engine
    loop_thread.run(engine.dispose())


@pytest.fixture
def repo_factory(
    clean_engine: Engine, async_engine: AsyncEngine, loop_thread: EventLoopThread
) -> Iterator[RepoFactory]:
    """Opens extra drivers (peers, other schemas or databases); closes them after the test.

    It depends on `clean_engine`, so the sessions are closed before the tables are emptied.
    """
    factory = RepoFactory(clean_engine, async_engine, loop_thread)
    yield factory
    factory.close()


@pytest.fixture(params=KINDS)
def any_repo(request: pytest.FixtureRequest, repo_factory: RepoFactory) -> RepoDriver:
    """The sync or the async repository on empty tables, with synchronous methods.

    Call repository methods on it directly (``any_repo.save(token)``); ``commit``,
    ``rollback`` and ``execute`` act on its session, and ``repo_factory.peer(any_repo)``
    opens a second session of the same kind.
    """
    kind = request.param
    return repo_factory.open(kind)
