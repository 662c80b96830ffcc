"""ActorToken.from_trusted: the unvalidated constructor used for rows read back."""

from __future__ import annotations

import inspect
import json
from dataclasses import fields
from pathlib import Path

from actortoken_store.model import ActorToken

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def _fixture_tokens() -> list[ActorToken]:
    with (FIXTURES / "actor_tokens.jsonl").open(encoding="utf-8") as lines:
        return [ActorToken.from_clerk(json.loads(line)) for line in lines if line.strip()]


def test_from_trusted_takes_every_field() -> None:
    parameters = set(inspect.signature(ActorToken.from_trusted).parameters)
    assert parameters == {item.name for item in fields(ActorToken)}


def test_from_trusted_equals_validated() -> None:
    for token in _fixture_tokens():
        values = {item.name: getattr(token, item.name) for item in fields(ActorToken)}
        rebuilt = ActorToken.from_trusted(**values)
        assert rebuilt == token
        assert rebuilt.to_clerk() == token.to_clerk()
        assert repr(rebuilt) == repr(token)
