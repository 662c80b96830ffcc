"""Database URL handling: which PostgreSQL server to use and how to connect to it.

The library talks to PostgreSQL through psycopg 3 only. Every URL a caller hands in is
normalized to SQLAlchemy's ``postgresql+psycopg`` form (or ``postgresql+psycopg_async``
for asyncio), so plain libpq and hosting-provider URLs work as they are.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _sa_create_async_engine

from actortoken_store.errors import ConfigurationError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_SCHEMA",
    "ENV_DATABASE_URL",
    "ENV_SCHEMA",
    "DatabaseChoice",
    "create_async_engine",
    "create_engine",
    "display_url",
    "resolve_database",
    "resolve_schema",
    "to_sqlalchemy_url",
    "validate_identifier",
    "validate_schema_name",
]

logger = logging.getLogger(__name__)

ENV_DATABASE_URL = "ACTORTOKEN_STORE_DATABASE_URL"
"""Environment variable that contains the database URL when no argument names one."""

ENV_SCHEMA = "ACTORTOKEN_STORE_SCHEMA"
"""Environment variable that contains the schema name when no argument names one."""

DEFAULT_SCHEMA = "public"

DEFAULT_CONNECT_TIMEOUT = 10
"""Seconds that a new connection may take before psycopg gives up."""

SYNC_DRIVERNAME = "postgresql+psycopg"
ASYNC_DRIVERNAME = "postgresql+psycopg_async"

# Schemes accepted on input. "postgres" is the scheme that Heroku-style hosting providers
# and libpq accept. SQLAlchemy itself no longer accepts it.
_ACCEPTED_DRIVERNAMES = frozenset({"postgresql", "postgres", SYNC_DRIVERNAME, ASYNC_DRIVERNAME})
_EXAMPLE_URL = "postgresql://user:password@localhost:5432/dbname"
_ACCEPTED_FORMS = "postgresql://, postgres://, postgresql+psycopg:// or postgresql+psycopg_async://"

# PostgreSQL truncates longer identifiers to NAMEDATALEN - 1 bytes (NAMEDATALEN is 64 in
# standard builds), so a longer name would silently refer to a different object.
MAX_IDENTIFIER_BYTES = 63

# Leading "scheme:" and slashes of text that make_url could not parse. _mask_unparsed keeps
# them and hides the rest of the user information, which may contain a password.
_SCHEME_PREFIX = re.compile(r"[A-Za-z][\w+.-]*:[/\s]*")


def to_sqlalchemy_url(url: str | sqlalchemy.URL, *, async_driver: bool = False) -> sqlalchemy.URL:
    """Normalize a PostgreSQL URL to the psycopg 3 driver that the library uses.

    Accepts ``postgresql://``, ``postgres://``, ``postgresql+psycopg://`` and
    ``postgresql+psycopg_async://`` URLs, as strings or ``sqlalchemy.URL`` objects. The scheme
    is compared case-insensitively. User, password, host, port, database and query parameters
    (such as ``host=/socket/dir`` or ``sslmode``) are kept.

    Args:
        url: the URL to normalize.
        async_driver: return the ``postgresql+psycopg_async`` form for ``create_async_engine``
            instead of ``postgresql+psycopg``.

    Raises:
        ConfigurationError: the URL is empty, cannot be parsed, or names another database or
            driver (for example mysql, sqlite, asyncpg or psycopg2).
    """
    if isinstance(url, str):
        text = url.strip()
        if not text:
            raise ConfigurationError(
                f"database URL is empty: expected a URL such as {_EXAMPLE_URL}"
            )
        try:
            parsed = sqlalchemy.make_url(text)
        except (ArgumentError, ValueError) as exc:
            # make_url raises ValueError for a port that is not a number, such as "abc",
            # "5432:5433" or the rest of an unclosed IPv6 bracket.
            raise ConfigurationError(
                f"invalid database URL {_mask_unparsed(text)!r}: expected a URL such as "
                f"{_EXAMPLE_URL}, with a numeric port and IPv6 hosts in [brackets]"
            ) from exc
    else:
        parsed = url

    drivername = parsed.drivername.lower()
    if drivername not in _ACCEPTED_DRIVERNAMES:
        raise ConfigurationError(
            f"unsupported database URL scheme {parsed.drivername!r}: actortoken-store needs "
            f"PostgreSQL through psycopg 3, so use one of {_ACCEPTED_FORMS}"
        )

    return parsed.set(drivername=ASYNC_DRIVERNAME if async_driver else SYNC_DRIVERNAME)


def display_url(url: str | sqlalchemy.URL) -> str:
    """Render a database URL for printing, with the password replaced by ``***``.

    Never raises. For text that is not a URL, everything between the scheme and the last
    ``@`` is hidden, because the parts of the user information cannot be told apart.
    """
    if not isinstance(url, str):
        return url.render_as_string(hide_password=True)
    try:
        parsed = sqlalchemy.make_url(url)
    except (ArgumentError, ValueError):
        return _mask_unparsed(url)
    return parsed.render_as_string(hide_password=True)


def validate_identifier(name: str, *, kind: str = "identifier") -> str:
    """Check that ``name`` can be used as a PostgreSQL identifier and return it unchanged.

    The name must be non-empty, at most 63 bytes in UTF-8 and free of NUL characters. Any
    other character is allowed because SQLAlchemy and psycopg quote identifiers.

    Args:
        name: the identifier to check.
        kind: what the identifier names, such as "schema name", used in the error message.

    Raises:
        ConfigurationError: the name is empty, too long or contains NUL.
    """
    if not isinstance(name, str):
        raise ConfigurationError(f"{kind} must be a string, got {type(name).__name__}")
    if not name:
        raise ConfigurationError(f"{kind} is empty: give a non-empty PostgreSQL identifier")
    if "\x00" in name:
        raise ConfigurationError(f"invalid {kind} {name!r}: it contains a NUL character")
    size = len(name.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise ConfigurationError(
            f"invalid {kind} {name!r}: it is {size} bytes long in UTF-8, and PostgreSQL "
            f"allows at most {MAX_IDENTIFIER_BYTES}"
        )
    return name


def validate_schema_name(name: str) -> str:
    """Check a schema name with `validate_identifier` and return it unchanged.

    Raises:
        ConfigurationError: the name is empty, longer than 63 bytes or contains NUL.
    """
    return validate_identifier(name, kind="schema name")


def resolve_schema(explicit: str | None = None) -> str:
    """Return the schema to use: the argument, else ``ACTORTOKEN_STORE_SCHEMA``, else public.

    An empty environment variable counts as unset.

    Raises:
        ConfigurationError: the chosen name is not a valid identifier.
    """
    if explicit is not None:
        return validate_schema_name(explicit)
    from_environment = os.environ.get(ENV_SCHEMA)
    if from_environment:
        return validate_schema_name(from_environment)
    return DEFAULT_SCHEMA


@dataclass(frozen=True)
class DatabaseChoice:
    """A normalized database URL and where it came from.

    Attributes:
        url: the URL in ``postgresql+psycopg`` or ``postgresql+psycopg_async`` form.
        source: "argument" when the caller passed the URL, "environment" when it came from
            ``ACTORTOKEN_STORE_DATABASE_URL``, "embedded" for the embedded server.
    """

    url: sqlalchemy.URL
    source: Literal["argument", "environment", "embedded"]

    def describe(self) -> str:
        """Return a one-line description for logs and command output, without the password."""
        if self.source == "argument":
            origin = "given as argument"
        elif self.source == "environment":
            origin = f"from {ENV_DATABASE_URL}"
        else:
            origin = f"embedded server; set {ENV_DATABASE_URL} to use another server"
        return f"using PostgreSQL at {display_url(self.url)} ({origin})"


def resolve_database(explicit: str | None = None, *, async_driver: bool = False) -> DatabaseChoice:
    """Choose the database: the argument, else ``ACTORTOKEN_STORE_DATABASE_URL``, else embedded.

    An empty environment variable counts as unset. An empty argument does not: it raises,
    because it usually comes from a variable that the caller forgot to set. The embedded
    server is started (or reused) by `actortoken_store.embedded.start_embedded` in its
    default data folder, which can take a few seconds on first use.

    Raises:
        ConfigurationError: the chosen URL is invalid, or the embedded server failed to start.
    """
    if explicit is not None:
        choice = DatabaseChoice(to_sqlalchemy_url(explicit, async_driver=async_driver), "argument")
    elif from_environment := os.environ.get(ENV_DATABASE_URL):
        choice = DatabaseChoice(
            to_sqlalchemy_url(from_environment, async_driver=async_driver), "environment"
        )
    else:
        # Imported here because the embedded module imports this one.
        from actortoken_store.embedded import start_embedded

        embedded_url = start_embedded()
        choice = DatabaseChoice(
            to_sqlalchemy_url(embedded_url, async_driver=async_driver), "embedded"
        )

    logger.debug("%s", choice.describe())
    return choice


def create_engine(
    url: str | sqlalchemy.URL,
    *,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
    **kwargs: Any,
) -> sqlalchemy.Engine:
    """Create a SQLAlchemy engine for the URL with the psycopg 3 driver.

    The URL is normalized with `to_sqlalchemy_url`. ``pool_pre_ping`` defaults to True so
    that connections dropped by a server restart are replaced. ``hide_parameters``
    defaults to True, so errors and SQL logs never show statement parameters, which can
    contain tickets. ``connect_timeout`` (whole
    seconds; psycopg, like libpq, raises values below 2 to 2) applies unless the URL query
    or ``connect_args`` already sets one. Other keyword arguments go to
    `sqlalchemy.create_engine` unchanged.

    The caller owns the engine and must call ``engine.dispose()`` when done with it.

    Raises:
        ConfigurationError: the URL is invalid or not a PostgreSQL URL.
    """
    normalized = to_sqlalchemy_url(url)
    return sqlalchemy.create_engine(
        normalized, **_engine_options(normalized, connect_timeout, kwargs)
    )


def create_async_engine(
    url: str | sqlalchemy.URL,
    *,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
    **kwargs: Any,
) -> AsyncEngine:
    """Create an asyncio SQLAlchemy engine for the URL with the psycopg 3 async driver.

    Same defaults as `create_engine`. The caller owns the engine and must
    ``await engine.dispose()`` when done with it.

    Raises:
        ConfigurationError: the URL is invalid or not a PostgreSQL URL.
    """
    normalized = to_sqlalchemy_url(url, async_driver=True)
    return _sa_create_async_engine(
        normalized, **_engine_options(normalized, connect_timeout, kwargs)
    )


def _engine_options(
    url: sqlalchemy.URL, connect_timeout: int, kwargs: dict[str, Any]
) -> dict[str, Any]:
    options = dict(kwargs)
    options.setdefault("pool_pre_ping", True)
    # Statement parameters carry tickets in plaintext secrets mode, so errors and logs
    # must not echo them.
    options.setdefault("hide_parameters", True)
    connect_args = dict(options.get("connect_args") or {})
    if "connect_timeout" not in url.query:
        connect_args.setdefault("connect_timeout", connect_timeout)
    options["connect_args"] = connect_args
    return options


def _mask_unparsed(text: str) -> str:
    at = text.rfind("@")
    if at < 0:
        return text
    scheme = _SCHEME_PREFIX.match(text[:at])
    scheme_text = scheme.group(0) if scheme else ""
    return f"{scheme_text}***{text[at:]}"
