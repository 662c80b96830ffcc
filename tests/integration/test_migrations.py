"""The Alembic migrations, on a throwaway database that each test starts empty."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from actortoken_store import migrate
from actortoken_store.config import create_engine
from actortoken_store.migrate import VERSION_TABLE, MigrationError
from actortoken_store.model import ActorToken
from actortoken_store.results import SaveOutcome
from tests.conftest import load_jsonl
from tests.drivers import KINDS, Kind, RepoFactory, count_statements
from tests.servers import throwaway_database

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAD = migrate.head()


@pytest.fixture(scope="module")
def module_database(admin_url: sqlalchemy.URL) -> Iterator[str]:
    """URL (password included) of a database for this module, dropped afterwards."""
    with throwaway_database(admin_url) as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture
def fresh_url(module_database: str) -> str:
    """URL of the module's database with every schema dropped and an empty public.

    Dropping the schemas takes milliseconds where a new database takes most of a second.
    """
    schemas = query(
        module_database,
        "SELECT nspname FROM pg_namespace"
        " WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'",
    )
    quoted = ['"' + name.replace('"', '""') + '"' for (name,) in schemas]
    statements = [f"DROP SCHEMA {name} CASCADE" for name in quoted]
    execute(module_database, "; ".join([*statements, "CREATE SCHEMA public"]))
    return module_database


def query(url: str, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), parameters)]
    finally:
        engine.dispose()


def execute(url: str, sql: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


def tables(url: str) -> set[tuple[str, str]]:
    """Return (schema, table) of every table outside the system schemas."""
    rows = query(
        url,
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    return {(schema, name) for schema, name in rows}


def enum_types(url: str) -> set[tuple[str, str]]:
    """Return (schema, type) of every enum type."""
    rows = query(
        url,
        "SELECT n.nspname, t.typname FROM pg_type t"
        " JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e'",
    )
    return {(schema, name) for schema, name in rows}


def versions(url: str, table: str = f"public.{VERSION_TABLE}") -> list[str]:
    return [row[0] for row in query(url, f"SELECT version_num FROM {table}")]


def test_upgrade_then_downgrade_to_base(fresh_url: str) -> None:
    config = migrate.make_config(fresh_url)
    assert migrate.current(config) == []

    migrate.upgrade(config)

    assert ("public", "actor_tokens") in tables(fresh_url)
    assert ("public", "actor_token_status") in enum_types(fresh_url)
    assert versions(fresh_url) == [HEAD]
    assert migrate.current(migrate.make_config(fresh_url)) == [HEAD]

    migrate.downgrade(migrate.make_config(fresh_url), "base")

    assert tables(fresh_url) == {("public", VERSION_TABLE)}
    assert enum_types(fresh_url) == set()
    assert versions(fresh_url) == []
    assert query(fresh_url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'") == [
        (f"{VERSION_TABLE}_pkc",)
    ]


def test_upgrade_twice_is_noop(fresh_url: str) -> None:
    migrate.upgrade(migrate.make_config(fresh_url))

    migrate.upgrade(migrate.make_config(fresh_url))

    assert versions(fresh_url) == [HEAD]


def test_upgrade_again_after_downgrade(fresh_url: str) -> None:
    migrate.upgrade(migrate.make_config(fresh_url))
    migrate.downgrade(migrate.make_config(fresh_url), "base")

    migrate.upgrade(migrate.make_config(fresh_url))

    assert versions(fresh_url) == [HEAD]
    migrate.check(migrate.make_config(fresh_url))


def test_other_alembic_version_untouched(fresh_url: str) -> None:
    # Another application of the same database keeps its history in alembic_version.
    execute(
        fresh_url,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);"
        " INSERT INTO alembic_version VALUES ('ae1027a6acf');"
        " CREATE TABLE invoices (id serial PRIMARY KEY)",
    )

    migrate.upgrade(migrate.make_config(fresh_url))

    assert versions(fresh_url, "alembic_version") == ["ae1027a6acf"]
    assert versions(fresh_url) == [HEAD]
    migrate.check(migrate.make_config(fresh_url))

    migrate.downgrade(migrate.make_config(fresh_url), "base")

    assert versions(fresh_url, "alembic_version") == ["ae1027a6acf"]
    assert ("public", "invoices") in tables(fresh_url)


def test_check_reports_no_difference(fresh_url: str) -> None:
    migrate.upgrade(migrate.make_config(fresh_url))

    migrate.check(migrate.make_config(fresh_url))


def test_check_detects_difference(fresh_url: str) -> None:
    migrate.upgrade(migrate.make_config(fresh_url))
    execute(fresh_url, "DROP INDEX ix_actor_tokens_pending_created_at")

    with pytest.raises(MigrationError) as caught:
        migrate.check(migrate.make_config(fresh_url))

    assert "differs from the models" in str(caught.value)


def test_check_before_upgrade_fails(fresh_url: str) -> None:
    with pytest.raises(MigrationError):
        migrate.check(migrate.make_config(fresh_url))


def test_upgrade_in_caller_transaction(fresh_url: str) -> None:
    engine = create_engine(fresh_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            # Alembic commits a transaction it began itself, so the caller begins one.
            connection.begin()
            migrate.upgrade(migrate.make_config(connection=connection))
            assert migrate.current(migrate.make_config(connection=connection)) == [HEAD]
            connection.rollback()
    finally:
        engine.dispose()

    assert ("public", "actor_tokens") not in tables(fresh_url)


def test_upgrade_in_other_schema(fresh_url: str) -> None:
    config = migrate.make_config(fresh_url, schema="tenant_a")

    migrate.upgrade(config)

    assert tables(fresh_url) == {
        ("tenant_a", "actor_tokens"),
        ("tenant_a", "actor_token_events"),
        ("tenant_a", VERSION_TABLE),
    }
    assert enum_types(fresh_url) == {("tenant_a", "actor_token_status")}
    assert versions(fresh_url, f"tenant_a.{VERSION_TABLE}") == [HEAD]
    assert migrate.current(migrate.make_config(fresh_url, schema="tenant_a")) == [HEAD]
    assert migrate.current(migrate.make_config(fresh_url)) == []
    migrate.check(migrate.make_config(fresh_url, schema="tenant_a"))

    migrate.downgrade(migrate.make_config(fresh_url, schema="tenant_a"), "base")

    assert tables(fresh_url) == {("tenant_a", VERSION_TABLE)}
    assert enum_types(fresh_url) == set()


def test_two_schemas_side_by_side(fresh_url: str) -> None:
    migrate.upgrade(migrate.make_config(fresh_url))
    migrate.upgrade(migrate.make_config(fresh_url, schema="tenant_a"))
    migrate.check(migrate.make_config(fresh_url))
    migrate.check(migrate.make_config(fresh_url, schema="tenant_a"))

    migrate.downgrade(migrate.make_config(fresh_url, schema="tenant_a"), "base")

    assert ("public", "actor_tokens") in tables(fresh_url)
    assert enum_types(fresh_url) == {("public", "actor_token_status")}
    migrate.check(migrate.make_config(fresh_url))


def test_schema_from_x_argument(fresh_url: str) -> None:
    config = migrate.make_config(fresh_url)
    config.cmd_opts = type("Options", (), {"x": ["schema=tenant_x"]})()  # type: ignore[assignment]

    migrate.upgrade(config)

    assert ("tenant_x", "actor_tokens") in tables(fresh_url)


PSQL = shutil.which("psql")


def offline_sql(*arguments: str) -> str:
    """Run ``alembic ... upgrade head --sql`` from the repository root; return the SQL."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ACTORTOKEN_STORE_DATABASE_URL", "ACTORTOKEN_STORE_SCHEMA")
    }
    completed = subprocess.run(
        [sys.executable, "-m", "alembic", *arguments, "upgrade", "head", "--sql"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def apply_with_psql(url: str, sql: str) -> None:
    assert PSQL is not None
    libpq_url = sqlalchemy.make_url(url).set(drivername="postgresql")
    completed = subprocess.run(
        [
            PSQL,
            libpq_url.render_as_string(hide_password=False),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


@pytest.mark.skipif(PSQL is None, reason="psql is not installed, so the SQL cannot be applied")
def test_offline_sql_applies_with_psql(fresh_url: str) -> None:
    sql = offline_sql()

    apply_with_psql(fresh_url, sql)

    assert versions(fresh_url) == [HEAD]
    assert migrate.current(migrate.make_config(fresh_url)) == [HEAD]
    migrate.check(migrate.make_config(fresh_url))


@pytest.mark.skipif(PSQL is None, reason="psql is not installed, so the SQL cannot be applied")
def test_offline_sql_in_other_schema(fresh_url: str) -> None:
    # The same SQL as 'alembic -x schema=tenant_b upgrade head --sql', made in-process.
    config = migrate.make_config("postgresql://", schema="tenant_b")
    config.output_buffer = io.StringIO()
    migrate.upgrade(config, sql=True)
    sql = config.output_buffer.getvalue()

    apply_with_psql(fresh_url, sql)

    assert tables(fresh_url) == {
        ("tenant_b", "actor_tokens"),
        ("tenant_b", "actor_token_events"),
        ("tenant_b", VERSION_TABLE),
    }
    migrate.check(migrate.make_config(fresh_url, schema="tenant_b"))


@pytest.mark.parametrize("kind", KINDS)
def test_schema_name_needing_quotes(fresh_url: str, repo_factory: RepoFactory, kind: Kind) -> None:
    schema = 'Tenant-A "ü"'
    migrate.upgrade(migrate.make_config(fresh_url, schema=schema))
    migrate.check(migrate.make_config(fresh_url, schema=schema))
    repo = repo_factory.open(kind, schema=schema, url=fresh_url)
    token = ActorToken.from_clerk(load_jsonl("actor_tokens.jsonl")[0])

    with count_statements(repo.engine) as statements:
        observed = repo.save_many([token])
    direct = repo.save(token)

    assert observed.count(SaveOutcome.INSERTED) == 1
    assert direct is SaveOutcome.UNCHANGED
    assert repo.get(token.id) == token
    assert all('"Tenant-A ""ü"""' in statement for statement in statements)
    repo.rollback()
    repo_factory.close()
    migrate.downgrade(migrate.make_config(fresh_url, schema=schema), "base")
    assert tables(fresh_url) == {(schema, VERSION_TABLE)}
