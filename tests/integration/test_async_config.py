"""The async repository over each way of configuring the database.

A URL argument, ``ACTORTOKEN_STORE_DATABASE_URL`` and the embedded default must all give a
URL that `create_async_engine` connects with (psycopg's async driver).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import NullPool

from actortoken_store import migrate
from actortoken_store.aio import AsyncActorTokenRepository
from actortoken_store.config import (
    ENV_DATABASE_URL,
    create_async_engine,
    resolve_database,
)
from actortoken_store.embedded import ENV_EMBEDDED_DIR, stop_embedded
from actortoken_store.model import ActorToken
from actortoken_store.results import SaveOutcome

TOKEN = ActorToken.from_clerk(
    {
        "id": "act_2asyncconfigXXXXXXXXXXXXXX",
        "status": "pending",
        "user_id": "user_2asyncXXXXXXXXXXXXXXXXXX",
        "actor": {"sub": "user_2adminXXXXXXXXXXXXXXXXXX"},
        "created_at": 1_764_633_600_000,
        "updated_at": 1_764_633_600_000,
    }
)


def _roundtrip(url: str | sqlalchemy.URL) -> ActorToken | None:
    """Save and read `TOKEN` through the async repository, then roll back."""

    async def main() -> ActorToken | None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with AsyncSession(engine) as session:
                repo = AsyncActorTokenRepository(session)
                assert await repo.save(TOKEN) is SaveOutcome.INSERTED
                stored = await repo.get(TOKEN.id)
                await session.rollback()
                return stored
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _plain(url: sqlalchemy.URL) -> str:
    """Render ``url`` as a libpq URL with the password, as a user would write it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def test_async_url_argument(clean_engine: Engine, database_url: sqlalchemy.URL) -> None:
    choice = resolve_database(_plain(database_url), async_driver=True)

    assert choice.source == "argument"
    assert choice.url.drivername == "postgresql+psycopg_async"
    assert _roundtrip(choice.url) == TOKEN


def test_async_plain_url_string(clean_engine: Engine, database_url: sqlalchemy.URL) -> None:
    # create_async_engine normalizes a plain URL string itself.
    assert _roundtrip(_plain(database_url)) == TOKEN


def test_async_url_environment(
    monkeypatch: pytest.MonkeyPatch, clean_engine: Engine, database_url: sqlalchemy.URL
) -> None:
    monkeypatch.setenv(ENV_DATABASE_URL, _plain(database_url))

    choice = resolve_database(async_driver=True)

    assert choice.source == "environment"
    assert _roundtrip(choice.url) == TOKEN


@pytest.fixture
def embedded_dir(monkeypatch: pytest.MonkeyPatch, embedded_data_dir: Path) -> Iterator[Path]:
    """The session's initialized embedded data folder as the embedded default, with no
    database URL configured. Starting from an empty folder is covered in test_embedded.py."""
    monkeypatch.delenv(ENV_DATABASE_URL, raising=False)
    monkeypatch.setenv(ENV_EMBEDDED_DIR, str(embedded_data_dir))
    try:
        yield embedded_data_dir
    finally:
        stop_embedded(embedded_data_dir)


def test_async_embedded_default(embedded_dir: Path) -> None:
    choice = resolve_database(async_driver=True)

    assert choice.source == "embedded"
    assert choice.url.drivername == "postgresql+psycopg_async"
    migrate.upgrade(migrate.make_config(choice.url.render_as_string(hide_password=False)))
    assert _roundtrip(choice.url) == TOKEN
