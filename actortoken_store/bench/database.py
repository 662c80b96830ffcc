"""The bench's own database: created on a server, migrated, emptied between runs, dropped."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy
from psycopg import sql

from actortoken_store import migrate
from actortoken_store.config import display_url, resolve_database, to_sqlalchemy_url
from actortoken_store.schema import metadata
from actortoken_store.secrets import SecretsMode, SecretsPolicy

__all__ = ["BENCH_SECRETS", "bench_database", "empty_tables", "libpq_url", "server_version"]

logger = logging.getLogger(__name__)

DATABASE_PREFIX = "actortoken_bench_"

BENCH_SECRETS = SecretsPolicy(SecretsMode.PLAINTEXT, keep_terminal_tickets=True)
"""The store keeps tickets as given, so it writes and reads the same values as the raw
psycopg references. Encryption costs extra per row and is not measured here."""


def libpq_url(url: sqlalchemy.URL) -> str:
    """Return ``url`` in the plain ``postgresql://`` form that psycopg connects with."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def bench_database(server_url: str | None) -> Iterator[sqlalchemy.URL]:
    """Create a migrated database for one bench run and drop it afterwards.

    ``server_url`` names any database on the server (its user must be allowed to create
    databases); None uses ``ACTORTOKEN_STORE_DATABASE_URL``, else the embedded server.
    """
    choice = resolve_database(server_url)
    admin = libpq_url(choice.url)
    name = f"{DATABASE_PREFIX}{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = to_sqlalchemy_url(choice.url).set(database=name)
    logger.info("bench database %s", display_url(url))
    try:
        migrate.upgrade(migrate.make_config(url.render_as_string(hide_password=False)))
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def empty_tables(url: str) -> None:
    """Empty every store table, then checkpoint so that each timed run starts alike.

    Replica mode skips triggers for the TRUNCATE, including ones that keep an
    append-only table from being emptied.
    """
    names = sql.SQL(", ").join(
        sql.Identifier(table.name) for table in reversed(metadata.sorted_tables)
    )
    with psycopg.connect(url) as connection:
        connection.execute("SET LOCAL session_replication_role = replica")
        connection.execute(sql.SQL("TRUNCATE {}").format(names))
        connection.commit()
        connection.autocommit = True
        try:
            connection.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            logger.info("no CHECKPOINT between runs: the bench's user may not run it")


def server_version(url: str) -> str:
    """Return the server's ``server_version`` setting."""
    with psycopg.connect(url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"
