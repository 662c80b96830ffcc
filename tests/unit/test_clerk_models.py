"""Conversion of clerk-backend-api's ActorToken model (actortoken_store.clerk_models)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from clerk_backend_api import models as sdk

from actortoken_store.clerk_models import from_sdk_model, is_sdk_model, to_actor_token
from actortoken_store.errors import (
    ActorClaimsMissingError,
    InvalidActorTokenError,
    InvalidArgumentError,
)
from actortoken_store.model import ActorToken
from tests.conftest import load_jsonl


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return load_jsonl("actor_tokens.jsonl")


def test_sdk_model_drops_actor(records: list[dict[str, Any]]) -> None:
    # The limitation the conversion works around; if a later SDK keeps the claims, the
    # version pin and the docs need another look.
    model = sdk.ActorToken.model_validate(records[0])

    assert model.actor.model_dump() == {}


def test_from_sdk_model_fixture_roundtrip(records: list[dict[str, Any]]) -> None:
    for record in records:
        model = sdk.ActorToken.model_validate(record)

        converted = from_sdk_model(model, actor=record["actor"])

        assert converted == ActorToken.from_clerk(record)
        assert converted.to_clerk() == record


def test_from_sdk_model_without_actor(records: list[dict[str, Any]]) -> None:
    model = sdk.ActorToken.model_validate(records[0])

    with pytest.raises(ActorClaimsMissingError) as caught:
        from_sdk_model(model)

    error = caught.value
    assert isinstance(error, InvalidActorTokenError)
    assert error.field == "actor"
    assert error.token_id == records[0]["id"]
    assert "clerk-backend-api 7 drops them" in str(error)


def test_from_sdk_model_invalid_actor(records: list[dict[str, Any]]) -> None:
    model = sdk.ActorToken.model_validate(records[0])

    with pytest.raises(InvalidActorTokenError) as caught:
        from_sdk_model(model, actor={"reason": "no sub"})
    assert caught.value.field == "actor.sub"

    with pytest.raises(InvalidActorTokenError) as caught:
        from_sdk_model(model, actor=["sub"])  # type: ignore[arg-type]
    assert caught.value.field == "actor"


def test_from_sdk_model_keeps_secret_fields(records: list[dict[str, Any]]) -> None:
    record = next(line for line in records if line["token"] is not None)
    model = sdk.ActorToken.model_validate(record)

    converted = from_sdk_model(model, actor=record["actor"])

    assert converted.token == record["token"]
    assert converted.url == record["url"]
    assert record["token"] not in repr(converted)


def test_from_sdk_model_rejects_dict(records: list[dict[str, Any]]) -> None:
    with pytest.raises(InvalidActorTokenError, match="expected a clerk_backend_api"):
        from_sdk_model(records[0], actor=records[0]["actor"])  # type: ignore[arg-type]


def test_is_sdk_model(records: list[dict[str, Any]]) -> None:
    assert is_sdk_model(sdk.ActorToken.model_validate(records[0]))
    assert not is_sdk_model(records[0])
    assert not is_sdk_model(ActorToken.from_clerk(records[0]))


def test_to_actor_token_passes_value(records: list[dict[str, Any]]) -> None:
    token = ActorToken.from_clerk(records[0])

    assert to_actor_token(token, None) is token
    with pytest.raises(InvalidArgumentError, match="only to Clerk SDK models"):
        to_actor_token(token, {"sub": "user_x"})


def test_to_actor_token_rejects_dict(records: list[dict[str, Any]]) -> None:
    with pytest.raises(InvalidArgumentError, match=r"ActorToken\.from_clerk"):
        to_actor_token(records[0], records[0]["actor"])  # type: ignore[arg-type]


def test_from_clerk_hints_at_sdk(records: list[dict[str, Any]]) -> None:
    model = sdk.ActorToken.model_validate(records[0])

    with pytest.raises(InvalidActorTokenError, match="from_sdk_model"):
        ActorToken.from_clerk(model)  # type: ignore[arg-type]


def test_core_imports_without_sdk() -> None:
    """The core and the repositories load when clerk_backend_api cannot be imported."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["clerk_backend_api"] = None  # makes every import of it fail
        import actortoken_store, actortoken_store.aio, actortoken_store.clerk
        from actortoken_store.clerk_models import is_sdk_model
        from actortoken_store.model import ActorToken
        assert not is_sdk_model(object())
        assert "clerk_backend_api.models" not in sys.modules
        print("ok")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"
