"""Fixtures shared by the whole suite: one PostgreSQL server and one migrated database.

The server comes from `tests.servers.test_server_url` (environment, Docker, or embedded).
One throwaway database is migrated to head per test session; every integration test gets
empty tables, so tests never see each other's rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from actortoken_store import migrate
from actortoken_store.config import create_engine
from actortoken_store.model import ActorToken
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.schema import metadata
from actortoken_store.secrets import (
    ENV_KEEP_TERMINAL_TICKETS,
    ENV_KEYS,
    ENV_SECRETS_MODE,
    Keyring,
    SecretsMode,
    SecretsPolicy,
    format_key,
)
from tests.servers import server_label, test_server_url, throwaway_database

ENV_FIXTURES = "ACTORTOKEN_STORE_FIXTURES"
"""Environment variable with the folder of the Clerk-shaped sample data, when set."""


def _find_fixtures() -> Path:
    # The sample data sits in shared/fixtures next to the checkout, which may be nested
    # one level deeper (a git worktree), so look in every parent folder.
    override = os.environ.get(ENV_FIXTURES)
    if override:
        return Path(override)
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "shared" / "fixtures"
        if candidate.is_dir():
            return candidate
    return Path(__file__).resolve().parents[2] / "shared" / "fixtures"


FIXTURES = _find_fixtures()
"""Clerk-shaped sample data shared with this repository (read-only). Tests reach it through
`fixture_file`, `load_jsonl` or `fixture_tokens`, never directly, so a missing folder skips
them with one reason."""

ENV_CI = "CI"
"""Environment variable that CI sets to ``true``; there the sample data must be present."""


def _missing_fixtures_message() -> str:
    return f"Clerk sample data not found at {FIXTURES}; set {ENV_FIXTURES} to the folder"


def _running_in_ci() -> bool:
    return os.environ.get(ENV_CI, "").strip().lower() in {"true", "1"}


def fixture_file(name: str) -> Path:
    """Return the path of one sample data file.

    A clone without the sample data skips the calling test; under CI, which always has the
    data, the test fails instead, so a lost folder cannot pass as a run of skips.
    """
    if not FIXTURES.is_dir():
        if _running_in_ci():
            pytest.fail(_missing_fixtures_message(), pytrace=False)
        pytest.skip(_missing_fixtures_message())
    return FIXTURES / name


# "ci" keeps property tests bounded, so the suite stays within its time budget. --runslow
# selects "soak"; HYPOTHESIS_PROFILE names a profile explicitly.
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "soak",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    # --runslow also deepens the property tests, unless a profile was chosen by name.
    if config.getoption("--runslow") and "HYPOTHESIS_PROFILE" not in os.environ:
        settings.load_profile("soak")
    # Under CI a missing sample data folder stops the run before any test, in one message.
    if _running_in_ci() and not FIXTURES.is_dir():
        raise pytest.UsageError(f"{_missing_fixtures_message()} (CI must have it)")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="also run tests marked slow (soak variants, the wheel build); -m slow runs only them",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A -m expression that names the marker selects slow tests on its own terms.
    if config.getoption("--runslow") or "slow" in (config.getoption("markexpr") or ""):
        return
    skip_slow = pytest.mark.skip(reason="slow test: run with --runslow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


TEST_KEYS = format_key("test-key-1", bytes(range(32)))
"""A fixed key in the ``ACTORTOKEN_STORE_KEYS`` form, so a failing test can be rerun by hand."""

TEST_KEYRING = Keyring.parse(TEST_KEYS)

TEST_SECRETS = SecretsPolicy(SecretsMode.ENCRYPT, TEST_KEYRING, keep_terminal_tickets=True)
"""The secrets policy of the `repo` fixture: tickets are encrypted and kept after a token
becomes terminal, so tokens read back equal what was saved, tickets included. Tests of the
other modes and of dropping terminal tickets build their own policy."""


@pytest.fixture(autouse=True)
def secrets_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give code that builds its secrets policy from the environment (the CLI, repositories
    made without ``secrets=``) the same policy as `TEST_SECRETS`."""
    monkeypatch.setenv(ENV_KEYS, TEST_KEYS)
    monkeypatch.setenv(ENV_KEEP_TERMINAL_TICKETS, "true")
    monkeypatch.delenv(ENV_SECRETS_MODE, raising=False)


def pytest_report_header(config: pytest.Config) -> str:
    return "actortoken-store: PostgreSQL server chosen per tests/servers.py"


@pytest.fixture(scope="session")
def admin_url() -> Iterator[sqlalchemy.URL]:
    """Admin URL of the test server; the user may create and drop databases."""
    with test_server_url() as url:
        print(f"\ntest server: {server_label(url)}")
        yield url


@pytest.fixture(scope="session")
def database_url(admin_url: sqlalchemy.URL) -> Iterator[sqlalchemy.URL]:
    """URL of a throwaway database migrated to the newest revision."""
    with throwaway_database(admin_url) as url:
        config = migrate.make_config(url.render_as_string(hide_password=False))
        migrate.upgrade(config)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: sqlalchemy.URL) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def _empty_tables(engine: Engine) -> None:
    quoted = [f'"{table.name}"' for table in reversed(metadata.sorted_tables)]
    names = ", ".join(quoted)
    any_rows = " OR ".join(f"EXISTS (SELECT FROM {name})" for name in quoted)
    with engine.begin() as connection:
        # Most tests roll back, and TRUNCATE costs tens of milliseconds even on empty tables.
        if not connection.execute(text(f"SELECT {any_rows}")).scalar_one():
            return
        # Replica mode skips triggers, including ones that protect append-only tables.
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))


@pytest.fixture
def clean_engine(engine: Engine) -> Iterator[Engine]:
    """The session engine, with every store table emptied after the test."""
    yield engine
    _empty_tables(engine)


@pytest.fixture
def session(clean_engine: Engine) -> Iterator[Session]:
    """A session whose transaction the test commits or leaves to be rolled back."""
    with Session(clean_engine) as session:
        yield session
        session.rollback()


@pytest.fixture
def repo(session: Session) -> ActorTokenRepository:
    """A repository with the explicit `TEST_SECRETS` policy."""
    return ActorTokenRepository(session, secrets=TEST_SECRETS)


def load_jsonl(name: str) -> list[dict[str, Any]]:
    """Read one sample data file of JSON Lines; skips or fails like `fixture_file`."""
    with fixture_file(name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="session")
def fixture_tokens() -> list[ActorToken]:
    """The 308 tokens of actor_tokens.jsonl, parsed."""
    return [ActorToken.from_clerk(record) for record in load_jsonl("actor_tokens.jsonl")]
