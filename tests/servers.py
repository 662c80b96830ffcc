"""PostgreSQL servers for the test suite.

`test_server_url` picks one server per test session, in this order:

1. ``ACTORTOKEN_STORE_TEST_DATABASE_URL``, when set and non-empty.
2. A testcontainers ``PostgresContainer``, when a Docker engine responds to a ping.
3. An embedded PostgreSQL server in a temporary data folder, removed afterwards.

Each test that writes gets its own database from `throwaway_database`.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy.pool import NullPool

from actortoken_store.config import create_engine, display_url, to_sqlalchemy_url
from actortoken_store.embedded import start_embedded, stop_embedded

logger = logging.getLogger(__name__)

ENV_TEST_DATABASE_URL = "ACTORTOKEN_STORE_TEST_DATABASE_URL"
"""Environment variable with the admin URL of an existing server for the test suite."""

ADMIN_DATABASE = "postgres"
"""Database that the admin URL connects to when the given URL names none."""

POSTGRES_IMAGE = "postgres:16-alpine"
"""Docker image for the testcontainers server."""

DOCKER_PING_TIMEOUT = 3
"""Seconds to wait for the Docker engine before falling back to the embedded server."""

THROWAWAY_PREFIX = "ats_test_"


@contextmanager
def test_server_url() -> Iterator[sqlalchemy.URL]:
    """Provide the admin URL of the test server and stop the server afterwards.

    The URL has the ``postgresql+psycopg`` form. Its user may create and drop databases.
    A server given by ``ACTORTOKEN_STORE_TEST_DATABASE_URL`` is left running.
    """
    from_environment = os.environ.get(ENV_TEST_DATABASE_URL)
    if from_environment:
        url = to_sqlalchemy_url(from_environment)
        if not url.database:
            url = url.set(database=ADMIN_DATABASE)
        yield url
        return

    if _docker_responds():
        with _container_server() as url:
            yield url
        return

    with tempfile.TemporaryDirectory(prefix="ats-test-pg-") as folder:
        data_dir = Path(folder) / "pgdata"
        url = start_embedded(data_dir, database=ADMIN_DATABASE)
        try:
            yield url
        finally:
            # The server must stop before TemporaryDirectory removes its data folder.
            stop_embedded(data_dir)


# Pytest would otherwise collect this context manager as a test wherever it is imported
# into a test module, because its name starts with "test".
test_server_url.__test__ = False  # type: ignore[attr-defined]


@contextmanager
def throwaway_database(admin_url: sqlalchemy.URL) -> Iterator[sqlalchemy.URL]:
    """Create a database with a random ``ats_test_<hex>`` name and drop it afterwards.

    The drop uses ``WITH (FORCE)``, which needs PostgreSQL 13 or later, so connections
    that a failed test left open do not block it.

    Args:
        admin_url: URL of a database on the server, whose user may create databases.

    Yields:
        The URL of the new database, in ``postgresql+psycopg`` form.
    """
    # Lowercase letters, digits and underscores only, so the name needs no quoting.
    name = f"{THROWAWAY_PREFIX}{secrets.token_hex(6)}"
    _execute_autocommit(admin_url, f"CREATE DATABASE {name}")
    try:
        yield to_sqlalchemy_url(admin_url).set(database=name)
    finally:
        _execute_autocommit(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def server_label(url: sqlalchemy.URL) -> str:
    """Return "PostgreSQL <version> at <url without password>" for the pytest header."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            version = connection.execute(sqlalchemy.text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    return f"PostgreSQL {version} at {display_url(url)}"


def _docker_responds() -> bool:
    try:
        import docker  # type: ignore[import-untyped]
        from docker.errors import DockerException  # type: ignore[import-untyped]
        from requests.exceptions import RequestException
    except ImportError:
        return False

    # docker 7.2 leaves its Unix socket unclosed when the connection fails. The
    # ResourceWarning from that socket would fail a test suite that turns warnings into
    # errors, so it is ignored here and the socket is collected before leaving the block.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=DOCKER_PING_TIMEOUT)
            try:
                client.ping()
            finally:
                client.close()
        except (DockerException, RequestException, OSError):
            return False
        finally:
            gc.collect()
    return True


@contextmanager
def _container_server() -> Iterator[sqlalchemy.URL]:
    # NOTE: no Docker engine runs on the development and CI machines of this project, so
    # this path has not run there.
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        # Older testcontainers releases have the class only in testcontainers.postgres.
        from testcontainers.postgres import PostgresContainer

    logger.info("Starting PostgreSQL container %s", POSTGRES_IMAGE)
    with PostgresContainer(POSTGRES_IMAGE, driver="psycopg") as container:
        url = to_sqlalchemy_url(container.get_connection_url())
        # The image makes the configured user a superuser, so it may create databases.
        yield url.set(database=ADMIN_DATABASE)


def _execute_autocommit(url: sqlalchemy.URL, statement: str) -> None:
    # CREATE DATABASE and DROP DATABASE cannot run inside a transaction block.
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(statement))
    finally:
        engine.dispose()
