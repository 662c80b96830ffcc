"""Migration safety: pytest-alembic's built-in checks, a walk through every revision on a
database that contains data, and the offline SQL of every revision applied with psql.

Every test reads the revision list from the script folder, so revisions added later are
covered without changes here.
"""

from __future__ import annotations

import io
import itertools
import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from alembic.script import ScriptDirectory
from pytest_alembic import runner as alembic_runner_context
from pytest_alembic import tests as alembic_checks
from pytest_alembic.config import Config as AlembicTestConfig
from pytest_alembic.runner import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from actortoken_store import migrate
from actortoken_store.config import create_engine
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from tests.servers import throwaway_database

CREATED = 1_760_000_000_000


def _revisions() -> list[str]:
    """Return every revision id from base to head."""
    script = ScriptDirectory.from_config(migrate.make_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


# --- pytest-alembic ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alembic_engine(admin_url: sqlalchemy.URL) -> Iterator[Engine]:
    """An engine on an empty throwaway database, for pytest-alembic's checks."""
    with throwaway_database(admin_url) as url:
        engine = create_engine(url, poolclass=NullPool)
        yield engine
        engine.dispose()


@pytest.fixture
def alembic_config() -> AlembicTestConfig:
    """The store's own Alembic setup: packaged revisions and ``actortoken_store_version``."""
    return AlembicTestConfig(alembic_config=migrate.make_config())


@pytest.fixture
def alembic_runner(
    alembic_config: AlembicTestConfig, alembic_engine: Engine
) -> Iterator[MigrationContext]:
    with alembic_runner_context(config=alembic_config, engine=alembic_engine) as context:
        yield context
    # Each check starts from an empty database.
    migrate.downgrade(migrate.make_config(_url(alembic_engine)), "base")


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_alembic_single_head(alembic_runner: MigrationContext) -> None:
    alembic_checks.test_single_head_revision(alembic_runner)


def test_alembic_upgrade(alembic_runner: MigrationContext) -> None:
    alembic_checks.test_upgrade(alembic_runner)


def test_alembic_models_match_ddl(alembic_runner: MigrationContext) -> None:
    alembic_checks.test_model_definitions_match_ddl(alembic_runner)


def test_alembic_up_down_consistency(alembic_runner: MigrationContext) -> None:
    alembic_checks.test_up_down_consistency(alembic_runner)


# --- walking every revision over data -------------------------------------------------------

WALK_TOKENS = [
    ActorToken(
        id=f"act_walk_{index}",
        status=status,
        user_id=f"user_walk_{index % 2}",
        actor={"sub": f"user_admin_{index % 3}", "reason": "support", "n": index},
        created_at=CREATED + index,
        updated_at=CREATED + index + (0 if status is TokenStatus.PENDING else 1000),
        token=f"ticket_walk_{index}" if index < 2 else None,
        url=f"https://example.test/sign-in?ticket=ticket_walk_{index}" if index < 2 else None,
    )
    for index, status in enumerate(
        [TokenStatus.PENDING, TokenStatus.ACCEPTED, TokenStatus.REVOKED, TokenStatus.PENDING]
    )
]
"""Tokens of every status, two of them with tickets. The tests run with keys configured
(see tests/conftest.py), so a revision that encrypts tickets must encrypt these and its
downgrade must restore them."""


def _core_rows(engine: Engine, schema: str) -> list[tuple[Any, ...]]:
    """Read the columns every revision keeps, with plain SQL that no model shapes."""
    table = f'"{schema}".actor_tokens'
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, status::text, user_id, actor, created_at, updated_at "
                f"FROM {table} ORDER BY id"
            )
        )
        return [tuple(row) for row in rows]


def _check_events(engine: Engine, schema: str, after: str) -> None:
    """Check the event history of the walk's tokens, at revisions that have one.

    Each token has one creation event and, once accepted or revoked, one transition event,
    whether the trigger wrote them or an upgrade backfilled them.
    """
    with engine.connect() as connection:
        table = connection.execute(
            text("SELECT to_regclass(:name)"), {"name": f'"{schema}".actor_token_events'}
        ).scalar()
        if table is None:
            return
        rows = connection.execute(
            text(
                "SELECT token_id, count(*) FILTER (WHERE from_status IS NULL), "
                "count(*) FILTER (WHERE from_status IS NOT NULL) "
                f'FROM "{schema}".actor_token_events GROUP BY token_id'
            )
        )
        counts = {token_id: (creations, changes) for token_id, creations, changes in rows}
    expected = {
        token.id: (1, 0 if token.status is TokenStatus.PENDING else 1) for token in WALK_TOKENS
    }
    assert counts == expected, f"events after {after}"


def _expected_rows() -> list[tuple[Any, ...]]:
    return [
        (
            token.id,
            token.status.value,
            token.user_id,
            dict(token.actor),
            token.created_at_utc,
            token.updated_at_utc,
        )
        for token in sorted(WALK_TOKENS, key=lambda token: token.id)
    ]


@pytest.mark.parametrize("schema", ["public", "ats_walk"])
def test_revision_walk_keeps_data(admin_url: sqlalchemy.URL, schema: str) -> None:
    revisions = _revisions()
    with throwaway_database(admin_url) as url:
        config_url = url.render_as_string(hide_password=False)
        engine = create_engine(url, poolclass=NullPool)

        def step(action: str, revision: str) -> None:
            config = migrate.make_config(config_url, schema=schema)
            getattr(migrate, action)(config, revision)
            assert migrate.current(migrate.make_config(config_url, schema=schema)) == [revision], (
                f"{action} to {revision}"
            )

        try:
            step("upgrade", revisions[0])
            with engine.begin() as connection:
                _insert_first_revision_rows(connection, schema)
            assert _core_rows(engine, schema) == _expected_rows()

            for previous, revision in itertools.pairwise(revisions):
                step("upgrade", revision)
                assert _core_rows(engine, schema) == _expected_rows(), f"after up to {revision}"
                _check_events(engine, schema, f"up to {revision}")
                step("downgrade", previous)
                assert _core_rows(engine, schema) == _expected_rows(), f"after down to {previous}"
                _check_events(engine, schema, f"down to {previous}")
                step("upgrade", revision)
                assert _core_rows(engine, schema) == _expected_rows(), f"after up to {revision}"
                _check_events(engine, schema, f"up again to {revision}")

            with Session(engine) as session:
                repo = ActorTokenRepository(session, schema=schema)
                assert [repo.get_one(token.id) for token in WALK_TOKENS] == WALK_TOKENS

            for revision in reversed(revisions[:-1]):
                step("downgrade", revision)
                assert _core_rows(engine, schema) == _expected_rows(), f"after down to {revision}"
            assert _first_revision_tickets(engine, schema) == {
                token.id: (token.token, token.url) for token in WALK_TOKENS
            }
        finally:
            engine.dispose()


def _first_revision_tickets(engine: Engine, schema: str) -> dict[str, tuple[Any, Any]]:
    """Read the ticket columns of the first revision, where tickets are plain text."""
    with engine.connect() as connection:
        rows = connection.execute(text(f'SELECT id, token, url FROM "{schema}".actor_tokens'))
        return {row.id: (row.token, row.url) for row in rows}


def _insert_first_revision_rows(connection: sqlalchemy.Connection, schema: str) -> None:
    """Insert the walk's tokens with the first revision's columns only."""
    table = f'"{schema}".actor_tokens'
    for token in WALK_TOKENS:
        connection.execute(
            text(
                f"INSERT INTO {table} "
                "(id, status, user_id, actor, token, url, created_at, updated_at) "
                f'VALUES (:id, CAST(:status AS "{schema}".actor_token_status), :user_id, '
                "CAST(:actor AS jsonb), :token, :url, :created_at, :updated_at)"
            ),
            {
                "id": token.id,
                "status": token.status.value,
                "user_id": token.user_id,
                "actor": json.dumps(token.actor),
                "token": token.token,
                "url": token.url,
                "created_at": token.created_at_utc,
                "updated_at": token.updated_at_utc,
            },
        )


# --- offline SQL ----------------------------------------------------------------------------


def _offline_sql(action: str, span: str) -> str:
    """Render the offline SQL of ``span`` (``from:to``) without touching a database."""
    config = migrate.make_config()
    buffer = io.StringIO()
    config.output_buffer = buffer
    config.attributes["url"] = "postgresql+psycopg://"
    getattr(migrate, action)(config, span, sql=True)
    return buffer.getvalue()


def _psql(url: sqlalchemy.URL, script: str) -> subprocess.CompletedProcess[str]:
    libpq_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run(
        ["psql", libpq_url, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_offline_sql_applies_with_psql(admin_url: sqlalchemy.URL) -> None:
    revisions = _revisions()
    spans = list(zip(["base", *revisions[:-1]], revisions, strict=True))
    with throwaway_database(admin_url) as url:
        for start, end in spans:
            result = _psql(url, _offline_sql("upgrade", f"{start}:{end}"))
            assert result.returncode == 0, f"upgrade {start}:{end}: {result.stderr}"

        engine = create_engine(url, poolclass=NullPool)
        try:
            assert migrate.current(migrate.make_config(_url(engine))) == [revisions[-1]]
            migrate.check(migrate.make_config(_url(engine)))
        finally:
            engine.dispose()

        for start, end in reversed(spans):
            result = _psql(url, _offline_sql("downgrade", f"{end}:{start}"))
            assert result.returncode == 0, f"downgrade {end}:{start}: {result.stderr}"
