"""Fixtures for the Clerk bridge tests: the fake Backend API and async repositories."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import sqlalchemy
from clerk_backend_api import Clerk
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import NullPool

from actortoken_store.aio import AsyncActorTokenRepository
from actortoken_store.config import create_async_engine
from tests.fake_clerk import FakeClerk, running_fake_clerk

T = TypeVar("T")

AsyncScenario = Callable[[Callable[[AsyncActorTokenRepository, Clerk], Awaitable[T]]], T]


@pytest.fixture
def fake_clerk() -> Iterator[FakeClerk]:
    with running_fake_clerk() as fake:
        yield fake


@pytest.fixture
def clerk(fake_clerk: FakeClerk) -> Iterator[Clerk]:
    """The real SDK client, pointed at the fake."""
    with fake_clerk.client() as client:
        yield client


@pytest.fixture
def run_async(
    clean_engine: Engine, database_url: sqlalchemy.URL, fake_clerk: FakeClerk
) -> AsyncScenario[object]:
    """Run ``scenario(repo, clerk)`` on a new event loop with an async repository.

    The SDK client is the real one, pointed at the fake. The session commits when the
    scenario returns, and rolls back when it raises.
    """

    def run(scenario: Callable[[AsyncActorTokenRepository, Clerk], Awaitable[T]]) -> T:
        async def main() -> T:
            engine = create_async_engine(database_url, poolclass=NullPool)
            try:
                async with fake_clerk.client() as clerk, AsyncSession(engine) as session:
                    result = await scenario(AsyncActorTokenRepository(session), clerk)
                    await session.commit()
                    return result
            finally:
                await engine.dispose()

        return asyncio.run(main())

    return run
