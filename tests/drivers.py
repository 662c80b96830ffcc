"""One synchronous interface over the sync and the async repository, for shared tests.

`RepoDriver` forwards every attribute to the repository it wraps. For the async repository
it runs each returned coroutine to completion on an event loop in a background thread, so
a test calls ``driver.save(token)`` the same way for both. Because the loop runs in its own
thread, several drivers can block in the database at once (one waiting on another's row
lock) while the test thread commits another driver, just as with sync sessions in threads.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, Literal, TypeVar

import sqlalchemy
from sqlalchemy import Engine, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from actortoken_store.aio import AsyncActorTokenRepository
from actortoken_store.audit import AsyncAuditQueries, AuditQueries
from actortoken_store.config import create_async_engine, create_engine
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.schema import DEFAULT_SCHEMA
from actortoken_store.secrets import SecretsPolicy

__all__ = ["KINDS", "EventLoopThread", "Kind", "RepoDriver", "RepoFactory", "count_statements"]

T = TypeVar("T")
Kind = Literal["sync", "async"]
KINDS: tuple[Kind, ...] = ("sync", "async")

CALL_TIMEOUT = 30.0
"""Seconds a driven coroutine may take before the test fails instead of hanging."""


class EventLoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="repository-event-loop", daemon=True
        )
        self._thread.start()

    def run(self, awaitable: Awaitable[T], timeout: float | None = CALL_TIMEOUT) -> T:
        """Run ``awaitable`` on the loop from any other thread and return its result."""

        async def wrapper() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class RepoDriver:
    """A repository with synchronous methods, plus the session's transaction control.

    Attributes:
        kind: "sync" or "async".
        repository: the wrapped `ActorTokenRepository` or `AsyncActorTokenRepository`.
        engine: the sync `Engine` that runs the statements (for an async repository, the
            `AsyncEngine.sync_engine`), for statement-counting event listeners.
    """

    def __init__(
        self,
        kind: Kind,
        repository: ActorTokenRepository | AsyncActorTokenRepository,
        engine: Engine,
        loop: EventLoopThread,
    ) -> None:
        self.kind = kind
        self.repository = repository
        self.engine = engine
        self._loop = loop

    def __repr__(self) -> str:
        return f"RepoDriver({self.kind}, {self.repository!r})"

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.repository, name)
        if isinstance(attribute, AuditQueries | AsyncAuditQueries):
            return _Forwarder(attribute, self._resolve)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._resolve(attribute(*args, **kwargs))

        return call

    def _resolve(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            return self._loop.run(value)
        if isinstance(value, AsyncIterator):
            return self._iterate(value)
        if isinstance(value, AbstractAsyncContextManager):
            return self._enter(value)
        return value

    @contextmanager
    def _enter(self, manager: AbstractAsyncContextManager[Any]) -> Iterator[Any]:
        """Run an async context manager as a sync one, on the driver's loop."""
        value = self._loop.run(manager.__aenter__())
        try:
            yield value
        except BaseException as error:
            if not self._loop.run(manager.__aexit__(type(error), error, error.__traceback__)):
                raise
        else:
            self._loop.run(manager.__aexit__(None, None, None))

    def _iterate(self, iterator: AsyncIterator[Any]) -> Iterator[Any]:
        while True:
            try:
                yield self._loop.run(anext(iterator))
            except StopAsyncIteration:
                return

    @property
    def session(self) -> Session | AsyncSession:
        return self.repository.session

    def commit(self) -> None:
        self._resolve(self.repository.session.commit())

    def rollback(self) -> None:
        self._resolve(self.repository.session.rollback())

    def close(self) -> None:
        self._resolve(self.repository.session.close())

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> list[Any]:
        """Run raw SQL in the repository's session and transaction; return the rows."""
        result = self._resolve(self.repository.session.execute(text(sql), parameters or {}))
        return list(result.all()) if result.returns_rows else []


class _Forwarder:
    """An attribute object of a repository (such as ``audit``) whose methods get resolved."""

    def __init__(self, target: Any, resolve: Callable[[Any], Any]) -> None:
        self._target = target
        self._resolve = resolve

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._resolve(attribute(*args, **kwargs))

        return call


class RepoFactory:
    """Opens repository drivers over shared engines and closes them after the test.

    Engines for other databases (``url``) are created on first use and disposed of by
    `close`; the session-wide engines are only borrowed.
    """

    def __init__(self, engine: Engine, async_engine: AsyncEngine, loop: EventLoopThread) -> None:
        self._loop = loop
        self._default_url = _url_key(engine.url)
        self._engines: dict[str, Engine] = {self._default_url: engine}
        self._async_engines: dict[str, AsyncEngine] = {self._default_url: async_engine}
        self._owned: list[Engine | AsyncEngine] = []
        self._drivers: list[RepoDriver] = []

    def open(
        self,
        kind: Kind,
        *,
        schema: str = DEFAULT_SCHEMA,
        url: sqlalchemy.URL | str | None = None,
        secrets: SecretsPolicy | None = None,
    ) -> RepoDriver:
        """Open a driver over a new session of ``kind`` on ``url`` (default: the test DB).

        ``secrets`` defaults to the suite's explicit `TEST_SECRETS`, never the environment.
        """
        from tests.conftest import TEST_SECRETS

        policy = TEST_SECRETS if secrets is None else secrets
        key = self._default_url if url is None else _url_key(url)
        driver: RepoDriver
        if kind == "sync":
            engine = self._engines.get(key)
            if engine is None:
                engine = self._engines[key] = create_engine(key)
                self._owned.append(engine)
            repository: Any = ActorTokenRepository(Session(engine), schema=schema, secrets=policy)
            driver = RepoDriver(kind, repository, engine, self._loop)
        else:
            async_engine = self._async_engines.get(key)
            if async_engine is None:
                async_engine = self._async_engines[key] = create_async_engine(key)
                self._owned.append(async_engine)
            session = AsyncSession(async_engine, expire_on_commit=False)
            repository = AsyncActorTokenRepository(session, schema=schema, secrets=policy)
            driver = RepoDriver(kind, repository, async_engine.sync_engine, self._loop)
        self._drivers.append(driver)
        return driver

    def peer(self, driver: RepoDriver) -> RepoDriver:
        """Open another driver of the same kind, schema and database, with its own session."""
        return self.open(
            driver.kind, schema=driver.schema, url=driver.engine.url, secrets=driver.secrets
        )

    def close(self) -> None:
        """Roll back and close every driver, then dispose of the engines this factory made."""
        for driver in reversed(self._drivers):
            driver.close()
        self._drivers.clear()
        for engine in self._owned:
            if isinstance(engine, AsyncEngine):
                self._loop.run(engine.dispose())
            else:
                engine.dispose()
        self._owned.clear()


def _url_key(url: sqlalchemy.URL | str) -> str:
    parsed = sqlalchemy.make_url(url) if isinstance(url, str) else url
    # The async driver name differs, and both kinds share one key per database.
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@contextmanager
def count_statements(engine: Engine) -> Iterator[list[str]]:
    """Collect the SQL of every statement ``engine`` sends while the block runs."""
    statements: list[str] = []

    def record(
        connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        statements.append(statement)

    listener: Callable[..., None] = record
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)
