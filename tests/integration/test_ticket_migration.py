"""The revision that adds ticket digests, ciphertexts and expiry converts stored rows."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from actortoken_store import migrate
from actortoken_store import secrets as secrets_module
from actortoken_store.config import create_engine
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.secrets import ENV_KEYS, ENV_SECRETS_MODE, SecretsMode, SecretsPolicy
from tests.integration.secrets_helpers import KEY_1, KEY_2, encrypting
from tests.servers import throwaway_database

BEFORE: str = "0001"
"""The revision before tickets were encrypted."""

MIGRATION_LOGGER = "actortoken_store.migrations"


@pytest.fixture
def old_database(
    admin_url: sqlalchemy.URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[sqlalchemy.URL, Engine]]:
    """A database at the revision before this one, with no keys in the environment."""
    monkeypatch.delenv(ENV_KEYS, raising=False)
    monkeypatch.delenv(ENV_SECRETS_MODE, raising=False)
    with throwaway_database(admin_url) as url:
        migrate.upgrade(config_for(url), BEFORE)
        engine = create_engine(url, poolclass=NullPool)
        try:
            yield url, engine
        finally:
            engine.dispose()


def config_for(url: sqlalchemy.URL, **attributes: object) -> object:
    config = migrate.make_config(url.render_as_string(hide_password=False))
    config.attributes.update(attributes)
    return config


def insert_old_rows(engine: Engine, tokens: list[ActorToken]) -> None:
    with engine.begin() as connection:
        for token in tokens:
            connection.execute(
                text(
                    "INSERT INTO actor_tokens (id, status, user_id, actor, token, url, "
                    "created_at, updated_at) VALUES (:id, :status, :user_id, "
                    "CAST(:actor AS jsonb), :token, :url, to_timestamp(:created_at / 1000.0), "
                    "to_timestamp(:updated_at / 1000.0))"
                ),
                {**token.to_clerk(), "actor": json.dumps(dict(token.actor))},
            )


def head_is_current(url: sqlalchemy.URL) -> bool:
    return migrate.current(config_for(url)) == [migrate.head()]  # type: ignore[arg-type]


def read_all(engine: Engine, policy: SecretsPolicy, ids: list[str]) -> dict[str, ActorToken]:
    with Session(engine) as session:
        repo = ActorTokenRepository(session, secrets=policy)
        return {token_id: repo.get_one(token_id) for token_id in ids}


def test_upgrade_encrypts_rows(
    old_database: tuple[sqlalchemy.URL, Engine], fixture_tokens: list[ActorToken]
) -> None:
    url, engine = old_database
    tokens = fixture_tokens[:60]
    insert_old_rows(engine, tokens)
    migrate.upgrade(config_for(url, secrets=encrypting(KEY_1)))  # type: ignore[arg-type]
    assert head_is_current(url)

    with engine.connect() as connection:
        plaintext = connection.execute(
            text("SELECT count(*) FROM actor_tokens WHERE token IS NOT NULL OR url IS NOT NULL")
        ).scalar_one()
    assert plaintext == 0
    stored = read_all(engine, encrypting(KEY_1), [token.id for token in tokens])
    for token in tokens:
        if token.status is TokenStatus.PENDING:
            assert stored[token.id].token == token.token
            assert stored[token.id].url == token.url
            assert stored[token.id].expires_at is not None
        else:
            assert stored[token.id].has_ticket is False


def test_upgrade_without_key_refuses(
    old_database: tuple[sqlalchemy.URL, Engine], fixture_tokens: list[ActorToken]
) -> None:
    url, engine = old_database
    insert_old_rows(engine, fixture_tokens[:10])
    with pytest.raises(migrate.MigrationError, match="-x drop_tickets=true") as caught:
        migrate.upgrade(config_for(url))  # type: ignore[arg-type]
    assert ENV_KEYS in str(caught.value)
    assert "hold a ticket" in str(caught.value)
    assert migrate.current(config_for(url)) == [BEFORE]  # type: ignore[arg-type]
    with engine.connect() as connection:
        kept = connection.execute(
            text("SELECT count(*) FROM actor_tokens WHERE token IS NOT NULL")
        ).scalar_one()
    assert kept == sum(token.token is not None for token in fixture_tokens[:10])


def test_upgrade_drop_tickets_option(
    old_database: tuple[sqlalchemy.URL, Engine],
    fixture_tokens: list[ActorToken],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, engine = old_database
    tokens = fixture_tokens[:10]
    insert_old_rows(engine, tokens)
    config = config_for(url)
    config.cmd_opts = argparse.Namespace(x=["drop_tickets=true"])  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger=MIGRATION_LOGGER):
        migrate.upgrade(config)  # type: ignore[arg-type]
    assert any("dropping the tickets" in record.getMessage() for record in caplog.records)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT token, url, ticket_digest, ticket_ciphertext FROM actor_tokens")
        ).all()
    assert all(row.token is None and row.url is None for row in rows)
    assert all(row.ticket_ciphertext is None for row in rows)
    with_ticket = sum(token.token is not None for token in tokens)
    assert sum(row.ticket_digest is not None for row in rows) == with_ticket


def test_upgrade_empty_database(
    old_database: tuple[sqlalchemy.URL, Engine],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = old_database
    monkeypatch.setattr(secrets_module, "_digest_default_warned", False)
    with caplog.at_level(logging.WARNING, logger="actortoken_store"):
        migrate.upgrade(config_for(url))  # type: ignore[arg-type]
    assert head_is_current(url)
    assert caplog.records == []


def test_upgrade_plaintext_mode(
    old_database: tuple[sqlalchemy.URL, Engine], fixture_tokens: list[ActorToken]
) -> None:
    url, engine = old_database
    pending = [token for token in fixture_tokens if token.status is TokenStatus.PENDING][:5]
    insert_old_rows(engine, pending)
    policy = SecretsPolicy(SecretsMode.PLAINTEXT)
    migrate.upgrade(config_for(url, secrets=policy))  # type: ignore[arg-type]
    stored = read_all(engine, policy, [token.id for token in pending])
    assert all(stored[token.id].token == token.token for token in pending)


def test_downgrade_restores_tickets(
    old_database: tuple[sqlalchemy.URL, Engine],
    fixture_tokens: list[ActorToken],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, engine = old_database
    tokens = fixture_tokens[:60]
    insert_old_rows(engine, tokens)
    policy = encrypting(KEY_1)
    migrate.upgrade(config_for(url, secrets=policy))  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger=MIGRATION_LOGGER):
        migrate.downgrade(config_for(url, secrets=policy), BEFORE)  # type: ignore[arg-type]

    with engine.connect() as connection:
        rows = {
            row.id: row
            for row in connection.execute(text("SELECT id, token, url FROM actor_tokens"))
        }
        columns = set(
            connection.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'actor_tokens'"
                )
            ).scalars()
        )
    assert "ticket_ciphertext" not in columns
    assert "expires_at" not in columns
    pending = [token for token in tokens if token.status is TokenStatus.PENDING]
    assert pending
    for token in pending:
        assert rows[token.id].token == token.token
        assert rows[token.id].url == token.url
    dropped = sum(token.status.is_terminal and token.token is not None for token in tokens)
    messages = [record.getMessage() for record in caplog.records]
    assert any(f"restored {len(pending)} tickets" in message for message in messages)
    assert any(f"tickets of {dropped} actor tokens that kept only a digest" in m for m in messages)


def test_downgrade_reports_missing_key(
    old_database: tuple[sqlalchemy.URL, Engine],
    fixture_tokens: list[ActorToken],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, engine = old_database
    pending = [token for token in fixture_tokens if token.status is TokenStatus.PENDING][:3]
    insert_old_rows(engine, pending)
    migrate.upgrade(config_for(url, secrets=encrypting(KEY_1)))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger=MIGRATION_LOGGER):
        migrate.downgrade(
            config_for(url, secrets=encrypting(KEY_2)),  # type: ignore[arg-type]
            BEFORE,
        )
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "could not restore the tickets of 3 actor tokens" in warnings[0]
    assert "key ids: key-1" in warnings[0]
    assert all(token.id in warnings[0] for token in pending)
    assert all(token.token not in warnings[0] for token in pending if token.token)
