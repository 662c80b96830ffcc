"""An application role with only SELECT and INSERT on the events still records them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from actortoken_store.config import create_engine
from actortoken_store.errors import DatabaseError
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository

T0 = 1_764_000_000_000


@pytest.fixture
def app_role(clean_engine: Engine) -> Iterator[str]:
    """A role with the privileges docs/audit.md recommends, dropped afterwards.

    Roles belong to the whole server, which several test sessions may share, so the
    name is random.
    """
    name = f"ats_app_{secrets.token_hex(6)}"
    with clean_engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {name} NOLOGIN"))
        connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {name}"))
        connection.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON actor_tokens TO {name}"))
        connection.execute(text(f"GRANT SELECT, INSERT ON actor_token_events TO {name}"))
    try:
        yield name
    finally:
        with clean_engine.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {name}"))
            connection.execute(text(f"DROP ROLE {name}"))


@pytest.fixture
def app_engine(database_url: sqlalchemy.URL, app_role: str) -> Iterator[Engine]:
    """An engine whose connections act as ``app_role`` (SET ROLE, so no login is needed)."""
    engine = create_engine(database_url, poolclass=NullPool)

    @sqlalchemy.event.listens_for(engine, "connect")
    def _become_app(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {app_role}")
        dbapi_connection.commit()

    yield engine
    engine.dispose()


def _token(token_id: str) -> ActorToken:
    return ActorToken(
        id=token_id,
        status=TokenStatus.PENDING,
        user_id="user_1",
        actor={"sub": "user_admin"},
        token=None,
        url=None,
        created_at=T0,
        updated_at=T0,
    )


def test_app_role_records_events(app_engine: Engine, app_role: str) -> None:
    with Session(app_engine) as session:
        assert session.execute(text("SELECT current_user")).scalar_one() == app_role
        repo = ActorTokenRepository(session)
        with repo.audit_context(operator="op_1"):
            repo.save(_token("act_1"))
            repo.revoke("act_1", T0 + 1)
        session.commit()
        events = repo.audit.timeline("act_1").items
        assert [event.to_status for event in events] == [TokenStatus.PENDING, TokenStatus.REVOKED]
        assert [event.context for event in events] == [{"operator": "op_1"}] * 2


@pytest.mark.parametrize(
    "statement",
    ["UPDATE actor_token_events SET source = 'sql'", "DELETE FROM actor_token_events"],
)
def test_app_role_cannot_change_events(app_engine: Engine, statement: str) -> None:
    with (
        app_engine.connect() as connection,
        pytest.raises(sqlalchemy.exc.ProgrammingError) as caught,
    ):
        connection.execute(text(statement))
    assert getattr(caught.value.orig, "sqlstate", None) == "42501"


def test_app_role_cannot_prune(app_engine: Engine) -> None:
    from datetime import UTC, datetime

    with Session(app_engine) as session:
        repo = ActorTokenRepository(session)
        with pytest.raises(DatabaseError, match="permission denied") as caught:
            repo.audit.prune_events(before=datetime(2100, 1, 1, tzinfo=UTC))
        assert caught.value.sqlstate == "42501"
