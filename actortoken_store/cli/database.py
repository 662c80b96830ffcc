"""Opening the database for a command: which server, which schema, and a schema check.

Every command names the database it uses on stderr, with the password hidden. The embedded
default server belongs to the store, so its schema is upgraded to the newest revision
automatically. Any other database is never migrated implicitly: a missing or outdated
schema raises `SchemaNotReadyError`, whose message names ``db upgrade`` as the fix.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from actortoken_store import migrate
from actortoken_store.config import (
    DatabaseChoice,
    create_engine,
    display_url,
    resolve_database,
    resolve_schema,
)
from actortoken_store.dberrors import translate_database_errors
from actortoken_store.errors import ConnectionFailedError, SchemaNotReadyError

__all__ = ["OpenDatabase", "announce", "migration_config", "open_database", "resolve"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenDatabase:
    """The database a command works on."""

    choice: DatabaseChoice
    schema: str
    engine: Engine


def announce(message: str) -> None:
    """Print a status line to stderr, keeping stdout for the command's output."""
    print(f"actortoken-store: {message}", file=sys.stderr)


def resolve(args: argparse.Namespace) -> tuple[DatabaseChoice, str]:
    """Resolve the database and schema from the global options and announce them.

    Raises:
        ConfigurationError: the URL or schema name is invalid, or the embedded server
            failed to start.
    """
    schema = resolve_schema(args.schema)
    choice = resolve_database(args.database_url)
    announce(f"{choice.describe()}, schema {schema!r}")
    return choice, schema


def migration_config(choice: DatabaseChoice, schema: str) -> Config:
    """Build the Alembic configuration for the chosen database and schema."""
    return migrate.make_config(choice.url.render_as_string(hide_password=False), schema=schema)


@contextmanager
def open_database(args: argparse.Namespace, *, check_schema: bool = True) -> Iterator[OpenDatabase]:
    """Connect to the database the global options choose, and dispose of it afterwards.

    Args:
        args: the parsed command line, with ``database_url`` and ``schema``.
        check_schema: upgrade the embedded database to the newest revision, and require
            any other database to be at it already.

    Raises:
        ConnectionFailedError: no connection could be opened.
        SchemaNotReadyError: the store's tables are missing or outdated in a database
            other than the embedded one.
    """
    choice, schema = resolve(args)
    # One pooled connection serves the schema check and then the command.
    engine = create_engine(choice.url, pool_size=1)
    try:
        current = _current_revisions(engine, choice, schema)
        if check_schema:
            _ensure_schema(choice, schema, current)
        yield OpenDatabase(choice, schema, engine)
    finally:
        engine.dispose()


def _current_revisions(engine: Engine, choice: DatabaseChoice, schema: str) -> list[str]:
    try:
        connection = engine.connect()
    except DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise ConnectionFailedError(
            f"failed to connect to {display_url(choice.url)}: {detail}"
        ) from exc
    with connection, translate_database_errors():
        return migrate.current(migrate.make_config(schema=schema, connection=connection))


def _ensure_schema(choice: DatabaseChoice, schema: str, current: list[str]) -> None:
    head = migrate.head()
    if current == [head]:
        return
    if choice.source == "embedded":
        logger.info("Upgrading the embedded database's schema %r to revision %s", schema, head)
        migrate.upgrade(migration_config(choice, schema))
        announce(f"upgraded the embedded database's schema {schema!r} to revision {head}")
        return
    if not current:
        raise SchemaNotReadyError(
            f"the store's tables are missing from schema {schema!r} of "
            f"{display_url(choice.url)}; run 'actortoken-store db upgrade' first"
        )
    raise SchemaNotReadyError(
        f"schema {schema!r} of {display_url(choice.url)} is at revision "
        f"{', '.join(current)}, but this version of actortoken-store needs revision {head}; "
        "run 'actortoken-store db upgrade'"
    )
