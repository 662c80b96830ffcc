"""Property tests of the model: any input either parses or raises the one typed error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actortoken_store.errors import InvalidActorTokenError
from actortoken_store.model import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, ActorToken
from tests.json_equality import same_json

FIELDS = ["object", "id", "status", "user_id", "actor", "token", "url", "created_at", "updated_at"]
CAMEL = {"user_id": "userId", "created_at": "createdAt", "updated_at": "updatedAt"}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
clean_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
).filter(lambda value: value != "" and value.strip() == value)
timestamps = st.integers(min_value=MIN_TIMESTAMP_MS, max_value=MAX_TIMESTAMP_MS)
claim_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | clean_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(clean_text, children, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    created = draw(timestamps)
    updated = draw(st.integers(min_value=created, max_value=MAX_TIMESTAMP_MS))
    claims = draw(st.dictionaries(clean_text, claim_values, max_size=4))
    claims["sub"] = draw(clean_text)
    return {
        "object": "actor_token",
        "id": draw(clean_text),
        "status": draw(st.sampled_from(["pending", "accepted", "revoked"])),
        "user_id": draw(clean_text),
        "actor": claims,
        "token": draw(st.none() | clean_text),
        "url": draw(st.none() | clean_text),
        "created_at": created,
        "updated_at": updated,
    }


@settings(max_examples=100, deadline=None)
@given(valid_records())
def test_valid_records_round_trip(record: dict[str, Any]) -> None:
    token = ActorToken.from_clerk(record)

    # Numbers compare by JSON value: the model keeps them as PostgreSQL's JSONB returns
    # them, so 1e16 comes back as the integer 10000000000000000.
    assert same_json(token.to_clerk(), record)
    assert ActorToken.from_clerk(json.dumps(record)) == token
    assert ActorToken.from_clerk(json.dumps(record).encode()) == token


@settings(max_examples=100, deadline=None)
@given(valid_records())
def test_camel_records_parse_same(record: dict[str, Any]) -> None:
    camel = {CAMEL.get(key, key): value for key, value in record.items()}

    assert ActorToken.from_clerk(camel) == ActorToken.from_clerk(record)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records(), st.sampled_from(FIELDS), json_values)
def test_any_field_value_parses_or_raises_typed(
    record: dict[str, Any], name: str, value: Any
) -> None:
    record[name] = value

    try:
        token = ActorToken.from_clerk(record)
    except InvalidActorTokenError as error:
        assert error.field
        assert error.problem
        return
    # Whatever was accepted must serialize back to the same JSON.
    assert same_json(token.to_clerk(), {**record, "object": "actor_token"}) or name == "object"


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_json_value_parses_or_raises_typed(value: Any) -> None:
    try:
        text = json.dumps(value)
    except ValueError:
        return
    try:
        ActorToken.from_clerk(text)
    except InvalidActorTokenError as error:
        assert error.field == "<record>" or error.field in FIELDS or "." in error.field


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_text_parses_or_raises_typed(data: bytes | str) -> None:
    try:
        ActorToken.from_clerk(data)
    except InvalidActorTokenError as error:
        assert error.field
