"""Fixtures for tests that run against both the sync and the async repository."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
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
def embedded_data_copy() -> Iterator[Callable[[Path], Path]]:
    """Copies a stopped, initialized embedded data folder to a given path and returns it.

    initdb takes most of an embedded server's start (about 10 s on a loaded 2-core
    machine), so the session runs it once and tests that need a server, but not a new
    cluster, start from a copy. Tests of initdb itself use an empty folder instead.
    """
    root = Path(tempfile.mkdtemp(prefix="ats-tpl-"))
    template = root / "pg"
    try:
        start_embedded(template)
        stop_embedded(template)

        def copy(target: Path) -> Path:
            target.parent.mkdir(parents=True, exist_ok=True)
            # `cp -a` keeps the owner, which must stay the server's system user under root.
            subprocess.run(["cp", "-a", str(template), str(target)], check=True)
            return target

        yield copy
    finally:
        stop_embedded(template)
        shutil.rmtree(root, ignore_errors=True)
