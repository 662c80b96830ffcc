"""Filters that carry SQL, LIKE and JSON-path syntax are matched as plain values."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from actortoken_store.errors import InvalidArgumentError, InvalidTransitionError
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.statements import TOKENS

CREATED = 1_760_000_000_000

METACHARACTERS = [
    "o'brien",
    "user_%",
    "user__",
    "back\\slash",
    'say "hi"',
    "$.sub",
    "$.** ? (@ == 1)",
    "a @@ b",
    "x'; DROP TABLE actor_tokens;--",
    "%",
    "_",
    "\\",
    "*",
]


def _token(token_id: str, user_id: str, index: int) -> ActorToken:
    return ActorToken(
        id=token_id,
        status=TokenStatus.PENDING,
        user_id=user_id,
        actor={"sub": user_id, "note": token_id},
        created_at=CREATED + index,
        updated_at=CREATED + index,
    )


@pytest.fixture
def stored(clean_engine: Engine) -> dict[str, ActorToken]:
    """One token per metacharacter value, used as both id and user, plus plain decoys."""
    tokens = [_token(f"act_{value}", value, index) for index, value in enumerate(METACHARACTERS)]
    tokens += [
        _token("act_plain_1", "user_1", 100),
        _token("act_plain_2", "user_12", 101),
        _token("act_plain_3", "o", 102),
    ]
    with Session(clean_engine) as session:
        ActorTokenRepository(session).save_many(tokens)
        session.commit()
    return {token.id: token for token in tokens}


@pytest.mark.parametrize("value", METACHARACTERS)
def test_get_metacharacter_id_exact(
    clean_engine: Engine, stored: dict[str, ActorToken], value: str
) -> None:
    with Session(clean_engine) as session:
        repo = ActorTokenRepository(session)
        assert repo.get(f"act_{value}") == stored[f"act_{value}"]
        assert repo.get(value) is None


@pytest.mark.parametrize("value", METACHARACTERS)
def test_list_metacharacter_user_exact(
    clean_engine: Engine, stored: dict[str, ActorToken], value: str
) -> None:
    with Session(clean_engine) as session:
        page = ActorTokenRepository(session).list_for_user(value, limit=100)

    assert [token.id for token in page.items] == [f"act_{value}"]


def test_transition_metacharacter_id(clean_engine: Engine, stored: dict[str, ActorToken]) -> None:
    with Session(clean_engine) as session:
        repo = ActorTokenRepository(session)
        for value in METACHARACTERS:
            assert repo.revoke(f"act_{value}").status is TokenStatus.REVOKED
        session.commit()

    with Session(clean_engine) as session:
        repo = ActorTokenRepository(session)
        with pytest.raises(InvalidTransitionError):
            repo.accept("act_%")
        assert repo.get_one("act_plain_1").status is TokenStatus.PENDING
        total = session.execute(select(func.count()).select_from(TOKENS)).scalar_one()
    assert total == len(stored)


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "\ud800", "x\udfffy"])
def test_unstorable_filter_rejected(clean_engine: Engine, value: str) -> None:
    # Before lookups checked their text, NUL reached PostgreSQL as a generic database
    # error and a lone surrogate escaped as a raw UnicodeEncodeError.
    with Session(clean_engine) as session:
        repo = ActorTokenRepository(session)
        for call in (
            lambda: repo.get(value),
            lambda: repo.get_one(value),
            lambda: repo.list_for_user(value),
            lambda: repo.accept(value),
            lambda: repo.revoke(value),
        ):
            with pytest.raises(InvalidArgumentError):
                call()


@pytest.mark.parametrize("value", METACHARACTERS)
def test_audit_metacharacter_filters_exact(
    clean_engine: Engine, stored: dict[str, ActorToken], value: str
) -> None:
    with Session(clean_engine) as session:
        audit = ActorTokenRepository(session).audit
        by_actor = audit.impersonations(actor_sub=value, limit=100)
        by_user = audit.impersonations(user_id=value, limit=100)
        timeline = audit.timeline(f"act_{value}")
        summary = audit.actor_summary(actor_sub=value, limit=100)

    assert [item.token_id for item in by_actor.items] == [f"act_{value}"]
    assert [item.token_id for item in by_user.items] == [f"act_{value}"]
    assert [event.token_id for event in timeline.items] == [f"act_{value}"]
    assert [row.actor_sub for row in summary.items] == [value]
