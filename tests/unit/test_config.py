"""Tests for database URL handling in actortoken_store.config."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event

from actortoken_store import config, embedded
from actortoken_store.config import (
    ENV_DATABASE_URL,
    ENV_SCHEMA,
    DatabaseChoice,
    create_async_engine,
    create_engine,
    display_url,
    resolve_database,
    resolve_schema,
    to_sqlalchemy_url,
    validate_schema_name,
)
from actortoken_store.errors import ActorTokenStoreError, ConfigurationError


class _ConnectIntercepted(Exception):
    """Raised from a do_connect listener so that no connection is attempted."""


def _captured_connect_params(engine: sqlalchemy.Engine) -> dict[str, Any]:
    captured: dict[str, Any] = {}

    def capture(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        captured.update(cparams)
        raise _ConnectIntercepted

    event.listen(engine, "do_connect", capture)
    with pytest.raises(_ConnectIntercepted):
        engine.connect()
    return captured


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(ENV_DATABASE_URL, raising=False)
    monkeypatch.delenv(ENV_SCHEMA, raising=False)
    return monkeypatch


# --- to_sqlalchemy_url ---


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://alice:secret@db.example:5433/tokens",
        "postgres://alice:secret@db.example:5433/tokens",
        "postgresql+psycopg://alice:secret@db.example:5433/tokens",
        "postgresql+psycopg_async://alice:secret@db.example:5433/tokens",
        "PostgreSQL://alice:secret@db.example:5433/tokens",
    ],
)
def test_accepted_schemes_normalize_to_psycopg(text: str) -> None:
    url = to_sqlalchemy_url(text)

    assert url.drivername == "postgresql+psycopg"
    assert url.username == "alice"
    assert url.password == "secret"
    assert url.host == "db.example"
    assert url.port == 5433
    assert url.database == "tokens"


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://alice@localhost/tokens",
        "postgres://alice@localhost/tokens",
        "postgresql+psycopg://alice@localhost/tokens",
        "postgresql+psycopg_async://alice@localhost/tokens",
    ],
)
def test_async_driver_gives_psycopg_async(text: str) -> None:
    assert to_sqlalchemy_url(text, async_driver=True).drivername == "postgresql+psycopg_async"


def test_url_object_is_accepted() -> None:
    source_url = sqlalchemy.URL.create("postgres", username="bob", host="h", database="d")

    url = to_sqlalchemy_url(source_url)

    assert url.drivername == "postgresql+psycopg"
    assert url.username == "bob"
    assert url.database == "d"


def test_query_parameters_are_kept() -> None:
    url = to_sqlalchemy_url(
        "postgresql://postgres@/tokens?host=/run/postgresql&sslmode=require&application_name=x"
    )

    assert url.query["host"] == "/run/postgresql"
    assert url.query["sslmode"] == "require"
    assert url.query["application_name"] == "x"
    assert url.host is None


def test_surrounding_whitespace_is_ignored() -> None:
    assert to_sqlalchemy_url("  postgresql://u@h/d\n").database == "d"


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("mysql://u:p@localhost/db", "mysql"),
        ("mysql+pymysql://u:p@localhost/db", "mysql+pymysql"),
        ("sqlite:///tokens.db", "sqlite"),
        ("postgresql+asyncpg://u:p@localhost/db", "postgresql+asyncpg"),
        ("postgresql+psycopg2://u:p@localhost/db", "postgresql+psycopg2"),
        ("postgresql+pg8000://u:p@localhost/db", "postgresql+pg8000"),
    ],
)
def test_other_drivers_are_rejected(text: str, scheme: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        to_sqlalchemy_url(text)

    message = str(raised.value)
    assert repr(scheme) in message
    assert "postgresql://" in message
    assert "postgres://" in message
    assert "postgresql+psycopg://" in message
    assert "postgresql+psycopg_async://" in message


def test_rejected_driver_with_async_flag() -> None:
    with pytest.raises(ConfigurationError, match="postgresql\\+asyncpg"):
        to_sqlalchemy_url("postgresql+asyncpg://u@h/d", async_driver=True)


@pytest.mark.parametrize("text", ["garbage", "not a url at all", "://missing-scheme"])
def test_unparsable_text_is_rejected(text: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid database URL"):
        to_sqlalchemy_url(text)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_url_is_rejected(text: str) -> None:
    with pytest.raises(ConfigurationError, match="database URL is empty"):
        to_sqlalchemy_url(text)


def test_unparsable_url_error_hides_password() -> None:
    with pytest.raises(ConfigurationError) as raised:
        to_sqlalchemy_url("postgresql:/ /alice:s3cret@host/db")

    assert "s3cret" not in str(raised.value)


def test_configuration_error_is_library_error() -> None:
    with pytest.raises(ActorTokenStoreError):
        to_sqlalchemy_url("sqlite://")


# --- display_url ---


def test_display_url_hides_password() -> None:
    rendered = display_url(to_sqlalchemy_url("postgresql://alice:s3cret@db:5432/tokens"))

    assert "s3cret" not in rendered
    assert rendered == "postgresql+psycopg://alice:***@db:5432/tokens"


def test_display_url_accepts_text() -> None:
    assert display_url("postgres://alice:s3cret@db/tokens") == "postgres://alice:***@db/tokens"


def test_display_url_without_password() -> None:
    assert display_url("postgresql://alice@db/tokens") == "postgresql://alice@db/tokens"


def test_display_url_masks_unparsable_text() -> None:
    assert display_url("postgresql//alice:s3cret@db/tokens") == "***@db/tokens"
    assert display_url("postgresql:/ /alice:s3cret@db/tokens") == "postgresql:/ /***@db/tokens"
    assert display_url("not a url") == "not a url"


# --- schema names ---


@pytest.mark.parametrize(
    "name",
    ["public", "actor_tokens", "Mixed Case", 'with "quotes"', "x" * 63, "é" * 31 + "x"],
)
def test_valid_schema_names_are_returned(name: str) -> None:
    assert validate_schema_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("x" * 64, "64 bytes"),
        ("é" * 32, "64 bytes"),
        ("bad\x00name", "NUL"),
    ],
)
def test_invalid_schema_names_are_rejected(name: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as raised:
        validate_schema_name(name)

    assert "schema name" in str(raised.value)


def test_resolve_schema_order(clean_environment: pytest.MonkeyPatch) -> None:
    assert resolve_schema() == "public"

    clean_environment.setenv(ENV_SCHEMA, "")
    assert resolve_schema() == "public"

    clean_environment.setenv(ENV_SCHEMA, "from_env")
    assert resolve_schema() == "from_env"
    assert resolve_schema("explicit") == "explicit"


def test_resolve_schema_validates_environment(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv(ENV_SCHEMA, "y" * 64)

    with pytest.raises(ConfigurationError, match="schema name"):
        resolve_schema()


# --- resolve_database ---


def test_describe_environment_source() -> None:
    choice = DatabaseChoice(
        to_sqlalchemy_url("postgresql://postgres:pw@127.0.0.1:5432/test"), "environment"
    )

    assert choice.describe() == (
        "using PostgreSQL at postgresql+psycopg://postgres:***@127.0.0.1:5432/test "
        "(from ACTORTOKEN_STORE_DATABASE_URL)"
    )


def test_describe_argument_and_embedded_sources() -> None:
    url = to_sqlalchemy_url("postgresql://postgres:pw@127.0.0.1:5432/test")

    assert "given as argument" in DatabaseChoice(url, "argument").describe()
    embedded_text = DatabaseChoice(url, "embedded").describe()
    assert "embedded server" in embedded_text
    assert ENV_DATABASE_URL in embedded_text
    assert "pw" not in embedded_text


def test_argument_wins_over_environment(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv(ENV_DATABASE_URL, "postgresql://env@h/envdb")

    choice = resolve_database("postgres://arg@h/argdb")

    assert choice.source == "argument"
    assert choice.url.database == "argdb"
    assert choice.url.drivername == "postgresql+psycopg"


def test_environment_is_used_without_argument(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv(ENV_DATABASE_URL, "postgresql://env@h/envdb")

    choice = resolve_database(async_driver=True)

    assert choice.source == "environment"
    assert choice.url.database == "envdb"
    assert choice.url.drivername == "postgresql+psycopg_async"


@pytest.mark.parametrize("value", [None, ""])
def test_embedded_is_used_when_nothing_set(
    clean_environment: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is not None:
        clean_environment.setenv(ENV_DATABASE_URL, value)
    started: list[bool] = []

    def fake_start_embedded() -> sqlalchemy.URL:
        started.append(True)
        return sqlalchemy.make_url("postgresql+psycopg://postgres:@/actortoken_store?host=/s")

    clean_environment.setattr(embedded, "start_embedded", fake_start_embedded)

    choice = resolve_database(async_driver=True)

    assert started == [True]
    assert choice.source == "embedded"
    assert choice.url.drivername == "postgresql+psycopg_async"
    assert choice.url.query["host"] == "/s"


def test_empty_argument_is_rejected(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv(ENV_DATABASE_URL, "postgresql://env@h/envdb")

    with pytest.raises(ConfigurationError, match="empty"):
        resolve_database("")


def test_invalid_environment_url_is_rejected(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv(ENV_DATABASE_URL, "mysql://u@h/d")

    with pytest.raises(ConfigurationError, match="mysql"):
        resolve_database()


# --- create_engine and create_async_engine ---


def test_create_engine_defaults() -> None:
    engine = create_engine("postgres://alice:pw@127.0.0.1:1/tokens")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.pool._pre_ping is True
        params = _captured_connect_params(engine)
    finally:
        engine.dispose()

    assert params["connect_timeout"] == config.DEFAULT_CONNECT_TIMEOUT
    assert params["dbname"] == "tokens"


def test_create_engine_timeout_keyword() -> None:
    engine = create_engine("postgresql://alice@127.0.0.1:1/tokens", connect_timeout=3)
    try:
        params = _captured_connect_params(engine)
    finally:
        engine.dispose()

    assert params["connect_timeout"] == 3


def test_create_engine_keeps_url_timeout() -> None:
    engine = create_engine("postgresql://alice@127.0.0.1:1/tokens?connect_timeout=7")
    try:
        params = _captured_connect_params(engine)
    finally:
        engine.dispose()

    assert params["connect_timeout"] == "7"


def test_create_engine_keeps_caller_options() -> None:
    engine = create_engine(
        "postgresql://alice@127.0.0.1:1/tokens",
        pool_pre_ping=False,
        connect_args={"connect_timeout": 4, "application_name": "tests"},
    )
    try:
        assert engine.pool._pre_ping is False
        params = _captured_connect_params(engine)
    finally:
        engine.dispose()

    assert params["connect_timeout"] == 4
    assert params["application_name"] == "tests"


def test_create_engine_rejects_other_drivers() -> None:
    with pytest.raises(ConfigurationError, match="sqlite"):
        create_engine("sqlite://")


def test_create_async_engine_defaults() -> None:
    engine = create_async_engine("postgresql://alice@127.0.0.1:1/tokens", connect_timeout=5)
    try:
        assert engine.url.drivername == "postgresql+psycopg_async"
        assert engine.sync_engine.pool._pre_ping is True
        captured: dict[str, Any] = {}

        def capture(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
            captured.update(cparams)
            raise _ConnectIntercepted

        event.listen(engine.sync_engine, "do_connect", capture)

        async def connect() -> None:
            async with engine.connect():
                pass

        with pytest.raises(_ConnectIntercepted):
            asyncio.run(connect())
    finally:
        asyncio.run(engine.dispose())

    assert captured["connect_timeout"] == 5


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """Yield the port of a loopback TCP listener that accepts and never responds."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        for connection in accepted:
            connection.close()
        server.close()


def test_connect_timeout_is_enforced(silent_listener: int) -> None:
    engine = create_engine(
        f"postgresql://postgres@127.0.0.1:{silent_listener}/postgres?sslmode=disable",
        connect_timeout=2,
    )
    started = time.monotonic()
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError), engine.connect():
            pass
    finally:
        engine.dispose()
    elapsed = time.monotonic() - started

    # psycopg enforces at least 2 s. The upper bound leaves room for a slow machine.
    assert 1.5 <= elapsed < 8


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://postgres:pw@127.0.0.1:abc/db",
        "postgresql://postgres:pw@[::1/db",
        "postgresql://postgres:pw@host:5432:5433/db",
    ],
)
def test_malformed_port_rejected(text: str) -> None:
    for build in (to_sqlalchemy_url, resolve_database, config.create_engine):
        with pytest.raises(ConfigurationError, match="invalid database URL") as raised:
            build(text)
        assert "pw" not in str(raised.value)
    assert "pw" not in display_url(text)
