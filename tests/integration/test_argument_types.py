"""Public entry points reject arguments of the wrong type with a typed, named error."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from actortoken_store.errors import ConfigurationError, InvalidArgumentError
from actortoken_store.importer import import_tokens
from actortoken_store.repository import ActorTokenRepository


def test_repository_rejects_session() -> None:
    with pytest.raises(InvalidArgumentError, match="session must be a SQLAlchemy Session"):
        ActorTokenRepository(None)  # type: ignore[arg-type]


def test_repository_rejects_schema(session: Session) -> None:
    with pytest.raises(ConfigurationError, match="schema name must be a string, got int"):
        ActorTokenRepository(session, schema=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda repo: repo.save_many(None), "tokens must be an iterable"),
        (lambda repo: repo.get(""), "token_id must not be empty"),
        (lambda repo: repo.find_reusable(None, None), "user_id must be a string"),
        (lambda repo: repo.find_reusable("user_1", ""), "actor_sub must not be empty"),
        (lambda repo: repo.audit.timeline(None), "token_id must be a string"),
    ],
)
def test_repository_method_types(repo: ActorTokenRepository, call: Any, expected: str) -> None:
    with pytest.raises(InvalidArgumentError, match=expected):
        call(repo)


def test_import_rejects_types(session: Session) -> None:
    with pytest.raises(InvalidArgumentError, match="sessions must be"):
        import_tokens(None, "-")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="source must be"):
        import_tokens(session, None)  # type: ignore[arg-type]
