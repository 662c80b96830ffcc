"""Fixtures for tests that run against both the sync and the async repository."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from actortoken_store.config import create_async_engine
from actortoken_store.embedded import start_embedded, stop_embedded
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


@pytest.fixture(scope="session")
def embedded_data_dir() -> Iterator[Path]:
    """A stopped embedded data folder that initdb already made, shared by the session.

    initdb takes most of an embedded server's first start (about 10 s on this loaded
    2-core machine), and copying the folder costs seconds too, so tests that need a server
    but not a new cluster start this one and stop it again before they end. Databases they
    create stay for later tests. Tests of initdb itself use an empty folder instead.
    """
    root = Path(tempfile.mkdtemp(prefix="ats-shared-"))
    data_dir = root / "pg"
    try:
        start_embedded(data_dir)
        stop_embedded(data_dir)
        yield data_dir
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(root, ignore_errors=True)
