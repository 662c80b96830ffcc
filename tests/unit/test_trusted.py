"""ActorToken.from_trusted: the unvalidated constructor used for rows read back."""

from __future__ import annotations

import inspect
from dataclasses import fields

from actortoken_store.model import ActorToken


def test_from_trusted_takes_every_field() -> None:
    parameters = set(inspect.signature(ActorToken.from_trusted).parameters)
    assert parameters == {item.name for item in fields(ActorToken)}


def test_from_trusted_equals_validated(fixture_tokens: list[ActorToken]) -> None:
    for token in fixture_tokens:
        values = {item.name: getattr(token, item.name) for item in fields(ActorToken)}
        rebuilt = ActorToken.from_trusted(**values)
        assert rebuilt == token
        assert rebuilt.to_clerk() == token.to_clerk()
        assert repr(rebuilt) == repr(token)
