"""The one seam where database exceptions become the library's own errors.

Errors are classified by SQLSTATE, never by message text, and the library error is chained
``from`` the original, so the driver's diagnostics stay in the traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
from sqlalchemy import exc as sa_exc

from actortoken_store.errors import (
    ActorTokenStoreError,
    ConnectionFailedError,
    ConnectionLostError,
    DatabaseError,
    SchemaNotReadyError,
    TransientDatabaseError,
)

__all__ = ["translate_database_errors", "translate_driver_error", "translate_error"]

_CONNECTION_CLASSES: Final = ("08",)
"""SQLSTATE class 08: connection exception."""

_CONNECTION_STATES: Final = frozenset(
    {
        "57P01",  # admin_shutdown: pg_terminate_backend or a server stop
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: the server is starting or stopping
    }
)
_TRANSIENT_STATES: Final = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available: lock_timeout expired
        "57014",  # query_canceled: statement_timeout expired, or a cancel request
    }
)
_MISSING_OBJECT_STATES: Final = frozenset({"42P01", "42704", "3F000"})
"""undefined_table, undefined_object (such as the enum type), invalid_schema_name."""


def translate_error(error: sa_exc.DBAPIError) -> ActorTokenStoreError:
    """Return the library error for a SQLAlchemy-wrapped driver error."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    detail = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
    if _failed_to_connect(error, sqlstate):
        return ConnectionFailedError(
            f"failed to connect to the database: {detail}; check the host, port, database "
            "name and credentials of the database URL, and that the server is running",
            sqlstate=sqlstate,
        )
    lost = error.connection_invalidated or (
        sqlstate is None and isinstance(error, sa_exc.OperationalError)
    )
    return _classify(sqlstate, detail, lost)


def _failed_to_connect(error: sa_exc.DBAPIError, sqlstate: str | None) -> bool:
    # SQLAlchemy wraps an error of the pool's connect step without a statement, and psycopg
    # reports a failed connect (refused, timed out, unknown database or role, wrong
    # password) without a SQLSTATE. A connection lost at COMMIT also has no statement, but
    # SQLAlchemy marks it as a disconnect and invalidates the connection.
    return (
        isinstance(error, sa_exc.OperationalError)
        and error.statement is None
        and sqlstate is None
        and not error.connection_invalidated
    )


def translate_driver_error(error: psycopg.Error) -> ActorTokenStoreError:
    """Return the library error for an error that psycopg raised directly."""
    text = str(error).strip()
    detail = text.splitlines()[0] if text else type(error).__name__
    lost = error.sqlstate is None and isinstance(error, psycopg.OperationalError)
    return _classify(error.sqlstate, detail, lost)


def _classify(sqlstate: str | None, detail: str, lost: bool) -> ActorTokenStoreError:
    if lost or (
        sqlstate is not None
        and (sqlstate[:2] in _CONNECTION_CLASSES or sqlstate in _CONNECTION_STATES)
    ):
        return ConnectionLostError(
            f"database connection lost: {detail}; nothing of the interrupted transaction "
            "was committed, so the call can be retried",
            sqlstate=sqlstate,
        )
    if sqlstate in _TRANSIENT_STATES:
        return TransientDatabaseError(
            f"database error: {detail}; the transaction was aborted, so roll it back and "
            "retry the call",
            sqlstate=sqlstate,
        )
    if sqlstate in _MISSING_OBJECT_STATES:
        return SchemaNotReadyError(
            f"the store's tables are missing ({detail}); run 'actortoken-store db upgrade'"
        )
    return DatabaseError(f"database error: {detail}", sqlstate=sqlstate)


@contextmanager
def translate_database_errors() -> Iterator[None]:
    """Re-raise driver errors raised inside the block as library errors.

    Both kinds are translated: SQLAlchemy's wrappers, and psycopg's own errors from
    statements run on the driver connection directly (`actortoken_store.driver`).
    """
    try:
        yield
    except sa_exc.DBAPIError as error:
        raise translate_error(error) from error
    except psycopg.Error as error:
        raise translate_driver_error(error) from error
